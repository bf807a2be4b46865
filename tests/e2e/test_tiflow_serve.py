"""One-machine mode, end to end: `tiflow serve --port N` (N ≠ 4200) starts a local Prefect server
and serves every deployment of prefect.yaml (plus a one-minute test deployment). A COPIL decision
made against it enqueues the next-steps notice with the decision, and the served run delivers it
to a loopback SMTP server; the server's scheduler creates the scheduled runs at the right Paris
times and the served process completes one nobody started; its UI talks to its own API (a real
Chromium shows the deployments and a French form); `tiflow run rappels` in another process uses
that server instead of a temporary one; and the server's log shows no error."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
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
from tests.browser import chromium_driver, wait_for_text
from tests.e2e.scheduling import (
    BANNER,
    MINUTE_DEPLOYMENT,
    SCHEDULER_ENV,
    check_scheduler_runs,
    server_errors,
    wait_for_horizon,
    wait_for_scheduled_run_done,
    yaml_with_minute_deployment,
)
from tests.smtp_sink import SmtpSink, running_sink
from tiflow.deployments import PROJECT_ROOT, load_specs
from tiflow.example import TERRITORY_CODE, load_example
from tiflow.prefect_server import LOCAL_SERVER_FILE, free_port, prefect_env, running, wait_healthy

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
    assert port != 4200
    api_url = f"http://127.0.0.1:{port}/api"
    deployments = yaml_with_minute_deployment(home)
    with running_sink() as sink:
        env = prefect_env(dict(os.environ), home / "prefect")
        env.update(SCHEDULER_ENV)
        env.update(
            TIFLOW_DATABASE_URL=app_url,
            TIFLOW_DATA_DIR=str(home / "data"),
            TIFLOW_NOTIFY_CONFIG=f"pilots,copil,coordinator={sink.url()}",
            PREFECT_RUNNER_POLL_FREQUENCY="1",
        )
        args = [sys.executable, "-m", "tiflow", "serve", "--port", str(port)]
        args += ["--deploiements", str(deployments)]
        log = home / "serve.log"
        with running(args, env, log) as process:
            wait_healthy(api_url, process, log, timeout=240)
            _wait_for_deployments(api_url, len(load_specs()) + 1, process, log)

            def alive() -> None:
                assert process.poll() is None, log.read_text()[-3000:]

            yield {
                "api_url": api_url,
                "engine": engine,
                "sink": sink,
                "app_url": app_url,
                "home": home,
                "env": env,
                "alive": alive,
            }
    engine.dispose()


def _wait_for_deployments(api_url: str, count: int, process: Any, log: Path) -> None:
    from prefect.client.orchestration import PrefectClient

    async def deployed() -> int:
        async with PrefectClient(api=api_url) as client:
            return len(await client.read_deployments())

    deadline = time.monotonic() + 180
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
    assert message["Subject"] == "Action FA-02 validée en COPIL\u00a0: prochaines étapes"
    assert PROJECT_ROOT.joinpath("prefect.yaml").exists()


def test_the_servers_scheduler_creates_the_served_runs_at_paris_time_across_dst(
    served: dict[str, Any],
) -> None:
    wait_for_horizon(served["api_url"], served["alive"])
    check_scheduler_runs(served["api_url"])


def test_the_served_process_completes_a_scheduled_run_that_nobody_started(
    served: dict[str, Any],
) -> None:
    run = wait_for_scheduled_run_done(served["api_url"], served["alive"], timeout=300)
    assert run.state.is_completed(), run.state
    assert run.auto_scheduled and run.expected_start_time.second == 0


def test_the_ui_calls_the_api_of_the_server_tiflow_serve_started(served: dict[str, Any]) -> None:
    """The UI reads its API URL from /ui-settings: it must be this server's, not port 4200."""
    root = served["api_url"].removesuffix("/api")
    with urllib.request.urlopen(f"{root}/ui-settings", timeout=10) as response:
        settings = json.load(response)
    assert settings["api_url"] == served["api_url"]


