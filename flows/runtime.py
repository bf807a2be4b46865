"""What every flow needs from its surroundings: the database, its own run id, and a heartbeat
that does not hold the end of the run."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy.engine import Engine

from models.db import engine_for
from models.settings import Settings, load_settings


def settings() -> Settings:
    return load_settings()


def database() -> Engine:
    """The application database (TIFLOW_DATABASE_URL), one pooled engine per process."""
    return engine_for(load_settings().database_url)


def current_run_id() -> str | None:
    """The Prefect flow run id, recorded in history rows and outbox messages as correlation id."""
    from prefect.runtime import flow_run

    run_id = flow_run.get_id()
    return str(run_id) if run_id else None


def without_heartbeat() -> AbstractContextManager[Any]:
    """Flow runs in this block send no heartbeat: batches of short runs (tests, the demo) need
    none, nor its event per run. A served or worker-run flow keeps Prefect's default (every
    180 s), which `stop_heartbeat_promptly` keeps from waiting at the end of each run."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    return temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})


# Prefect 3.9.1's flow heartbeat thread sleeps in one-second steps and the engine joins it when a
# synchronous flow run ends, so every such run (a served or worker run too) waits up to 1 s —
# half a second on average — after its last task: a third of what Prefect added to the
# national budget flow. The same heartbeat, waiting on its stop event instead, ends at once.
# Checked against this exact version (pinned in pyproject.toml); another one keeps Prefect's.
PATCHED_PREFECT = "3.9.1"


def stop_heartbeat_promptly() -> bool:
    """Make Prefect's flow heartbeat stop as soon as its flow run ends (True if installed)."""
    import prefect
    from prefect import flow_engine

    if prefect.__version__ != PATCHED_PREFECT or not hasattr(flow_engine, "_send_heartbeats"):
        return False
    flow_engine._send_heartbeats = _send_heartbeats
    return True


@contextmanager
def _send_heartbeats(engine: Any, join_on_exit: bool = True) -> Iterator[None]:
    """`prefect.flow_engine._send_heartbeats` (3.9.1), the one-second sleeps replaced by a wait
    on the stop event: the same events at the same interval, and no wait at the end."""
    from prefect.flow_engine import MINIMUM_HEARTBEAT_INTERVAL

    seconds = engine.heartbeat_seconds
    if seconds is None:
        yield
        return
    seconds = max(seconds, MINIMUM_HEARTBEAT_INTERVAL)
    resource, related = engine._build_heartbeat_event_template()
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            run = engine.flow_run
            if run and run.state and run.state.is_final():
                return
            try:
                engine._emit_flow_run_heartbeat(resource, related)
            except Exception:
                engine.logger.debug("Failed to emit heartbeat", exc_info=True)
            stop.wait(seconds)

    # The calling thread's context, so the heartbeat sees the same Prefect settings (API URL).
    thread = threading.Thread(target=contextvars.copy_context().run, args=(beat,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        if join_on_exit:
            thread.join(timeout=2)


stop_heartbeat_promptly()
