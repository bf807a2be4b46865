"""The coordinator's command line (`tiflow --help`). Messages are French.

This module holds the application (`app`) and `tiflow db upgrade`; the other
commands live in sibling modules that register themselves on `app` when imported at the end
of this file:

* `plan_files.py`: `tiflow import`, `tiflow export`, `tiflow modele`;
* `views.py`: `tiflow territoires`, `tiflow actions`, `tiflow action`;
* `run_commands.py`: `tiflow run rappels|synthese|budget|copil|envoi`, `tiflow copil planifier`;
* `copil_commands.py`: `tiflow copil compte-rendu`, `tiflow run suites` (after a COPIL);
* `lifecycle.py`: `tiflow proposer|financer|avancement|demarrer|terminer|abandonner`;
* `demo.py`: `tiflow demo` (a year of the example through the real flows);
* `operations.py`: `tiflow serve`, `tiflow deploiements`;
* `outbox_commands.py`: `tiflow envois` (list the outbox, `--relancer N`);
* `web.py`: `tiflow web` (the web application, `tiflow/web/`);
* `preferences.py`: `tiflow preferences voir|regler|absence` (how tiflow reaches each person).

A new command module uses `command(app)` (or `command(sub_app)`) so its help and errors are
French, then gets imported at the bottom of this file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.table import Table

from models.db import engine_for, upgrade
from models.money import format_eur
from models.settings import load_settings
from models.tables import ActionSheet
from models.uow import UnitOfWork
from tiflow.cli.common import console, safe_url, schema_revisions
from tiflow.cli.french import FrenchCommand, FrenchGroup
from tiflow.example import TERRITORY_CODE


def new_app(help: str) -> typer.Typer:
    """A Typer (sub-)application with French usage, help and errors."""
    return typer.Typer(
        cls=FrenchGroup,
        help=help,
        no_args_is_help=True,
        rich_markup_mode="rich",
        add_completion=False,
        pretty_exceptions_show_locals=False,  # a traceback must not print database URLs
    )


def command(target: typer.Typer, name: str | None = None, **kwargs: Any) -> Callable[..., Any]:
    """`@command(app)` : like `@app.command()`, with French help and usage errors."""
    return target.command(name, cls=FrenchCommand, **kwargs)


app = new_app(
    "tiflow : le plan d'actions d'un Territoire d'industrie, piloté par des flux Prefect."
)


@app.callback()
def use_base(
    ctx: typer.Context,
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            metavar="BASE",
            help="La base sur laquelle travailler : « demo » (celle de tiflow demo, à la date"
            " du 2 janvier 2025), une URL de base ou un fichier SQLite. Défaut :"
            " TIFLOW_DATABASE_URL.",
        ),
    ] = None,
) -> None:
    if base is not None:
        from tiflow.demo_folder import point_at, restore

        saved = point_at(base)
        ctx.call_on_close(lambda: restore(saved))


db_app = new_app("Base de données : création et migrations.")
app.add_typer(db_app, name="db")


@command(db_app, "upgrade")
def db_upgrade() -> None:
    """Crée la base ou la met à jour vers la dernière version du schéma."""
    settings = load_settings()
    schema_revisions(engine_for(settings.database_url))  # a French error if unreachable
    upgrade(engine_for(settings.database_url))
    console.print(f"Base à jour : [bold]{safe_url(settings.database_url)}[/]")


def plan_table(uow: UnitOfWork, territory_id: int, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for header in ("N°", "Intitulé", "Axe", "Pilote", "Engagement ferme", "État", "Budget"):
        table.add_column(header, justify="right" if header == "Budget" else "left")
    for action in uow.repo.actions(territory_id):
        table.add_row(*_row(uow, action))
    return table


def _row(uow: UnitOfWork, action: ActionSheet) -> list[str]:
    assert action.id is not None
    pilot = uow.repo.person(action.pilot_id)
    return [
        action.number,
        action.title,
        action.axis.label,
        pilot.full_name if pilot else "—",
        "oui" if action.firm_commitment else "non",
        action.state.label,
        format_eur(uow.repo.budget_total(action.id)),
    ]


# Command modules register themselves on `app` (imported last: they import `app` from here).
from tiflow.cli import (  # noqa: E402
    copil_commands,
    demo,
    lifecycle,
    operations,
    outbox_commands,
    plan_files,
    preferences,
    run_commands,
    views,
    web,
)

__all__ = [
    "TERRITORY_CODE",
    "app",
    "command",
    "copil_commands",
    "demo",
    "lifecycle",
    "new_app",
    "operations",
    "outbox_commands",
    "plan_files",
    "plan_table",
    "preferences",
    "run_commands",
    "views",
    "web",
]
