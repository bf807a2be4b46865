"""`tiflow copil compte-rendu N` (record a COPIL's minutes) and `tiflow run suites` (the
record of decisions and the minutes reminders, flow « suites-copil »)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.usecases.after_copil import record_minutes
from flows.usecases.bus import unit_of_work
from models.errors import InvalidInput
from notifications.fr import format_datetime, plural
from tiflow.cli import command
from tiflow.cli.common import console, database
from tiflow.cli.run_commands import (
    AsOfOption,
    JournalOption,
    TerritoryOption,
    _show_delivery,
    copil_app,
    run_app,
    run_day_flow,
)


@command(copil_app, "compte-rendu")
def minutes_command(
    copil: Annotated[int, typer.Argument(metavar="N", help="Numéro du COPIL, ex. 3.")],
    fichier: Annotated[
        Path | None,
        typer.Option(
            "--fichier",
            metavar="FICHIER",
            help="Fichier texte (UTF-8) du compte rendu.",
            show_default=False,
        ),
    ] = None,
    texte: Annotated[
        str | None,
        typer.Option(
            "--texte", metavar="TEXTE", help="Le compte rendu lui-même.", show_default=False
        ),
    ] = None,
) -> None:
    """Enregistre le compte rendu d'un COPIL tenu : les rappels au chargé de mission
    (3 et 7 jours après le COPIL) s'arrêtent."""
    if (fichier is None) == (texte is None):
        raise InvalidInput(["Compte rendu : donnez --fichier ou --texte (l'un des deux)."])
    if fichier is not None:
        try:
            texte = fichier.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise InvalidInput(
                [f"Compte rendu : fichier « {fichier} » illisible ({type(error).__name__})."]
            ) from None
    assert texte is not None
    with unit_of_work(database()) as uow:
        meeting = record_minutes(uow, copil, texte)
        held_at, recorded_at = meeting.held_at, meeting.minutes_recorded_at
        uow.commit()
    assert recorded_at is not None
    console.print(
        f"Compte rendu du COPIL n° {copil} (réuni le {format_datetime(held_at)}) enregistré le"
        f" {format_datetime(recorded_at)} : {plural(len(texte.strip()), 'caractère', 'caractères')}"
        " ; plus de rappel au chargé de mission.",
        highlight=False,
    )


@command(run_app, "suites")
def run_after_copil(
    au: AsOfOption = None, territoire: TerritoryOption = None, journal: JournalOption = False
) -> None:
    """Suites des COPIL (flux « suites-copil ») : relevé de décisions le lendemain de chaque
    COPIL, rappel du compte rendu 3 et 7 jours après tant qu'il n'est pas enregistré."""
    from flows.after_copil import after_copil
    from flows.usecases.after_copil import AfterCopilSettings

    result, _, _ = run_day_flow(
        "Suites des COPIL",
        after_copil,
        au,
        territoire,
        journal,
        lambda codes: AfterCopilSettings(territories=codes),
        "settings",
    )
    for copil in result["records"]:
        console.print(f"  Relevé de décisions du {copil} mis en file.", highlight=False)
    for copil in result["reminders"]:
        console.print(f"  Rappel du compte rendu du {copil} mis en file.", highlight=False)
    if not result["records"] and not result["reminders"]:
        console.print("  Rien à envoyer ce jour-là (relevé à J+1, rappels à J+3 et J+7).")
    _show_delivery(result)
