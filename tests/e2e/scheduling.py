"""What both end-to-end modules check about schedules, on the runs the server's scheduler made.

The scheduler creates runs ahead of time (Prefect's `PREFECT_SERVER_SERVICES_SCHEDULER_*`
settings): it stops at `min_runs` runs once they reach `min_scheduled_time` ahead, and never goes
past `max_runs` or `max_scheduled_time`. `SCHEDULER_ENV` asks it for a year and a few days, so
the runs across the next spring-forward and fall-back changes exist a few seconds after the
deployments are created (its "recent deployments" loop), and the test reads them back instead
of computing the schedules itself.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from tiflow.deployments import PREFECT_YAML, load_specs

PARIS = ZoneInfo("Europe/Paris")
HORIZON_DAYS = 380  # the next two DST changes are always within a year and a week
SCHEDULER_ENV = {
    "PREFECT_SERVER_SERVICES_SCHEDULER_MAX_SCHEDULED_TIME": f"P{HORIZON_DAYS}D",
    "PREFECT_SERVER_SERVICES_SCHEDULER_MIN_SCHEDULED_TIME": f"P{HORIZON_DAYS}D",
    "PREFECT_SERVER_SERVICES_SCHEDULER_MAX_RUNS": "400",
}
MINUTE_DEPLOYMENT = "essai-chaque-minute"

# Every scheduled deployment of prefect.yaml and what its runs must be, in Paris time. A new
# scheduled deployment fails `test_…` until it is described here.
DAILY = {"rappels-quotidiens": (8, 0), "syntheses-copil": (7, 30), "suites-copil": (8, 15)}
JANUARY_FIRST_WEEK = {"budget-annuel": (7, 0)}
QUARTER_HOURS = {"envoi-messages-en-attente"}


def yaml_with_minute_deployment(folder: Path) -> Path:
    """prefect.yaml plus a short deployment whose schedule fires every minute (the outbox round:
    harmless and quick), for a run that nobody starts."""
    document = yaml.safe_load(PREFECT_YAML.read_text(encoding="utf-8"))
    document["deployments"].append(
        {
            "name": MINUTE_DEPLOYMENT,
            "entrypoint": "flows/outbox.py:deliver_outbox",
            "description": "Essai : une tournée d'envoi chaque minute.",
            "work_pool": {"name": "tiflow", "work_queue_name": "default"},
            "schedules": [{"cron": "* * * * *", "timezone": "Europe/Paris"}],
        }
    )
    path = folder / "prefect-essai.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), "utf-8")
    return path


def next_dst_changes(today: date) -> list[date]:
    """The days of the next two changes of Paris's UTC offset after `today`."""
    changes: list[date] = []
    day = today
    while len(changes) < 2:
        noon = datetime(day.year, day.month, day.day, 12, tzinfo=PARIS)
        if noon.utcoffset() != (noon - timedelta(days=1)).utcoffset():
            changes.append(day)
        day += timedelta(days=1)
    return changes


async def _scheduled_runs(api_url: str, deployment: str) -> list[Any]:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    runs: list[Any] = []
    async with PrefectClient(api=api_url) as client:
        while True:
            page = await client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment])),
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])
                    )
                ),
                sort=FlowRunSort.EXPECTED_START_TIME_ASC,
                limit=200,
                offset=len(runs),
            )
            runs.extend(page)
            if len(page) < 200:
                return runs


def scheduled_runs(api_url: str, deployment: str) -> list[Any]:
    """The future runs of `deployment` that the server's scheduler created, in time order."""
    runs = asyncio.run(_scheduled_runs(api_url, deployment))
    return [r for r in runs if r.auto_scheduled]


def wait_for_horizon(api_url: str, alive: Callable[[], None], timeout: float = 180) -> None:
    """Until the scheduler has created the daily runs up to past the next two DST changes."""
    last = next_dst_changes(date.today())[-1] + timedelta(days=3)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive()
        runs = scheduled_runs(api_url, "rappels-quotidiens")
        if runs and runs[-1].expected_start_time.astimezone(PARIS).date() >= last:
            return
        time.sleep(2)
    raise TimeoutError(f"the scheduler did not create the daily runs up to {last}")


