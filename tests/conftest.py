"""Fixtures shared by every test folder: a migrated database on SQLite *and* PostgreSQL.

PostgreSQL comes from TIFLOW_TEST_POSTGRES_URL (default: the local server, database `test`).
Each test session works in its own schema, so parallel runs don't collide. Locally, tests
against PostgreSQL are skipped if no server answers; in CI (CI=true) that is a failure.
"""

from __future__ import annotations

import gc
import os
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import models.tables  # noqa: F401  (all tables on the metadata, for clean-up)
from models.db import make_engine, normalise_url, upgrade
from models.uow import UnitOfWork
from tiflow.example import TERRITORY_CODE, load_example

PG_URL = os.environ.get(
    "TIFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a fresh schema on the PostgreSQL test server, dropped at the end."""
    admin = make_engine(PG_URL)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as error:
        admin.dispose()
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is mandatory in CI and did not answer at {PG_URL}: {error}")
        pytest.skip(f"no PostgreSQL server at {PG_URL}")
    schema = f"tiflow_test_{uuid.uuid4().hex[:10]}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.make_url(normalise_url(PG_URL)).update_query_dict(
        {"options": f"-csearch_path={schema}"}
    )
    yield url.render_as_string(hide_password=False)
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], str]]:
    """Returns a function giving a *fresh, empty* database URL for a backend. The PostgreSQL
    schemas it creates are dropped at the end of the session (they are not inside the
    session's own schema, so dropping that one would leave them on the server)."""
    created: list[str] = []

    def fresh(backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('db') / 'tiflow.db'}"
        base: str = request.getfixturevalue("postgres_url")
        schema = f"tiflow_fresh_{uuid.uuid4().hex[:10]}"
        admin = make_engine(base)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        created.append(schema)
        url = sa.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        return url.render_as_string(hide_password=False)

    yield fresh
    if created:
        admin = make_engine(PG_URL)
        try:
            with admin.begin() as conn:
                conn.execute(sa.text("SET LOCAL lock_timeout = '10s'"))
                for schema in created:
                    conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        except sa.exc.OperationalError as error:  # a connection a test left open holds a lock
            warnings.warn(f"fresh test schemas left on the server: {error}", stacklevel=1)
        finally:
            admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def migrated_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'tiflow.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(migrated_engine: Engine) -> Iterator[Engine]:
    """A migrated database, emptied after each test."""
    yield migrated_engine
    # A session or connection a test dropped inside a reference cycle is only closed by the
    # cyclic collector; on SQLite it may still hold the write lock the next test needs.
    gc.collect()
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]
    with migrated_engine.begin() as conn:
        if migrated_engine.dialect.name == "postgresql":
            quoted = ", ".join(f'"{name}"' for name in tables)
            conn.execute(sa.text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(sa.text(f'DELETE FROM "{name}"'))


@pytest.fixture
def uow(engine: Engine) -> Callable[[], UnitOfWork]:
    """A factory of units of work on the test database: `with uow() as u: ...`."""
    return lambda: UnitOfWork(engine)


@pytest.fixture
def example_plan(engine: Engine) -> str:
    """The Grand Est Touraine example, loaded and committed; returns the territory code."""
    with UnitOfWork(engine) as u:
        load_example(u)
        u.commit()
    return TERRITORY_CODE


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One Prefect test server for the whole session (it takes ~10 s to start), heartbeat off."""
    from prefect.testing.utilities import prefect_test_harness

    from flows.runtime import without_heartbeat

    with (
        prefect_test_harness(server_startup_timeout=90),
        without_heartbeat(),
    ):
        yield


@pytest.fixture
def flow_env(
    engine: Engine,
    prefect_harness: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Engine:
    """Flows under the Prefect harness, reading and writing the test database (both backends),
    with their files (outbox, reports) under a temporary data folder."""
    monkeypatch.setenv("TIFLOW_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("TIFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TIFLOW_NOTIFY_CONFIG", raising=False)
    return engine
