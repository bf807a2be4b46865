"""The Prefect servers tiflow uses: started as children of ours, found, or Prefect's ephemeral one.

* :func:`prefect_server` starts a real `prefect server start` (for `tiflow serve` and the
  end-to-end tests) and stops its whole process group on exit, so nothing is left running.
* :func:`prefect_api` is what a command that runs flows in its own process uses (`tiflow run …`,
  `tiflow demo`): the server of ``PREFECT_API_URL``, else the local server of a running
  `tiflow serve`, else Prefect's ephemeral server — and it says which.

Every start gets :func:`start_timeout` seconds (``TIFLOW_PREFECT_START_TIMEOUT``, default sized
for a busy 2-core machine, where the first start runs Prefect's 113 migrations), waits on the
server's ``/health`` endpoint and is retried once; if it still fails, a French
:class:`PrefectUnavailable` (a `TiflowError`: one line, exit 1, no traceback in the CLI).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from models.errors import TiflowError

PREFECT = str(Path(sys.executable).with_name("prefect"))
SERVER_AUTH = "PREFECT_SERVER_API_AUTH_STRING"  # basic auth the server demands ("user:password")
CLIENT_AUTH = "PREFECT_API_AUTH_STRING"  # what clients and workers send
AUTH_SETTINGS = (SERVER_AUTH, CLIENT_AUTH)
START_TIMEOUT_VARIABLE = "TIFLOW_PREFECT_START_TIMEOUT"
# Seconds. Prefect's own default (20 s) is exceeded on a loaded 2-core machine by the first start
# of a new Prefect home (113 migrations) and sometimes by a plain start.
DEFAULT_START_TIMEOUT = 120.0
# The file where a running `tiflow serve` records its server, in TIFLOW_DATA_DIR.
LOCAL_SERVER_FILE = "prefect-serveur.json"
SERVER_WRITE_BATCH = 100  # events per write of the temporary server (`_temporary_server_settings`)
_WHAT_TO_DO = (
    f"relancez, augmentez {START_TIMEOUT_VARIABLE} (secondes), ou définissez PREFECT_API_URL"
    " vers un serveur Prefect qui tourne"
)


class PrefectUnavailable(TiflowError):
    """No Prefect server to run flows on; the message says what happened and what to do."""


def start_timeout() -> float:
    text = os.environ.get(START_TIMEOUT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_START_TIMEOUT
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        value = 0
    if value <= 0:
        raise PrefectUnavailable(
            f"{START_TIMEOUT_VARIABLE} vaut « {text} » : attendu un nombre de secondes, ex. 180."
        )
    return value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def is_healthy(api_url: str, timeout: float = 2) -> bool:
    """True when the Prefect API at `api_url` answers its health check."""
    with (
        contextlib.suppress(OSError, ValueError),
        urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout) as response,
    ):
        return bool(response.status == 200)
    return False


def prefect_env(
    base: dict[str, str], home: Path, api_url: str | None = None, ui: bool = False
) -> dict[str, str]:
    """The environment of a Prefect process of ours: `base` without its client settings (another
    API URL, home or profile), keeping the server settings an operator set (PREFECT_SERVER_…)."""
    env = {
        k: v
        for k, v in base.items()
        if not k.startswith("PREFECT_") or k in AUTH_SETTINGS or _server_setting(k)
    }
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="true" if ui else "false",
    )
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def _server_setting(name: str) -> bool:
    return name.startswith(("PREFECT_SERVER_", "PREFECT_API_SERVICES_")) and name not in (
        "PREFECT_SERVER_UI_ENABLED",
    )


@contextlib.contextmanager
def running(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
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
        # `tiflow serve` pauses its deployments, then stops its own server (another session):
        # on a busy machine that takes more than 15 s, and a SIGKILL then would orphan it.
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def wait_healthy(api_url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Until the server at `api_url` answers, or TimeoutError / RuntimeError (it exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prefect server exited early:\n{log.read_text()[-3000:]}")
        if is_healthy(api_url):
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
    With `ui`, the UI calls this server's API (whatever its port), unless the operator set
    PREFECT_SERVER_UI_API_URL (a reverse proxy). Two tries of `start_timeout()` seconds each,
    then `PrefectUnavailable`; the server's log is `home/server.log`.
    """
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = prefect_env(dict(os.environ), home, ui=ui)
    if ui:
        env.setdefault("PREFECT_SERVER_UI_API_URL", api_url)
    env.update(extra_env or {})
    if database_url:
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
    log = home / "server.log"
    args = [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    timeout = start_timeout()
    with contextlib.ExitStack() as stack:
        for attempt in (1, 2):
            process = stack.enter_context(running(args, env, log))
            try:
                wait_healthy(api_url, process, log, timeout)
                break
            except (TimeoutError, RuntimeError):
                stack.close()  # stop this try before the next one (or before giving up)
                if attempt == 2:
                    raise PrefectUnavailable(
                        f"le serveur Prefect local (port {port}) n'a pas démarré après deux"
                        f" essais de {timeout:g} s (journal : {log}) ; {_WHAT_TO_DO}."
                    ) from None
        yield api_url


def prefect_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 180) -> str:
    result = subprocess.run(
        [PREFECT, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(f"prefect {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


# --- The local server of a running `tiflow serve` ----------------------------------------------


@contextlib.contextmanager
def recorded_local_server(data_dir: Path, api_url: str) -> Iterator[Path]:
    """While `tiflow serve` runs: its server's URL in `data_dir`, for `prefect_api` to find."""
    data_dir.mkdir(parents=True, exist_ok=True)
    record = data_dir / LOCAL_SERVER_FILE
    record.write_text(json.dumps({"api_url": api_url, "pid": os.getpid()}), encoding="utf-8")
    try:
        yield record
    finally:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(record.read_text(encoding="utf-8")).get("pid") == os.getpid():
                record.unlink()


def local_server(data_dir: Path) -> str | None:
    """The API URL of the `tiflow serve` running for `data_dir`, if it answers."""
    try:
        api_url = json.loads((data_dir / LOCAL_SERVER_FILE).read_text(encoding="utf-8"))["api_url"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(api_url) if isinstance(api_url, str) and is_healthy(api_url) else None


# --- What a command runs its flows on ------------------------------------------------------------

ApiKind = Literal["configured", "local", "ephemeral"]


@dataclass
class PrefectApi:
    """The Prefect server a command's flow runs go to (see `prefect_api`)."""

    kind: ApiKind
    url: str = ""
    _start: EphemeralStart | None = field(default=None, repr=False)

    def describe(self) -> str:
        """French, for the command's output: which server was used."""
        if self.kind == "configured":
            return f"serveur Prefect de PREFECT_API_URL ({self.url})"
        if self.kind == "local":
            return f"serveur local de « tiflow serve » ({self.url.removesuffix('/api')})"
        return "serveur Prefect temporaire, démarré pour cette commande (aucun « tiflow serve »)"

    def wait(self) -> None:
        """Block until the server answers (only an ephemeral one may still be starting)."""
        if self._start is not None:
            self._start.wait()
            self.url = self._start.api_url


@contextlib.contextmanager
def prefect_api(data_dir: Path | None = None, *, background: bool = False) -> Iterator[PrefectApi]:
    """The Prefect API for flow runs in this process, chosen in this order:

    1. ``PREFECT_API_URL`` (environment or Prefect profile): that server, checked first
       (`PrefectUnavailable` if it does not answer);
    2. else the local server of a running `tiflow serve` for `data_dir` (default: the settings'
       ``TIFLOW_DATA_DIR``), whose URL it recorded there, if it answers its health check: used
       for the block through Prefect's settings;
    3. else Prefect's ephemeral server, started with `start_timeout()`, retried once, stopped at
       the end of the block (after the logs and events still queued are sent).

    Yields a `PrefectApi`; print its `describe()` so the user knows which server ran the flows.
    With `background=True` an ephemeral server starts in a background thread while the caller
    prepares its work: call `wait()` before the first flow run (it raises `PrefectUnavailable`).

        with prefect_api() as api:
            console.print(f"Prefect : {api.describe()}")
            api.wait()
            my_flow()
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    configured = PREFECT_API_URL.value()
    if configured:
        if not is_healthy(configured, timeout=10):
            raise PrefectUnavailable(
                f"le serveur Prefect de PREFECT_API_URL ({configured}) ne répond pas :"
                " démarrez-le, ou retirez PREFECT_API_URL pour utiliser un serveur temporaire."
            )
        yield PrefectApi("configured", configured)
        return
    if data_dir is None:
        from models.settings import load_settings

        data_dir = load_settings().data_dir
    local = local_server(data_dir)
    if local:
        with temporary_settings({PREFECT_API_URL: local}):
            yield PrefectApi("local", local)
        return
    start = EphemeralStart(start_timeout())
    api = PrefectApi("ephemeral", _start=start)
    try:
        if not background:
            api.wait()
        yield api
    finally:
        start.stop()


class EphemeralStart:
    """Prefect's ephemeral server, started in a thread with a sized timeout and one retry.

    It is the instance Prefect's clients use in ephemeral mode (`SubprocessASGIServer()` is a
    singleton), so flow runs go to it without any setting."""

    def __init__(self, timeout: float) -> None:
        # The server subprocess inherits the environment: no telemetry from a throwaway
        # server (it logs an error on a machine without Internet access); and Prefect's own
        # clients, if they start it first, wait as long as we do.
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", f"{timeout:g}")
        self.timeout = timeout
        self.server: Any = None
        self.error: PrefectUnavailable | None = None
        self._thread = threading.Thread(target=self._start, name="prefect-ephemeral", daemon=True)
        self._thread.start()

    @property
    def api_url(self) -> str:
        return str(self.server.api_url) if self.server is not None else ""

    def _start(self) -> None:
        from prefect.server.api.server import SubprocessASGIServer

        for _attempt in (1, 2):
            server = SubprocessASGIServer()
            try:
                with _temporary_server_settings():
                    server.start(timeout=math.ceil(self.timeout))  # Prefect wants whole seconds
            except Exception:  # Prefect's RuntimeError (English): retried, then said in French
                server.stop()
                continue
            self.server = server
            return
        self.error = PrefectUnavailable(
            f"le serveur Prefect temporaire n'a pas démarré après deux essais de"
            f" {self.timeout:g} s ; {_WHAT_TO_DO} (par exemple celui de « tiflow serve »)."
        )

    def wait(self) -> None:
        self._thread.join()
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """Send the logs and events still queued, then stop the server (stopped first, the
        queues would retry against it for a minute at exit)."""
        self._thread.join()
        if self.server is None:
            return
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        for service in (APILogWorker, EventsWorker):
            service.drain_all(timeout=5)
        self.server.stop()
        self.server = None


def _temporary_server_settings() -> Any:
    """`temporary_server_settings`, for the block that starts the temporary server."""
    from prefect.settings import temporary_settings

    return temporary_settings(temporary_server_settings())


def temporary_server_settings() -> dict[Any, Any]:
    """Settings of the temporary server (Prefect passes its settings to its process), each
    only if the operator has not set it in the environment:

    * no automations (Prefect's triggers and actions services): the server lives for one
      command, with no worker to run what they would start, and they read every event its
      flow runs send (about 6 % of its CPU in the demo);
    * its task run recorder and event persister write the runs' events 100 at a time
      (Prefect's defaults: 1 and 20). Each of their writes is a SQLite commit, and a commit
      landing while the API creates a flow run makes that request fail as busy (HTTP 503),
      which Prefect's client retries after 2 s (4 to 15 times in the demo's year with
      Prefect's defaults, 0 to 5 with these). The same events are written, within 5 s (their
      flush interval) and when the server stops."""
    from prefect.settings import (
        PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE,
        PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE,
        PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED,
    )

    wanted = {
        PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED: False,
        PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE: SERVER_WRITE_BATCH,
        PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE: SERVER_WRITE_BATCH,
    }
    return {k: v for k, v in wanted.items() if k.name not in os.environ}
