"""The coordinator's command line (`tiflow --help`). Messages are French."""

from __future__ import annotations

import shutil

import typer
from rich.console import Console
from rich.table import Table

from models.money import format_eur
from models.tables import ActionSheet
from tiflow.db import engine_for, make_engine, upgrade
from tiflow.example import TERRITORY_CODE, load_example
from tiflow.settings import load_settings
from tiflow.uow import UnitOfWork

app = typer.Typer(
    help="tiflow : le plan d'actions d'un Territoire d'industrie, piloté par des flux Prefect.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
db_app = typer.Typer(help="Base de données : création et migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Crée la base ou la met à jour vers la dernière version du schéma."""
    settings = load_settings()
    upgrade(engine_for(settings.database_url))
    console.print(f"Base à jour : [bold]{_safe_url(settings.database_url)}[/]")


@app.command()
def demo() -> None:
    """Charge l'exemple Grand Est Touraine dans une base neuve et affiche l'état du plan."""
    settings = load_settings()
    demo_dir = settings.data_dir / "demo"
    shutil.rmtree(demo_dir, ignore_errors=True)
    demo_dir.mkdir(parents=True)
    engine = make_engine(f"sqlite:///{demo_dir / 'tiflow-demo.db'}")
    upgrade(engine)
    with UnitOfWork(engine) as uow:
        territory = load_example(uow)
        uow.commit()
    with UnitOfWork(engine) as uow:
        assert territory.id is not None
        console.print(plan_table(uow, territory.id, f"Plan d'actions — {territory.name} (exemple)"))
    console.print(f"Base de démonstration : {demo_dir / 'tiflow-demo.db'}")


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


def _safe_url(url: str) -> str:
    """Never print a password."""
    from sqlalchemy import make_url

    return make_url(url).render_as_string(hide_password=True)


__all__ = ["TERRITORY_CODE", "app"]
