"""A real `prefect server start` (and other Prefect CLI processes) as children of ours.

Used by `tiflow serve` (one-machine mode) and by the end-to-end tests. Everything started
here is stopped on exit (the whole process group), so nothing is left running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

PREFECT = str(Path(sys.executable).with_name("prefect"))
SERVER_AUTH = "PREFECT_SERVER_API_AUTH_STRING"  # basic auth the server demands ("user:password")
CLIENT_AUTH = "PREFECT_API_AUTH_STRING"  # what clients and workers send
AUTH_SETTINGS = (SERVER_AUTH, CLIENT_AUTH)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prefect_env(
    base: dict[str, str], home: Path, api_url: str | None = None, ui: bool = False
) -> dict[str, str]:
    # The operator's protections reach the server and every client; other PREFECT_* settings
    # of the caller's shell do not leak into a server of our own.
    env = {k: v for k, v in base.items() if not k.startswith("PREFECT_") or k in AUTH_SETTINGS}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="true" if ui else "false",
    )
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


@contextlib.contextmanager
def running(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def wait_healthy(api_url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prefect server exited early:\n{log.read_text()[-3000:]}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{api_url}/health", timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.3)
    raise TimeoutError(f"prefect server not healthy after {timeout} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def prefect_server(
    home: Path,
    database_url: str | None = None,
    port: int | None = None,
    ui: bool = False,
    extra_env: dict[str, str] | None = None,
) -> Iterator[str]:
    """`prefect server start` on loopback (a free port unless given); yields its API URL.

    `database_url`: the server's own database (PostgreSQL for scale-out); default SQLite in `home`.
    """
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = prefect_env(dict(os.environ), home, ui=ui)
    env.update(extra_env or {})
    if database_url:
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
    log = home / "server.log"
    args = [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with running(args, env, log) as process:
        wait_healthy(api_url, process, log, timeout=120)
        yield api_url


def prefect_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 180) -> str:
    result = subprocess.run(
        [PREFECT, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(f"prefect {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout
