"""Starting Prefect on a slow machine: a server that does not come up is retried once, then the
command prints one French line saying what happened and what to do, and exits 1 (no
traceback). And how a command finds the server of a running `tiflow serve`."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from models.db import make_engine, upgrade
from tiflow.prefect_server import (
    LOCAL_SERVER_FILE,
    PrefectUnavailable,
    local_server,
    prefect_env,
    recorded_local_server,
    start_timeout,
    temporary_server_settings,
)

pytestmark = pytest.mark.e2e


def _tiflow(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tiflow", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def cli_env(tmp_path: Path, database_url: Callable[[str], str]) -> dict[str, str]:
    """A coordinator's shell: a fresh data dir and Prefect home, no PREFECT_API_URL."""
    url = database_url("sqlite")
    upgrade(make_engine(url))
    env = prefect_env(dict(os.environ), tmp_path / "prefect")
    env.update(TIFLOW_DATABASE_URL=url, TIFLOW_DATA_DIR=str(tmp_path / "data"), NO_COLOR="1")
    env.update(COLUMNS="300")
    return env


def _one_french_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "RuntimeError" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_an_ephemeral_server_too_slow_to_start_is_one_french_line(
    cli_env: dict[str, str],
) -> None:
    cli_env["TIFLOW_PREFECT_START_TIMEOUT"] = "1"  # no Prefect server starts in a second
    line = _one_french_error(_tiflow(["run", "rappels", "--au", "04/03/2024"], cli_env))
    assert line.startswith("Erreur : le serveur Prefect temporaire n'a pas démarré après deux")
    assert "TIFLOW_PREFECT_START_TIMEOUT" in line and "PREFECT_API_URL" in line


def test_a_local_server_that_cannot_start_is_one_french_line(cli_env: dict[str, str]) -> None:
    with socket.socket() as taken:  # the port is in use: `prefect server start` exits
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _one_french_error(_tiflow(["serve", "--port", str(port)], cli_env))
    assert line.startswith(f"Erreur : le serveur Prefect local (port {port}) n'a pas démarré")
    assert "server.log" in line and "TIFLOW_PREFECT_START_TIMEOUT" in line


def test_an_unreachable_prefect_api_url_is_one_french_line(cli_env: dict[str, str]) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    cli_env["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    line = _one_french_error(_tiflow(["run", "rappels", "--au", "04/03/2024"], cli_env))
    assert f"PREFECT_API_URL (http://127.0.0.1:{port}/api) ne répond pas" in line


def test_the_start_timeout_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIFLOW_PREFECT_START_TIMEOUT", raising=False)
    assert start_timeout() == 120
    monkeypatch.setenv("TIFLOW_PREFECT_START_TIMEOUT", "300")
    assert start_timeout() == 300
    monkeypatch.setenv("TIFLOW_PREFECT_START_TIMEOUT", "deux minutes")
    with pytest.raises(PrefectUnavailable, match="attendu un nombre de secondes"):
        start_timeout()


def test_the_temporary_server_runs_no_automations_and_records_events_in_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names = (
        "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED",
        "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE",
        "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE",
    )
    for name in names:
        monkeypatch.delenv(name, raising=False)
    wanted = {setting.name: value for setting, value in temporary_server_settings().items()}
    assert wanted == dict(zip(names, (False, 100, 100), strict=True))
    # what the operator set in the environment wins: that setting is left alone
    monkeypatch.setenv("PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE", "20")
    left = {setting.name for setting in temporary_server_settings()}
    assert left == set(names[:2])


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = self.path == "/api/health"
        self.send_response(200 if ok else 404)
        self.end_headers()
        self.wfile.write(b"true" if ok else b"")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def answering_api() -> Iterator[str]:
    """An HTTP server on loopback that answers a health check like Prefect's API does."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api"
    server.shutdown()
    server.server_close()


def test_a_recorded_server_is_used_only_while_it_answers(
    tmp_path: Path, answering_api: str
) -> None:
    assert local_server(tmp_path) is None  # nothing recorded
    with recorded_local_server(tmp_path, answering_api) as record:
        assert record == tmp_path / LOCAL_SERVER_FILE
        assert local_server(tmp_path) == answering_api
    assert not record.exists()  # removed when `tiflow serve` stops
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        stale = f"http://127.0.0.1:{closed.getsockname()[1]}/api"
    (tmp_path / LOCAL_SERVER_FILE).write_text(f'{{"api_url": "{stale}", "pid": 1}}', "utf-8")
    assert local_server(tmp_path) is None  # left by a `tiflow serve` that was killed
