"""When a pilot is nudged: « Où en êtes-vous ? » rules, pure functions of plain facts (dates).

A pilot silent since ``since`` (their last follow-up note, or the action's start) is nudged
``period`` days after the later of that day and the day their last nudge went out, then every
``period`` days of silence. Anchoring on the nudge actually *sent* — not on the day it was due —
keeps the configured period between two nudges whatever the sweep's cadence: a nudge caught up
two weeks late by a sweep every four weeks does not bring the next one two weeks closer (the
demo's nudges 4 weeks apart for a 6-week period). A nudge is only due on its own day, or
within the catch-up window after it: a sweep that starts after months without running does not
nudge every silent action at once.
"""

from __future__ import annotations

from datetime import date, timedelta


def nudge_due(
    since: date, last_nudge: date | None, as_of: date, window_start: date, period_days: int
) -> tuple[date, int] | None:
    """The day a nudge is due within ``[window_start, as_of]`` and the whole weeks of silence
    it marks, or None."""
    if period_days < 1:
        raise ValueError("the nudge period is at least one day")
    anchor = since if last_nudge is None or last_nudge < since else last_nudge
    periods = (as_of - anchor).days // period_days
    if periods < 1:
        return None
    day = anchor + timedelta(days=periods * period_days)
    if day < window_start:
        return None
    return day, (day - since).days // 7
