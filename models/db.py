"""Engines and migrations. SQLite by default, any SQLAlchemy URL through TIFLOW_DATABASE_URL."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session

from models.errors import DatabaseBusy

T = TypeVar("T")

MIGRATIONS = Path(__file__).with_name("migrations")


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here (SQLAlchemy would otherwise look for psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = sa.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # How long to wait for another writer's lock: ?timeout=SECONDS in the URL, else 30 s.
        timeout = float(sa.make_url(url).query.get("timeout", 30))  # type: ignore[arg-type]
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": timeout})
    engine = sa.create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers don't block the writer
    cursor.close()


@cache
def engine_for(url: str) -> Engine:
    """One pooled engine per URL and process."""
    return make_engine(url)


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema to `revision` (idempotent)."""
    command.upgrade(alembic_config(engine), revision)


# ---------------------------------------------------------------------------------------------
# A busy database: retried a bounded number of times, then one French error


BUSY_RETRIES = 3  # after the driver's own wait (SQLite: connect timeout, 30 s by default)
BUSY_PAUSE = 1.0  # seconds, doubled at each retry


def is_busy(error: BaseException) -> bool:
    """A lock held by another writer (SQLite "database is locked", PostgreSQL lock timeout
    or deadlock): worth waiting for, unlike any other database error."""
    if not isinstance(error, sa.exc.OperationalError | sa.exc.DBAPIError):
        return False
    text = str(error.orig).lower()
    code = getattr(error.orig, "sqlstate", None)
    return "database is locked" in text or "database is busy" in text or code in _PG_BUSY


_PG_BUSY = {"55P03", "40P01", "40001"}  # lock_not_available, deadlock, serialization


def busy_error(what: str) -> DatabaseBusy:
    return DatabaseBusy(
        f"Base de données occupée par un autre traitement : {what} n'a pas pu aboutir après"
        f" {BUSY_RETRIES + 1} essais. Rien n'a été perdu ; relancez la commande dans quelques"
        " minutes."
    )


# Test seam: called before each retry (tests release a lock there, deterministically).
on_busy_retry: Callable[[str], object] | None = None


def retry_when_busy(action: Callable[[], T], what: str) -> T:
    """``action()``, run again (after a pause) while the database is busy; ``DatabaseBusy``
    (French) after ``BUSY_RETRIES`` retries. ``action`` must be a whole transaction."""
    for attempt in range(BUSY_RETRIES + 1):
        try:
            return action()
        except sa.exc.DBAPIError as error:
            if not is_busy(error):
                raise
            if attempt == BUSY_RETRIES:
                raise busy_error(what) from error
            if on_busy_retry is not None:
                on_busy_retry(what)
            time.sleep(BUSY_PAUSE * 2**attempt)
    raise AssertionError("unreachable")


class OneOf(sa.sql.expression.ColumnElement[bool]):
    """``column IN (values)``, written ``column = ANY(:array)`` on PostgreSQL: one parameter
    instead of one per value. psycopg parses every statement's text in Python, placeholders
    included, on each execution (an ``IN`` list of 2 000 ids costs it ~15 ms); an array
    travels as one value. Not cached (the values are part of the element)."""

    type = sa.Boolean()
    inherit_cache = False
    _is_implicitly_boolean = True  # a comparison: no « = 1 » after it on SQLite

    def __init__(self, column: sa.ColumnElement[Any], values: Iterable[Any]) -> None:
        self.column, self.values = column, list(values)


def one_of(column: sa.ColumnElement[Any], values: Iterable[Any]) -> OneOf:
    """``column`` is one of ``values`` (:class:`OneOf`)."""
    return OneOf(column, values)


@compiles(OneOf)
def _one_of(element: OneOf, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column.in_(element.values), **kw))


@compiles(OneOf, "postgresql")
def _one_of_array(element: OneOf, compiler: Any, **kw: Any) -> str:
    array = sa.bindparam(None, element.values, type_=sa.ARRAY(element.column.type))
    return str(compiler.process(element.column == sa.any_(array), **kw))


@contextmanager
def driver_cursor(session: Session) -> Iterator[Any]:
    """A psycopg cursor on the session's own connection (same transaction), for COPY. What
    the caller added to the session is flushed first: COPY bypasses the session, and the
    rows' foreign keys must find what the caller wrote before."""
    session.flush()
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cursor:  # type: ignore[union-attr]
        yield cursor


def copy_rows(cursor: Any, table: str, columns: Iterable[str], rows: Iterable[Any]) -> None:
    """PostgreSQL's bulk load on a psycopg ``cursor`` (its connection's transaction): one
    ``COPY table (columns) FROM STDIN`` for all ``rows`` (sequences in ``columns`` order),
    formatted by psycopg in C, where an executemany runs one INSERT per row on the server and a
    multi-row VALUES or ``unnest`` arrays are built value by value in Python. Names are
    double-quoted (``view`` and ``key`` are reserved words); values go as given: converting
    them to what each column stores is the caller's part."""
    names = ", ".join(f'"{name}"' for name in columns)
    with cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)
