"""Running the real Prefect flows from the command line (`tiflow run …`, `tiflow demo`).

Prefect needs an API; :func:`tiflow.prefect_server.prefect_api` picks it: the server of
``PREFECT_API_URL`` when it is set, else the local server of a running ``tiflow serve``, else
Prefect's *ephemeral mode* — a temporary local server started for the command (8 to 12 s
here, more on a busy machine; sized timeout, one retry, a French error), on Prefect's own
database (``~/.prefect/prefect.db``: the runs stay visible afterwards with ``prefect server
start``). Nothing to start by hand.

Around the commands' flow runs, :func:`prefect_session`:

* says which server runs the flows (one line of the command's output);
* starts the ephemeral server in a background thread so a command can prepare its work
  meanwhile, and stops it at the end, quietly;
* turns the flow heartbeat off on the temporary server and on the local server of a
  `tiflow serve`: with it, each synchronous flow run waits up to 1 s at its end (pitfalls.md),
  and neither server has an automation that watches heartbeats for crashed runs (an operator's
  server, PREFECT_API_URL, keeps them);
* keeps Prefect's console logs (English, one line per task) off the terminal: the commands
  print their own French summary, and a refused run must show one French message, not
  Prefect's traceback. ``--journal`` shows them (on stderr).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tiflow.prefect_server import EphemeralStart, PrefectApi, prefect_api, start_timeout

T = TypeVar("T")


def ephemeral() -> bool:
    """True when no Prefect server is configured (a `tiflow serve` may still be found)."""
    from prefect.settings import PREFECT_API_URL

    return not PREFECT_API_URL.value()


def start_ephemeral_server() -> EphemeralStart | None:
    """Start Prefect's temporary server now, in the background (None with PREFECT_API_URL);
    hand it to `prefect_session`, which waits for it and stops it."""
    return EphemeralStart(start_timeout()) if ephemeral() else None


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
    verbose: bool = False, server: EphemeralStart | None = None, *, heartbeat: bool = True
) -> Iterator[PrefectApi]:
    """Flow runs for a command: see the module docstring. Yields the `PrefectApi` used (its
    line is printed already); call its `wait()` before the first flow run. `server`: an
    ephemeral server already starting (`start_ephemeral_server`). `heartbeat=False` turns the
    heartbeat off on a real server too (the demo: dozens of short runs, each sending an event
    it does not need)."""
    import prefect  # noqa: F401  (configures Prefect's logging, found by quiet_console)

    from flows.runtime import without_heartbeat
    from tiflow.cli.common import console

    with ExitStack() as stack:
        stack.enter_context(quiet_console(verbose))
        if server is not None:
            api = PrefectApi("ephemeral", _start=server)
            stack.callback(server.stop)  # inside quiet_console: « Stopping … » is hidden
        else:
            api = stack.enter_context(prefect_api(background=True))
        if api.kind in ("ephemeral", "local") or not heartbeat:
            stack.enter_context(without_heartbeat())
        if api.kind == "ephemeral":
            stack.enter_context(_no_csrf_round_trip())
        console.print(f"Prefect : {api.describe()}", highlight=False, soft_wrap=True)
        yield api


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
