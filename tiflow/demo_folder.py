"""Where the demo lives (``TIFLOW_DATA_DIR/demo/``), how a new year replaces the previous one,
and how a command points at it afterwards (``tiflow --base demo …``).

A new year is played in a fresh folder beside the old one (``.demo-XXXX``) and takes its place
only once it has been played in full: a failed or interrupted run leaves the previous demo
intact. The swap is two renames (the old folder aside, the new one in place); if the process
dies between them, the next run or ``--base demo`` puts the old folder back.

Light on purpose (no Prefect, no flows): ``tiflow --base demo actions`` imports it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from models.db import engine_for
from models.errors import TiflowError
from models.settings import load_settings

DATABASE_NAME = "tiflow-demo.db"
FOLDER_NAME = "demo"
# The simulated year: the example is loaded on its first morning (before the first reminder
# sweep at 08:00); when it is over, its clock shows 2 January 2025 at 9:00, after the budget.
EXAMPLE_LOADED = datetime(2024, 1, 1, 7, 0)
YEAR_OVER = datetime(2025, 1, 2, 9, 0)


def demo_folder(data_dir: Path | None = None) -> Path:
    return (data_dir or load_settings().data_dir) / FOLDER_NAME


def database_url(folder: Path) -> str:
    return f"sqlite:///{folder / DATABASE_NAME}"


def build_engine(folder: Path) -> Engine:
    """The engine of the database being built in `folder` (the one the flows get from
    `engine_for`): its commits do not wait for the disk (``PRAGMA synchronous=NORMAL``; in WAL
    mode the database stays consistent after a crash). Hundreds of commits in a year, each an
    fsync otherwise; a build that fails is thrown away anyway."""
    engine = engine_for(database_url(folder))
    if not sa.event.contains(engine, "connect", _no_disk_wait):
        sa.event.listen(engine, "connect", _no_disk_wait)
    return engine


def _no_disk_wait(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _aside(final: Path) -> Path:
    return final.with_name(f".{final.name}-previous")


def restore_interrupted_swap(final: Path) -> None:
    """A swap cut between its two renames left the old demo aside: put it back."""
    aside = _aside(final)
    if aside.exists() and not final.exists():
        os.replace(aside, final)


def new_build_folder(final: Path) -> Path:
    """An empty folder beside `final`, on the same file system (so the swap is a rename)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    restore_interrupted_swap(final)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))


def swap_in(build: Path, final: Path) -> None:
    """`build` (a year played in full) becomes `final`; the previous demo is then deleted."""
    aside = _aside(final)
    shutil.rmtree(aside, ignore_errors=True)
    if final.exists():
        os.replace(final, aside)
    os.replace(build, final)
    shutil.rmtree(aside, ignore_errors=True)


def demo_database_url() -> str:
    """The demo's database, for ``--base demo``; a French error when there is no demo yet."""
    folder = demo_folder()
    restore_interrupted_swap(folder)
    if not (folder / DATABASE_NAME).is_file():
        raise TiflowError(
            f"Pas de base de démonstration dans {folder} : lancez d'abord « tiflow demo »"
            " (ou « python3 dev.py demo »)."
        )
    return database_url(folder)


def point_at(base: str) -> dict[str, str | None]:
    """Point this process's commands at `base` (``--base``); returns the previous values.

    ``demo``: the demo's database, its outbox and reports folder, and its clock (2 January 2025,
    the year just played, unless TIFLOW_NOW says otherwise); e-mails never leave the machine
    (the example's addresses are invented). Otherwise `base` is a database URL or the path of
    a SQLite file."""
    keys = ("TIFLOW_DATABASE_URL", "TIFLOW_DATA_DIR", "TIFLOW_NOW", "TIFLOW_NOTIFY_CONFIG")
    saved = {key: os.environ.get(key) for key in keys}
    if base == FOLDER_NAME:
        url = demo_database_url()
        os.environ["TIFLOW_DATA_DIR"] = str(demo_folder())
        if not os.environ.get("TIFLOW_NOW"):
            os.environ["TIFLOW_NOW"] = YEAR_OVER.isoformat(timespec="minutes")
        os.environ.pop("TIFLOW_NOTIFY_CONFIG", None)
    elif "://" in base:
        url = base
    else:
        url = f"sqlite:///{Path(base).expanduser().resolve()}"
    os.environ["TIFLOW_DATABASE_URL"] = url
    return saved


def restore(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
