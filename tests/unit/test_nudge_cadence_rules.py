"""« Où en êtes-vous ? » cadence on plain dates (models.cadence), against the failures seen in
comparable tools: nudges in one burst on one date whatever the items' dates, and a configured
period not respected when the sweep runs less often than daily (6-week nudges 4 or 8 weeks
apart with a sweep every 4 weeks)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from models.cadence import LastNudge, nudge_days, sent_ahead_at

SIX_WEEKS = 42


def simulate(since: date, cadence_days: int, weeks: int, catch_up: int) -> list[date]:
    """Days the nudges of one action silent since `since` go out, the sweep running every
    `cadence_days` from `since` for `weeks` weeks with `catch_up` days of catch-up (nudges
    due before the next sweep enqueued ahead, sent on their day)."""
    out: dict[date, date] = {}  # day it goes out -> day it was planned
    day = since
    while day <= since + timedelta(weeks=weeks):
        latest = max(out, default=None)
        last = LastNudge(out[latest], latest) if latest else None
        window = day - timedelta(days=catch_up)
        for due, _weeks in nudge_days(since, last, day, window, day + timedelta(catch_up), 42):
            out[max(due, day)] = day
        day += timedelta(days=cadence_days)
    return sorted(d for d in out if d <= since + timedelta(weeks=weeks))


def test_a_daily_sweep_nudges_exactly_every_period_from_the_last_note() -> None:
    note = date(2024, 3, 27)
    sent = simulate(note, 1, 30, catch_up=3)
    assert sent == [note + timedelta(weeks=w) for w in (6, 12, 18, 24, 30)]


@pytest.mark.parametrize("cadence", [1, 2, 7, 14, 28])
def test_whatever_the_sweep_cadence_nudges_go_out_exactly_every_period(cadence: int) -> None:
    # The sweep catches up what fell since the previous one (catch_up = cadence - 1, as the
    # demo): the same days as with a daily sweep.
    note = date(2024, 3, 27)
    assert simulate(note, cadence, 52, catch_up=cadence - 1) == simulate(note, 1, 52, 3)


def test_the_demo_sweep_every_four_weeks_nudges_six_weeks_apart() -> None:
    # Before: the nudge due at +6 weeks went out at the +8 weeks sweep, the next at +16.
    note = date(2024, 3, 27)
    sent = simulate(note, 28, 30, catch_up=27)
    assert sent == [note + timedelta(weeks=w) for w in (6, 12, 18, 24, 30)]


def test_a_sweep_plans_ahead_only_what_falls_before_its_horizon() -> None:
    note = date(2024, 3, 27)
    day = note + timedelta(weeks=4)
    ahead = nudge_days(note, None, day, day - timedelta(27), day + timedelta(27), SIX_WEEKS)
    assert ahead == [(note + timedelta(weeks=6), 6)]
    assert nudge_days(note, None, day, day, day, SIX_WEEKS) == []  # daily, no catch-up
    # A weekly nudge period and a 4-weekly sweep: every week of the horizon, each on its day.
    week = nudge_days(note, None, note, note, note + timedelta(27), 7)
    assert week == [(note + timedelta(weeks=w), w) for w in (1, 2, 3)]


def test_a_nudge_already_enqueued_ahead_is_not_planned_again() -> None:
    note = date(2024, 3, 27)
    due = note + timedelta(weeks=6)
    last = LastNudge(planned_on=note + timedelta(weeks=4), due_on=due)
    day = due - timedelta(days=1)
    assert nudge_days(note, last, day, day - timedelta(3), day + timedelta(3), SIX_WEEKS) == []
    assert nudge_days(note, last, due + timedelta(weeks=5), due, due + timedelta(weeks=6), 42) == [
        (due + timedelta(weeks=6), 12)
    ]


def test_a_late_sweep_keeps_the_period_from_the_nudge_it_sent_late() -> None:
    # The sweep stopped: the 6-week nudge went out 10 days late; the next one waits 6 weeks.
    note = date(2024, 3, 27)
    late = LastNudge(planned_on=note + timedelta(weeks=6, days=10), due_on=note + timedelta(42))
    day = note + timedelta(weeks=12)
    found = nudge_days(note, late, day, day - timedelta(3), day + timedelta(27), SIX_WEEKS)
    assert found == [(late.goes_out_on + timedelta(weeks=6), 13)]


def test_no_burst_a_late_first_sweep_nudges_each_action_on_its_own_day() -> None:
    # Three silent actions, silent since different days; the sweep starts months later.
    since = [date(2024, 1, 8), date(2024, 1, 22), date(2024, 2, 5)]
    first_run = date(2024, 6, 3)
    by_day: dict[date, list[int]] = {}
    for day in (first_run + timedelta(days=n) for n in range(120)):
        for i, s in enumerate(since):
            sent = [d for d, items in by_day.items() if i in items]
            last = LastNudge(max(sent), max(sent)) if sent else None
            for due, _ in nudge_days(s, last, day, day - timedelta(days=3), day, SIX_WEEKS):
                by_day.setdefault(due, []).append(i)
    assert first_run not in by_day  # not everybody at once on the first run
    assert all(len(items) == 1 for items in by_day.values()), by_day
    for day, (i,) in by_day.items():
        assert (day - since[i]).days % SIX_WEEKS == 0  # on the action's own calendar


def test_a_new_note_restarts_the_count_and_weeks_are_counted_from_it() -> None:
    note = date(2024, 3, 27)
    six = note + timedelta(weeks=6)
    assert nudge_days(note, None, six, note, six, SIX_WEEKS) == [(six, 6)]
    # Enqueued ahead before the note (it will be dropped as stale): ignored.
    stale = LastNudge(planned_on=note - timedelta(weeks=1), due_on=note + timedelta(days=2))
    assert nudge_days(note, stale, note + timedelta(weeks=5), note, note, SIX_WEEKS) == []
    assert nudge_days(note, stale, six, six, six, SIX_WEEKS) == [(six, 6)]
    with pytest.raises(ValueError):
        nudge_days(note, None, note, note, note, 0)


def test_a_nudge_enqueued_ahead_goes_out_at_the_sweeps_paris_time_across_dst() -> None:
    sweep = datetime(2024, 3, 4, 7, 0, tzinfo=UTC)  # 08:00 in Paris (winter)
    summer = sent_ahead_at(date(2024, 4, 15), sweep)
    assert summer == datetime(2024, 4, 15, 6, 0, tzinfo=UTC)  # 08:00 in Paris (summer)
