"""« Où en êtes-vous ? » cadence on plain dates (models.cadence), against the failures seen in
comparable tools: nudges in one burst on one date whatever the items' dates, and a configured
period not respected when the sweep runs less often than daily."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from models.cadence import nudge_due

SIX_WEEKS = 42


def simulate(since: date, cadence_days: int, weeks: int, catch_up: int) -> list[date]:
    """Days a nudge goes out for one action silent since `since`, the sweep running every
    `cadence_days` from `since` for `weeks` weeks."""
    sent: list[date] = []
    day = since
    while day <= since + timedelta(weeks=weeks):
        found = nudge_due(since, sent[-1] if sent else None, day, day - timedelta(catch_up), 42)
        if found is not None:
            sent.append(day)
        day += timedelta(days=cadence_days)
    return sent


def test_a_daily_sweep_nudges_exactly_every_period_from_the_last_note() -> None:
    note = date(2024, 3, 27)
    sent = simulate(note, 1, 30, catch_up=3)
    assert sent == [note + timedelta(weeks=w) for w in (6, 12, 18, 24, 30)]


@pytest.mark.parametrize("cadence", [1, 2, 7, 14, 28])
def test_whatever_the_sweep_cadence_two_nudges_are_never_closer_than_the_period(
    cadence: int,
) -> None:
    note = date(2024, 3, 27)
    sent = simulate(note, cadence, 52, catch_up=cadence - 1)
    gaps = [(b - a).days for a, b in zip([note, *sent], sent, strict=False)]
    assert sent and all(gap >= SIX_WEEKS for gap in gaps), gaps
    # ...and none is skipped: each goes out at the first sweep on or after its day.
    assert all(gap < SIX_WEEKS + cadence for gap in gaps), gaps


def test_the_demo_sweep_every_four_weeks_no_longer_nudges_four_weeks_apart() -> None:
    # Before: the nudge due at +6 weeks went out at the +8 weeks sweep, the next at +12.
    note = date(2024, 3, 27)
    sent = simulate(note, 28, 30, catch_up=27)
    assert sent[:2] == [note + timedelta(weeks=8), note + timedelta(weeks=16)]


def test_no_burst_a_late_first_sweep_nudges_each_action_on_its_own_day() -> None:
    # Three silent actions, silent since different days; the sweep starts months later.
    since = [date(2024, 1, 8), date(2024, 1, 22), date(2024, 2, 5)]
    first_run = date(2024, 6, 3)
    by_day: dict[date, list[int]] = {}
    for day in (first_run + timedelta(days=n) for n in range(120)):
        for i, s in enumerate(since):
            last = max((d for d, items in by_day.items() if i in items), default=None)
            found = nudge_due(s, last, day, day - timedelta(days=3), SIX_WEEKS)
            if found is not None:
                by_day.setdefault(day, []).append(i)
    assert first_run not in by_day  # not everybody at once on the first run
    assert all(len(items) == 1 for items in by_day.values()), by_day
    for day, (i,) in by_day.items():
        assert (day - since[i]).days % SIX_WEEKS == 0  # on the action's own calendar


def test_a_new_note_restarts_the_count_and_weeks_are_counted_from_it() -> None:
    note = date(2024, 3, 27)
    assert nudge_due(note, None, note + timedelta(weeks=6), note, SIX_WEEKS) == (
        note + timedelta(weeks=6),
        6,
    )
    old_nudge = note - timedelta(weeks=1)  # sent before the note: ignored
    assert nudge_due(note, old_nudge, note + timedelta(weeks=5), note, SIX_WEEKS) is None
    with pytest.raises(ValueError):
        nudge_due(note, None, note, note, 0)