def local_times(runs: list[Any]) -> list[datetime]:
    return [r.expected_start_time.astimezone(PARIS) for r in runs]


def check_scheduler_runs(api_url: str) -> None:
    """Every scheduled deployment's runs, as the server's scheduler created them, fall on the
    Paris times prefect.yaml promises, the days around both DST changes included."""
    scheduled = {spec.name for spec in load_specs() if spec.schedules}
    assert scheduled == set(DAILY) | set(JANUARY_FIRST_WEEK) | QUARTER_HOURS
    changes = next_dst_changes(date.today())
    for name, (hour, minute) in DAILY.items():
        local = local_times(scheduled_runs(api_url, name))
        assert {(t.hour, t.minute) for t in local} == {(hour, minute)}, (name, local[:5])
        days = [t.date() for t in local]
        assert days == [days[0] + timedelta(days=i) for i in range(len(days))], (
            f"{name}: a day skipped or doubled"
        )
        for change in changes:
            assert change - timedelta(days=3) in days and change + timedelta(days=3) in days
            before, after = (
                next(t for t in local if t.date() == change + timedelta(days=d)) for d in (-1, 1)
            )
            # Same Paris hour, another UTC hour: the scheduler really crossed the change.
            assert before.utcoffset() != after.utcoffset(), (name, before, after)
    for name, (hour, minute) in JANUARY_FIRST_WEEK.items():
        local = local_times(scheduled_runs(api_url, name))
        january = next(t.year for t in local)
        assert [(t.year, t.month, t.day, t.hour, t.minute) for t in local[:7]] == [
            (january, 1, day, hour, minute) for day in range(1, 8)
        ], (name, local)
    for name in QUARTER_HOURS:
        local = local_times(scheduled_runs(api_url, name))
        assert len(local) >= 96, (name, len(local))
        assert {t.minute for t in local} <= {0, 15, 30, 45}
        gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(local)}
        assert gaps == {15 * 60.0}, (name, sorted(gaps)[:10])


async def _started_runs(api_url: str, deployment: str) -> list[Any]:
    """The runs of `deployment` whose state is no longer "Scheduled" (due, running, done)."""
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    async with PrefectClient(api=api_url) as client:
        return await client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(not_any_=[StateType.SCHEDULED])
                )
            ),
        )


def wait_for_scheduled_run_done(api_url: str, alive: Callable[[], None], timeout: float) -> Any:
    """The first run of the one-minute deployment that the scheduler made and that finished."""
    deadline = time.monotonic() + timeout
    runs: list[Any] = []
    while time.monotonic() < deadline:
        alive()
        runs = asyncio.run(_started_runs(api_url, MINUTE_DEPLOYMENT))
        if run := next((r for r in runs if r.auto_scheduled and r.state.is_final()), None):
            return run
        time.sleep(2)
    states = [(r.name, r.state_name, r.expected_start_time) for r in runs]
    raise TimeoutError(f"no scheduled run of {MINUTE_DEPLOYMENT} finished in {timeout} s: {states}")


# What an error looks like in a Prefect server's log: a line at ERROR or CRITICAL level in
# Prefect's format ("12:00:00.123 | ERROR   | prefect.server.services.scheduler - …") or
# uvicorn's ("ERROR:    Exception in ASGI application"), a traceback, or its last line
# ("sqlalchemy.exc.InvalidRequestError: …"). The server logs at WARNING and above only.
_ERROR_LINE = re.compile(
    r"\|\s*(ERROR|CRITICAL)\s*\||^(ERROR|CRITICAL):|^Traceback \(most recent"
    r"|^[A-Za-z_][\w.]*(Error|Exception): "
)
BANNER = "View the API reference documentation at"  # the server started and logs here


def server_errors(log: str) -> list[str]:
    """The lines of a Prefect server's log that report an error (a service loop, an endpoint)."""
    return [line for line in log.splitlines() if _ERROR_LINE.search(line)]
