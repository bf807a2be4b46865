"""Running the real Prefect flows from the command line (`tiflow run …`, `tiflow demo`).

Prefect needs an API: the server of ``PREFECT_API_URL`` when it is set, otherwise Prefect's
*ephemeral mode* — a temporary local server that Prefect starts in a subprocess on the first
flow run (8 to 12 s here), on Prefect's own database (``~/.prefect/prefect.db``: the runs
stay visible afterwards with ``prefect server start``). Nothing to start by hand.

Around the commands' flow runs, :func:`prefect_session`:

* starts the ephemeral server in a background thread (:func:`start_ephemeral_server`) so a
  command can prepare its work meanwhile, and stops it at the end, quietly;
* turns the flow heartbeat off in ephemeral mode: with it, each synchronous flow run waits up
  to 1 s at its end (pitfalls.md), and nobody watches a temporary server for crashed runs;
* keeps Prefect's console logs (English, one line per task) off the terminal: the commands
  print their own French summary, and a refused run must show one French message, not
  Prefect's traceback. ``--journal`` shows them (on stderr).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def ephemeral() -> bool:
    """True when no Prefect server is configured: flows run on a temporary local one."""
    from prefect.settings import PREFECT_API_URL

    return not PREFECT_API_URL.value()


class ServerStart:
    """The ephemeral server starting in a background thread; `wait()` before the first run."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.server: Any = None
        self._thread = threading.Thread(target=self._start, name="prefect-ephemeral", daemon=True)
        self._thread.start()

    def _start(self) -> None:
        try:
            from prefect.server.api.server import SubprocessASGIServer

            self.server = SubprocessASGIServer()
            self.server.start()
        except BaseException as error:  # re-raised by wait(), in the command's thread
            self.error = error

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


def start_ephemeral_server() -> ServerStart | None:
    """Start Prefect's temporary server now, in the background (None with PREFECT_API_URL)."""
    if not ephemeral():
        return None
    # The server subprocess inherits the environment: no telemetry from a throwaway server
    # (it logs an error on a machine without Internet access).
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    return ServerStart()


def _console_handlers() -> list[logging.Handler]:
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    found: dict[int, logging.Handler] = {}
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler):
                found[id(handler)] = handler
    return list(found.values())


@contextmanager
def quiet_console(verbose: bool = False) -> Iterator[None]:
    """Prefect's console handlers show nothing (unless `verbose`) inside the block."""
    if verbose:
        yield
        return
    handlers = _console_handlers()
    levels = [h.level for h in handlers]
    for handler in handlers:
        handler.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for handler, level in zip(handlers, levels, strict=True):
            handler.setLevel(level)


def _no_csrf_round_trip() -> Any:
    """Our temporary server has CSRF protection off (Prefect's default), yet every flow run's
    client first asks it for a token to learn so: one request per run saved."""
    from prefect.settings import (
        PREFECT_CLIENT_CSRF_SUPPORT_ENABLED,
        PREFECT_SERVER_CSRF_PROTECTION_ENABLED,
        temporary_settings,
    )

    if PREFECT_SERVER_CSRF_PROTECTION_ENABLED.value():  # the user turned it on: keep tokens
        return nullcontext()
    return temporary_settings({PREFECT_CLIENT_CSRF_SUPPORT_ENABLED: False})


@contextmanager
def prefect_session(
    verbose: bool = False, server: ServerStart | None = None, *, heartbeat: bool = True
) -> Iterator[ServerStart | None]:
    """Flow runs for a command: see the module docstring. Yields the server start (or None
    when a Prefect server is configured); call its `wait()` before the first flow run.
    `heartbeat=False` turns the heartbeat off on a real server too (the demo: dozens of short
    runs, each of which would otherwise wait up to 1 s at its end)."""
    import prefect  # noqa: F401  (configures Prefect's logging, found by quiet_console)

    from flows.runtime import without_heartbeat

    with ExitStack() as stack:
        stack.enter_context(quiet_console(verbose))
        local = ephemeral()
        if local or not heartbeat:
            stack.enter_context(without_heartbeat())
        if local:
            stack.enter_context(_no_csrf_round_trip())
            server = server or start_ephemeral_server()
            if server is not None:
                stack.callback(server.stop)  # inside quiet_console: « Stopping … » is hidden
        yield server


@dataclass(frozen=True)
class FlowRun(Generic[T]):
    result: T
    run_id: str
    name: str

    def describe(self) -> str:
        return f"exécution Prefect « {self.name} » ({self.run_id})"


def run_flow(flow: Callable[..., T], *args: Any, **kwargs: Any) -> FlowRun[T]:
    """Run `flow` and return its result with its run's id and name. A failed run raises what
    the flow raised (a TiflowError carries the French message)."""
    from prefect.client.orchestration import get_client
    from prefect.states import State

    state = flow(*args, return_state=True, **kwargs)
    assert isinstance(state, State)
    result = state.result()  # raises the flow's exception if the run failed
    run_id = state.state_details.flow_run_id
    name = ""
    if run_id is not None:
        with get_client(sync_client=True) as client:
            name = client.read_flow_run(run_id).name or ""
    return FlowRun(result=result, run_id=str(run_id or ""), name=name)
