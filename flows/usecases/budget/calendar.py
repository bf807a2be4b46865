"""When the yearly consolidation runs: the first working day of January in France.

French public holidays come from the `holidays` package (pendulum has no business days). In
practice 1 January is the only public holiday of the month, so the first working day is 2, 3
or 4 January; the code does not rely on it, the holiday table decides.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays

from models import clock

PARIS = ZoneInfo("Europe/Paris")


@cache
def _french_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("FR", years=year)


def is_working_day(day: date) -> bool:
    """Monday to Friday and not a French public holiday."""
    return day.weekday() < 5 and day not in _french_holidays(day.year)


def working_day_on_or_after(day: date) -> date:
    """`day` if it is a working day, else the next one (a deadline set on a Sunday, on
    1 January or on Toussaint moves to the next working day)."""
    while not is_working_day(day):
        day += timedelta(days=1)
    return day


def first_working_day(year: int) -> date:
    """The first working day of `year` in France (1 January is always a public holiday)."""
    day = date(year, 1, 1)
    while not is_working_day(day):
        day += timedelta(days=1)
    return day


def is_consolidation_day(day: date) -> bool:
    """True on the day the yearly budget consolidation runs: the first working day of January."""
    return day == first_working_day(day.year)


def paris_today(now: datetime | None = None) -> date:
    """Today's date in Europe/Paris (`now` must be aware)."""
    return (now or clock.now()).astimezone(PARIS).date()


def current_year(now: datetime | None = None) -> int:
    """The current year in Europe/Paris: on 1 January at 00:30 Paris it is already the new year,
    while UTC still says 31 December."""
    return paris_today(now).year
