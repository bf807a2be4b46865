"""What every command needs: the database (schema checked), the territory, dates, progress bars.

Schema policy: an *empty* database is created on first use (nothing to lose, and a first
`tiflow import` on a fresh machine just works); a database whose schema is *behind* is never
migrated behind the user's back: the command stops and asks for `tiflow db upgrade` (a
migration of a shared PostgreSQL deserves a deliberate step and a backup, and a read-only
command such as `tiflow actions` must not alter a schema). A schema *ahead* of this version of
tiflow (migrated by a newer release) is refused too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichProgressBar
from sqlalchemy.engine import Engine

from models import clock
from models.db import alembic_config, engine_for, upgrade
from models.errors import TiflowError
from models.settings import PARIS, load_settings
from models.tables import Territory
from models.uow import UnitOfWork
from tiflow.cli.french import err_console
from tiflow.spreadsheet.cells import CellError, parse_date

console = Console()


def safe_url(url: str | sa.URL) -> str:
    """Never print a password."""
    return sa.make_url(url).render_as_string(hide_password=True)


def database() -> Engine:
    """The application database (TIFLOW_DATABASE_URL), with its schema checked (see above)."""
    url = load_settings().database_url
    engine = engine_for(url)
    ensure_schema(engine)
    return engine


def schema_revisions(engine: Engine) -> tuple[set[str], set[str], set[str]]:
    """(revisions the database is at, head revisions of this tiflow, tables in the database)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    try:
        with engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
            tables = set(sa.inspect(connection).get_table_names())
    except sa.exc.DBAPIError as error:
        raise TiflowError(
            f"Impossible d'ouvrir la base {safe_url(engine.url)} : {error.orig}".strip()
        ) from None
    heads = set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())
    return current, heads, tables


def ensure_schema(engine: Engine) -> None:
    from alembic.script import ScriptDirectory

    current, heads, tables = schema_revisions(engine)
    url = safe_url(engine.url)
    if not current:
        if tables - {"alembic_version"}:
            raise TiflowError(
                f"La base {url} contient des tables mais aucune version de schéma tiflow :"
                " ce n'est pas une base tiflow. Choisissez une autre base (TIFLOW_DATABASE_URL)."
            )
        upgrade(engine)
        err_console.print(f"Base créée : {url}", style="dim")
        return
    if current == heads:
        return
    script = ScriptDirectory.from_config(alembic_config(engine))
    known = {r.revision for r in script.walk_revisions()}
    if current - known:
        raise TiflowError(
            f"La base {url} a été migrée par une version plus récente de tiflow (révision"
            f" {', '.join(sorted(current - known))}) : mettez tiflow à jour."
        )
    raise TiflowError(
        f"Le schéma de la base {url} n'est pas à jour (révision {', '.join(sorted(current))},"
        f" attendue {', '.join(sorted(heads))}). Sauvegardez la base puis lancez"
        " « tiflow db upgrade »."
    )


def pick_territory(uow: UnitOfWork, code: str | None) -> Territory:
    """The territory named by --territoire, or the only one in the database."""
    if code:
        return uow.repo.territory(code)
    territories = uow.repo.territories()
    if len(territories) == 1:
        return territories[0]
    if not territories:
        raise TiflowError(
            "Aucun territoire dans la base : importez un plan (tiflow import FICHIER)."
        )
    codes = ", ".join(t.code for t in territories)
    raise TiflowError(f"Plusieurs territoires dans la base ({codes}) : précisez --territoire CODE.")


def today_in_paris() -> date:
    return clock.today_paris()


def date_option(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return parse_date(value)
    except CellError as error:
        raise typer.BadParameter(str(error), param_hint=option) from None


def fr_date(day: date | None) -> str:
    return day.strftime("%d/%m/%Y") if day else "—"


def fr_instant(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo(PARIS)).strftime("%d/%m/%Y %H:%M")


class ProgressBar:
    """The spreadsheet `Progress` protocol on a Rich progress bar (stderr, transient)."""

    def __init__(self, bar: RichProgressBar) -> None:
        self.bar = bar
        self.task: TaskID | None = None

    def phase(self, label: str, total: int) -> None:
        if self.task is not None:
            self.bar.update(self.task, visible=False)
        self.task = self.bar.add_task(label, total=total)

    def advance(self, steps: int = 1) -> None:
        if self.task is not None:
            self.bar.advance(self.task, steps)


@contextmanager
def progress_bar() -> Iterator[ProgressBar]:
    bar = RichProgressBar(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    with bar:
        yield ProgressBar(bar)