def _deployment_id(api_url: str, name: str) -> str:
    from prefect.client.orchestration import PrefectClient

    async def read() -> str:
        async with PrefectClient(api=api_url) as client:
            return str((await client.read_deployment_by_name(name)).id)

    return asyncio.run(read())


def test_a_real_browser_shows_the_deployments_and_a_french_run_form(
    served: dict[str, Any], tmp_path: Path
) -> None:
    """Debian's Chromium on the UI of `tiflow serve --port N`: the deployments page lists the
    deployments (so the UI reached this server's API), and the run form of « Enregistrer un
    financement » shows its French headings and fields."""
    root = served["api_url"].removesuffix("/api")
    with chromium_driver() as driver:
        driver.get(f"{root}/deployments")
        names = sorted([spec.name for spec in load_specs()] + [MINUTE_DEPLOYMENT])
        # The page lists them 10 at a time, A to Z: its count and its first page.
        text = wait_for_text(driver, f"{len(names)} Deployments", *names[:10], timeout=120)
        driver.save_screenshot(str(tmp_path / "deployments.png"))
        assert "Can't connect" not in text
        deployment = _deployment_id(
            served["api_url"], "Enregistrer un financement/enregistrer-un-financement"
        )
        driver.get(f"{root}/deployments/deployment/{deployment}/run")
        text = wait_for_text(
            driver, "Financement", "N° de l'action", "Financeur", "Montant accordé (€)", timeout=120
        )
        driver.save_screenshot(str(tmp_path / "run-form.png"))
    assert "funding" not in text and "Funding" not in text
    assert (tmp_path / "deployments.png").stat().st_size > 10_000


def test_a_cli_run_uses_the_server_of_tiflow_serve(served: dict[str, Any]) -> None:
    """`tiflow run rappels` in another shell (no PREFECT_API_URL) finds the running serve
    through the URL it recorded in TIFLOW_DATA_DIR, says so, and its run is on that server."""
    assert (Path(served["env"]["TIFLOW_DATA_DIR"]) / LOCAL_SERVER_FILE).exists()
    env = prefect_env(dict(os.environ), served["home"] / "cli-prefect")
    env.update({k: served["env"][k] for k in ("TIFLOW_DATABASE_URL", "TIFLOW_DATA_DIR")})
    env.update(NO_COLOR="1", COLUMNS="200")
    result = subprocess.run(
        [sys.executable, "-m", "tiflow", "run", "rappels", "--au", "2024-03-04"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    root = served["api_url"].removesuffix("/api")
    assert f"Prefect : serveur local de « tiflow serve » ({root})" in result.stdout
    assert "Rappels d'échéances du lundi 4 mars 2024" in result.stdout

    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterDeploymentId,
    )

    async def runs_by_hand() -> list[Any]:
        # Asked of the server, not filtered here: the scheduler keeps creating the year's
        # 370 scheduled runs of the daily deployment, more than one page of the API (200),
        # and the run by hand is not always on the first one.
        async with PrefectClient(api=served["api_url"]) as client:
            return await client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["rappels-echeances"])),
                flow_run_filter=FlowRunFilter(
                    deployment_id=FlowRunFilterDeploymentId(is_null_=True)
                ),
            )

    by_hand = asyncio.run(runs_by_hand())
    assert [r.state_name for r in by_hand] == ["Completed"]
    assert all(r.deployment_id is None for r in by_hand)


def test_the_server_log_shows_no_error_from_its_scheduler_or_loop_services(
    served: dict[str, Any],
) -> None:
    """Last of the module: the log covers the whole run above."""
    log = (served["home"] / "prefect" / "server.log").read_text("utf-8", errors="replace")
    assert BANNER in log, log[-2000:]
    assert server_errors(log) == [], log[-5000:]
