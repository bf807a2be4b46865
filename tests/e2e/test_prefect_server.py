"""End to end, as in production: a real `prefect server start` (on PostgreSQL when available,
mandatory in CI), `prefect deploy --all` from prefect.yaml, a process worker, and a loopback
SMTP server. A COPIL decision run by the worker validates an action: its next-steps e-mail,
enqueued with the decision, must reach the pilot, and its `tiflow.action.validated` event
the server.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from flows.usecases.copil import schedule_copil
from flows.usecases.proposals import propose
from models.db import make_engine, upgrade
from models.uow import UnitOfWork
from tests.conftest import PG_URL
from tests.smtp_sink import SmtpSink, running_sink
from tiflow.deployments import PROJECT_ROOT, load_specs
from tiflow.example import TERRITORY_CODE, load_example
from tiflow.prefect_server import PREFECT, prefect_cli, prefect_env, prefect_server, running

pytestmark = pytest.mark.e2e
PARIS = ZoneInfo("Europe/Paris")
PILOT_FA07 = "isabelle.roux@uimm-touraine.example"


@pytest.fixture(scope="module")
def prefect_database() -> Iterator[str | None]:
    """A PostgreSQL database of its own for the Prefect server (with pg_trgm), or None: SQLite."""
    admin = make_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError:
        admin.dispose()
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is mandatory in CI and did not answer at {PG_URL}")
        yield None
        return
    name = f"tiflow_e2e_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(PG_URL).set(drivername="postgresql+psycopg", database=name)
    with make_engine(url.render_as_string(hide_password=False)).connect() as conn:
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        conn.commit()
    yield url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def stack(
    prefect_database: str | None,
    database_url: Callable[[str], str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """Server + deployments + worker + SMTP sink + an application database with the example."""
    home = tmp_path_factory.mktemp("prefect-home")
    backend = "postgresql" if prefect_database else "sqlite"
    app_url = database_url(backend)
    engine = make_engine(app_url)
    upgrade(engine)
    with UnitOfWork(engine) as uow:
        load_example(uow)
        uow.commit()
    with running_sink() as sink, prefect_server(home, prefect_database) as api_url:
        env = prefect_env(dict(os.environ), home, api_url=api_url)
        env.update(
            TIFLOW_DATABASE_URL=app_url,
            TIFLOW_DATA_DIR=str(tmp_path_factory.mktemp("tiflow-data")),
            TIFLOW_NOTIFY_CONFIG=f"pilots,copil,coordinator={sink.url()}",
            PREFECT_WORKER_QUERY_SECONDS="1",
            PREFECT_FLOWS_HEARTBEAT_FREQUENCY="30",
        )
        prefect_cli(["work-pool", "create", "tiflow", "--type", "process"], env, PROJECT_ROOT)
        prefect_cli(["deploy", "--all", "--no-prompt"], env, PROJECT_ROOT, timeout=300)
        worker = [PREFECT, "worker", "start", "--pool", "tiflow", "--limit", "4"]
        with running(worker, env, home / "worker.log"):
            yield {"api_url": api_url, "engine": engine, "sink": sink, "env": env, "home": home}
    engine.dispose()


def _client(api_url: str) -> Any:
    from prefect.client.orchestration import PrefectClient

    return PrefectClient(api=api_url)


def _messages_for(sink: SmtpSink, address: str, timeout: float) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sink.messages_to(address)
        if found:
            return found
        time.sleep(0.5)
    return []


def test_copil_validation_sends_the_next_steps_email_through_a_real_worker(
    stack: dict[str, Any],
) -> None:
    engine = stack["engine"]
    with UnitOfWork(engine) as uow:
        propose(uow, TERRITORY_CODE, "FA-07", recorded_by="Claire Moreau")
        copil = schedule_copil(
            uow,
            TERRITORY_CODE,
            held_at=datetime.now(PARIS) + timedelta(days=20),
            place="Amboise",
            recorded_by="Claire Moreau",
        )
        uow.commit()

    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: stack["api_url"]}):
        run = run_deployment(
            "Tenir un COPIL/tenir-un-copil",
            parameters={
                "decisions": {
                    "copil_id": copil.copil_id,
                    "decisions": [{"number": "FA-07", "outcome": "validée"}],
                    "recorded_by": "Claire Moreau",
                }
            },
            timeout=180,
        )
    assert run.state is not None and run.state.is_completed(), run.state

    (message, *_) = _messages_for(stack["sink"], PILOT_FA07, timeout=60)
    assert "FA-07" in message["Subject"] and "validée" in message["Subject"]
    validated = asyncio.run(_events(stack["api_url"], "tiflow.action.validated"))
    assert [e.resource["tiflow.action.number"] for e in validated] == ["FA-07"]


async def _events(api_url: str, name: str, timeout: float = 60) -> list[Any]:
    """The events named `name` once the server has stored some (it stores them in the
    background)."""
    from prefect.events.filters import EventFilter, EventNameFilter

    deadline = time.monotonic() + timeout
    async with _client(api_url) as client:
        while True:
            wanted = EventFilter(event=EventNameFilter(name=[name]))
            page = await client.read_events(filter=wanted, limit=50)  # the server caps it at 50
            if page.events or time.monotonic() > deadline:
                return list(page.events)
            await asyncio.sleep(0.5)


async def _schedules(api_url: str) -> dict[str, list[Any]]:
    async with _client(api_url) as client:
        deployments = await client.read_deployments()
    return {d.name: [s.schedule for s in d.schedules] for d in deployments}


def test_deployed_schedules_run_at_local_paris_time_across_dst_changes(
    stack: dict[str, Any],
) -> None:
    from prefect.server.schemas.schedules import CronSchedule

    deployed = asyncio.run(_schedules(stack["api_url"]))
    specs = {spec.name: spec for spec in load_specs()}
    assert set(specs) <= set(deployed), "every deployment of prefect.yaml is on the server"

    reminders = deployed["rappels-quotidiens"]
    assert len(reminders) == 1
    schedule = CronSchedule(**reminders[0].model_dump(exclude={"type"}))
    assert schedule.timezone == "Europe/Paris"
    # Around the spring-forward (28 March 2027) and fall-back (31 October 2027) changes.
    for start in (datetime(2027, 3, 25, tzinfo=PARIS), datetime(2027, 10, 28, tzinfo=PARIS)):
        runs = asyncio.run(schedule.get_dates(n=7, start=start))
        local = [r.astimezone(PARIS) for r in runs]
        assert [d.hour for d in local] == [8] * 7, local
        days = [d.date() for d in local]
        assert days == [start.date() + timedelta(days=i) for i in range(7)], (
            "none skipped or doubled"
        )

    budget = CronSchedule(**deployed["budget-annuel"][0].model_dump(exclude={"type"}))
    january = asyncio.run(budget.get_dates(n=7, start=datetime(2027, 1, 1, tzinfo=PARIS)))
    assert [d.astimezone(PARIS).day for d in january] == [1, 2, 3, 4, 5, 6, 7]
    assert {d.astimezone(PARIS).hour for d in january} == {7}
