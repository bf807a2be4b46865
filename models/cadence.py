"""When a pilot is nudged: « Où en êtes-vous ? » rules, pure functions of plain facts (dates).

A pilot silent since ``since`` (their last follow-up note, or the action's start) is nudged
``period`` days after that day, then every ``period`` days of silence: on the action's own
calendar, exactly, whatever the sweep's cadence. A sweep plans the nudges of its catch-up
window (the latest one only) and those due before the next sweep could send them on their day
(its *horizon*): those are enqueued ahead, each with its own sending day, and the delivery
round sends them on it. The demo sweeps every four weeks: its 6-week nudges go out 6 weeks
apart, not 4 or 8.

The count restarts from the last nudge when it went out later than due (a sweep that did not
run in time): two nudges are never closer than the period. A nudge is only due on its own day,
or within the catch-up window after it: a sweep that starts after months without running does
not nudge every silent action at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from models.clock import PARIS


@dataclass(frozen=True, slots=True)
class LastNudge:
    """An action's latest nudge not dropped: the day a sweep planned it, the day it was due."""

    planned_on: date
    due_on: date

    @property
    def goes_out_on(self) -> date:
        """Its day when enqueued ahead, the sweep's day when caught up late."""
        return max(self.planned_on, self.due_on)


def nudge_days(
    since: date,
    last: LastNudge | None,
    as_of: date,
    window_start: date,
    horizon: date,
    period_days: int,
) -> list[tuple[date, int]]:
    """The nudges a sweep of ``as_of`` plans, each as (its day, the whole weeks of silence it
    marks): the latest due within ``[window_start, as_of]`` and every one due within
    ``(as_of, horizon]``.

    A nudge planned before ``since`` (a note written since) does not count: it is stale."""
    if period_days < 1:
        raise ValueError("the nudge period is at least one day")
    anchor = since if last is None or last.planned_on < since else last.goes_out_on
    period = timedelta(days=period_days)
    found: list[tuple[date, int]] = []
    periods = (as_of - anchor).days // period_days
    if periods >= 1 and (day := anchor + periods * period) >= window_start:
        found.append((day, (day - since).days // 7))
    day = anchor + (max(periods, 0) + 1) * period
    while day <= horizon:
        found.append((day, (day - since).days // 7))
        day += period
    return found


def sent_ahead_at(day: date, sweep_at: datetime) -> datetime:
    """When a nudge enqueued ahead goes out: on its ``day`` at the Paris wall-clock time the
    sweep runs (08:00 in production), as a daily sweep would have sent it — whatever the UTC
    offset of that day (daylight saving time)."""
    local = sweep_at.astimezone(PARIS)
    return datetime.combine(day, local.time().replace(tzinfo=None), PARIS).astimezone(UTC)
