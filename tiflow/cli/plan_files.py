"""`tiflow import`, `tiflow export`, `tiflow modele`: the plan as a spreadsheet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from flows.usecases.bus import unit_of_work
from models.errors import InvalidInput, TiflowError
from tiflow.cli import app, command
from tiflow.cli.common import console, database, pick_territory, progress_bar
from tiflow.cli.french import USER_ERROR, err_console
from tiflow.spreadsheet import Change, ImportReport, export_plan, import_plan, write_template
from tiflow.spreadsheet.files import file_kind

FileArgument = Annotated[
    Path,
    typer.Argument(
        metavar="FICHIER",
        help="Classeur Excel (.xlsx) ou fichier CSV (.csv), selon l'extension.",
        show_default=False,
    ),
]
TerritoryOption = Annotated[
    str | None,
    typer.Option(
        "--territoire",
        "-t",
        metavar="CODE",
        help="Code du territoire, ex. grand-est-touraine (par défaut : le seul de la base).",
        show_default=False,
    ),
]
OverwriteOption = Annotated[
    bool,
    typer.Option("--ecraser", "-f", help="Remplace le fichier s'il existe déjà."),
]

_CHANGE_STYLES = {Change.CREATED: "green", Change.UPDATED: "yellow", Change.UNCHANGED: "dim"}


@command(app, "import")
def import_command(
    fichier: FileArgument,
    territoire: Annotated[
        str | None,
        typer.Option(
            "--territoire",
            "-t",
            metavar="CODE",
            help="Code du territoire (par défaut : celui de la feuille Territoire du fichier,"
            " ou le seul de la base).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            "--simulation",
            help="Vérifie le fichier et montre ce qui changerait, sans rien enregistrer.",
        ),
    ] = False,
) -> None:
    """Importe un plan d'actions (.xlsx ou .csv) : tout est vérifié, puis tout ou rien est
    enregistré. Réimporter le même fichier ne change rien."""
    file_kind(fichier)  # refuse an unknown extension before opening the database
    engine = database()
    with unit_of_work(engine) as uow:
        try:
            with progress_bar() as progress:
                report = import_plan(uow, fichier, territory=territoire, progress=progress)
        except InvalidInput as error:
            _show_problems(fichier, error)
            raise typer.Exit(USER_ERROR) from None
        _show_report(report, dry_run)
        if not dry_run:
            uow.commit()
    if dry_run:
        console.print(
            "[bold]Simulation[/] (--dry-run) : rien n'a été enregistré."
            " Relancez sans --dry-run pour importer."
        )
    elif report.changed:
        console.print(
            f"[bold green]Import enregistré[/] dans le territoire {report.territory_code}."
        )
    else:
        console.print("Rien à changer : la base correspond déjà au fichier.")


def _show_problems(path: Path, error: InvalidInput) -> None:
    count = len(error.problems)
    noun = "erreur" if count == 1 else "erreurs"
    err_console.print(
        f"[bold red]Import refusé[/] : « {escape(path.name)} » contient {count} {noun} ;"
        " rien n'a été enregistré. Corrigez-les puis relancez l'import :"
    )
    for problem in error.problems:
        err_console.print(f"  • {escape(problem)}", soft_wrap=True, highlight=False)


def _show_report(report: ImportReport, dry_run: bool) -> None:
    for warning in report.warnings:
        err_console.print(f"[yellow]Attention[/] : {escape(warning)}", highlight=False)
    title = f"Import de « {report.source.name} » — territoire {report.territory_code}"
    table = Table(title=title, title_justify="left")
    table.add_column("Feuille")
    table.add_column("Élément")
    table.add_column("Changement")
    table.add_column("Détail")
    for change in report.changes:
        if change.sheet != "Actions" and change.change is Change.UNCHANGED:
            continue  # people and organisations: only what changes
        label = change.key if change.sheet != "Actions" else f"{change.key} {change.label}"
        style = _CHANGE_STYLES[change.change]
        table.add_row(
            change.sheet,
            escape(label),
            f"[{style}]{change.change_label}[/]",
            escape(", ".join(change.details)),
        )
    console.print(table)
    what = "Bilan de la simulation" if dry_run else "Bilan"
    console.print(f"{what} ({report.rows} lignes lues) : {report.summary()}.")


@command(app, "export")
def export_command(
    fichier: FileArgument,
    territoire: TerritoryOption = None,
    ecraser: OverwriteOption = False,
) -> None:
    """Exporte le plan d'un territoire (.xlsx ou .csv) ; le fichier se réimporte tel quel."""
    file_kind(fichier)
    _refuse_overwrite(fichier, ecraser)
    with unit_of_work(database()) as uow:
        territory = pick_territory(uow, territoire)
        name = territory.name
        with err_console.status("Export en cours…"):
            summary = export_plan(uow, territory.code, fichier)
    console.print(f"Plan de {escape(name)} exporté dans [bold]{escape(str(fichier))}[/] :")
    console.print(f"  {summary.describe()}.")


@command(app, "modele")
def template_command(fichier: FileArgument, ecraser: OverwriteOption = False) -> None:
    """Crée un classeur vierge à remplir (feuilles, en-têtes, listes de choix et mode
    d'emploi)."""
    file_kind(fichier)
    _refuse_overwrite(fichier, ecraser)
    write_template(fichier)
    console.print(f"Modèle créé : [bold]{escape(str(fichier))}[/]")
    if fichier.suffix.lower() == ".xlsx":
        console.print("La feuille « Instructions » explique chaque colonne.")


def _refuse_overwrite(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise TiflowError(f"Le fichier {path} existe déjà : ajoutez --ecraser pour le remplacer.")
