"""When the yearly consolidation runs: first working day of January, 07:00 Europe/Paris."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import holidays
import pytest
from prefect.server.schemas.schedules import CronSchedule

from flows.budget import TIMEZONE, YEARLY_CRON, yearly_schedule
from flows.usecases.budget.calendar import (
    PARIS,
    current_year,
    first_working_day,
    is_consolidation_day,
)


@pytest.mark.parametrize(
    ("year", "expected"),
    [
        (2022, date(2022, 1, 3)),  # 1 January a Saturday: Monday 3
        (2023, date(2023, 1, 2)),  # 1 January a Sunday: Monday 2
        (2021, date(2021, 1, 4)),  # 1 January a Friday: Saturday and Sunday follow, Monday 4
        (2024, date(2024, 1, 2)),  # 1 January a Monday (holiday): Tuesday 2
        (2028, date(2028, 1, 3)),  # Saturday again
        (2034, date(2034, 1, 2)),  # Sunday again
    ],
)
def test_first_working_day_skips_new_year_and_the_weekend(year: int, expected: date) -> None:
    assert first_working_day(year) == expected


def test_first_working_day_is_the_first_non_holiday_weekday_for_a_century() -> None:
    french = holidays.country_holidays("FR", years=range(2000, 2101))
    for year in range(2000, 2101):
        day = first_working_day(year)
        assert day.weekday() < 5 and day not in french
        before = [
            date(year, 1, 1) + timedelta(days=n) for n in range((day - date(year, 1, 1)).days)
        ]
        assert all(d.weekday() >= 5 or d in french for d in before), year


def test_current_year_is_the_year_in_paris_not_in_utc() -> None:
    new_year_in_paris = datetime(2024, 12, 31, 23, 30, tzinfo=UTC)  # 00:30 on 1 January in Paris
    assert current_year(new_year_in_paris) == 2025


def test_the_schedule_fires_once_a_year_on_the_first_working_day_at_7_in_paris() -> None:
    schedule = yearly_schedule()
    assert (schedule.cron, schedule.timezone, schedule.day_or) == (YEARLY_CRON, TIMEZONE, False)
    assert schedule.parameters == {"params": {"scheduled": True}}
    server_side = CronSchedule(cron=YEARLY_CRON, timezone=TIMEZONE, day_or=False)
    start, end = datetime(2022, 1, 1, tzinfo=UTC), datetime(2035, 1, 1, tzinfo=UTC)
    fires = asyncio.run(server_side.get_dates(n=200, start=start, end=end))
    assert {f.month for f in fires} == {1} and {f.day for f in fires} == set(range(1, 8))
    kept = [f for f in fires if is_consolidation_day(f.astimezone(PARIS).date())]
    assert [f.astimezone(PARIS).date() for f in kept] == [
        first_working_day(y) for y in range(2022, 2035)
    ]
    assert {(f.astimezone(PARIS).hour, f.astimezone(PARIS).minute) for f in kept} == {(7, 0)}
