"""What every flow needs from its surroundings: the database and its own run id."""

from __future__ import annotations

from contextlib import AbstractContextManager
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
    """Flow runs in this block send no heartbeat. With one, every synchronous flow run waits up
    to 1 s at its end (measured: ~1.1 s against ~0.13 s per run); batches of short runs (tests,
    benchmarks, the demo) turn it off. A served or worker-run flow keeps Prefect's default."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    return temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})
