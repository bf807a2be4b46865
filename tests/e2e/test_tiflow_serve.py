"""One-machine mode, end to end: `tiflow serve` starts a local Prefect server and serves every
deployment of prefect.yaml; a COPIL decision made against it enqueues the next-steps notice
with the decision, and the served run delivers it to a loopback SMTP server."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from flows.usecases.copil import schedule_copil
from flows.usecases.proposals import propose
from models.db import make_engine, upgrade
from models.uow import UnitOfWork
from tests.smtp_sink import SmtpSink, running_sink
from tiflow.deployments import PROJECT_ROOT, load_specs
from tiflow.example import TERRITORY_CODE, load_example
from tiflow.prefect_server import free_port, prefect_env, running, wait_healthy

pytestmark = pytest.mark.e2e
PILOT_FA02 = "isabelle.roux@uimm-touraine.example"


@pytest.fixture(scope="module")
def served(
    database_url: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("serve")
    app_url = database_url("sqlite")
    engine = make_engine(app_url)
    upgrade(engine)
    with UnitOfWork(engine) as uow:
        load_example(uow)
        uow.commit()
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    with running_sink() as sink:
        env = prefect_env(dict(os.environ), home / "prefect")
        env.update(
            TIFLOW_DATABASE_URL=app_url,
            TIFLOW_DATA_DIR=str(home / "data"),
            TIFLOW_NOTIFY_CONFIG=f"pilots,copil,coordinator={sink.url()}",
            PREFECT_RUNNER_POLL_FREQUENCY="1",
        )
        args = [sys.executable, "-m", "tiflow", "serve", "--port", str(port)]
        log = home / "serve.log"
        with running(args, env, log) as process:
            wait_healthy(api_url, process, log, timeout=120)
            _wait_for_deployments(api_url, len(load_specs()), process, log)
            yield {"api_url": api_url, "engine": engine, "sink": sink, "app_url": app_url}
    engine.dispose()


def _wait_for_deployments(api_url: str, count: int, process: Any, log: Path) -> None:
    from prefect.client.orchestration import PrefectClient

    async def deployed() -> int:
        async with PrefectClient(api=api_url) as client:
            return len(await client.read_deployments())

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        if asyncio.run(deployed()) >= count:
            return
        time.sleep(1)
    raise TimeoutError(f"tiflow serve did not register {count} deployments:\n{log.read_text()}")


def _wait_for_mail(sink: SmtpSink, address: str, timeout: float) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := sink.messages_to(address):
            return found
        time.sleep(0.5)
    return []


def test_served_copil_run_delivers_the_next_steps_notice(served: dict[str, Any]) -> None:
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    engine = served["engine"]
    with UnitOfWork(engine) as uow:
        propose(uow, TERRITORY_CODE, "FA-02", recorded_by="Claire Moreau")
        copil = schedule_copil(
            uow,
            TERRITORY_CODE,
            held_at=datetime.now(ZoneInfo("Europe/Paris")) + timedelta(days=30),
            place="CFAI d'Amboise",
            recorded_by="Claire Moreau",
        )
        uow.commit()
    # As a coordinator would from the UI: a run of the served "tenir-un-copil" deployment. (A
    # flow run in this test process would send its event through the process-wide events
    # client, which earlier tests bound to another server.)
    with temporary_settings({PREFECT_API_URL: served["api_url"]}):
        run = run_deployment(
            "Tenir un COPIL/tenir-un-copil",
            parameters={
                "decisions": {
                    "copil_id": copil.copil_id,
                    "decisions": [{"number": "FA-02", "outcome": "validée"}],
                    "recorded_by": "Claire Moreau",
                }
            },
            timeout=120,
        )
    assert run.state is not None and run.state.is_completed(), run.state

    (message, *_) = _wait_for_mail(served["sink"], PILOT_FA02, timeout=120)
    assert message["Subject"] == "Action FA-02 validée en COPIL : prochaines étapes"
    assert PROJECT_ROOT.joinpath("prefect.yaml").exists()
