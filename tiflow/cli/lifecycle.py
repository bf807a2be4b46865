"""The lifecycle steps of one action, in French, without JSON: `tiflow proposer`, `financer`,
`avancement`, `demarrer`, `terminer`, `abandonner`.

Each command runs its use case (flows/usecases/) directly, in one unit of work from the bus
factory: the history row, the notices it calls for (kick-off once funded…) and its Prefect
events are committed together, then the notices are delivered and the events published — to
the Prefect server of PREFECT_API_URL if there is one; otherwise they wait in the event outbox
for the next flow run or `tiflow run envoi`. Not through a Prefect flow run: one short
transaction would wait 8 to 12 s for Prefect's temporary server, for nothing the bus does not
already guarantee (the history row's correlation id is then ``tiflow-cli-…``, not a run id).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, TypeVar

import typer

from flows.usecases.bus import send_consequences, unit_of_work
from models.events import DomainEvent
from models.money import format_eur, parse_amount, parse_number
from models.settings import load_settings
from models.uow import UnitOfWork
from notifications.fr import plural
from tiflow.cli import app, command
from tiflow.cli.common import console, database, date_option
from tiflow.cli.views import TerritoryOption as Territory
from tiflow.spreadsheet.cells import CellError, parse_axis

T = TypeVar("T")

Number = Annotated[str, typer.Argument(metavar="NUMÉRO", help="Numéro de la fiche, ex. FA-07.")]
RecordedBy = Annotated[
    str,
    typer.Option("--saisi-par", metavar="NOM", help="Qui enregistre (pour l'historique)."),
]
Reason = Annotated[
    str | None, typer.Option("--motif", metavar="TEXTE", help="Motif ou commentaire (historique).")
]


def _step(work: Callable[[UnitOfWork, str], T], show: Callable[[T], None]) -> None:
    """Run `work(uow, correlation_id)` in one unit of work, commit, `show` the result, then
    send what follows (the notices, the Prefect events) and say so."""
    engine = database()
    correlation_id = f"tiflow-cli-{uuid.uuid4().hex[:12]}"
    with unit_of_work(engine) as uow:
        result = work(uow, correlation_id)
        uow.commit()
        events: list[DomainEvent] = list(uow.events)
    show(result)
    sent = send_consequences(engine, events, load_settings(), correlation_id, ephemeral=False)
    if sent.notices is not None:
        console.print(f"  Avis : {sent.notices.summary()}", highlight=False)
    if sent.events.published:
        console.print(f"  {sent.events.summary()}.", highlight=False)
    elif sent.events.pending:
        console.print(
            "  "
            + plural(
                sent.events.pending, "événement Prefect en attente", "événements Prefect en attente"
            )
            + " : publiés au prochain"
            " flux ou par « tiflow run envoi ».",
            highlight=False,
        )


def _amount(value: str | None, option: str, field: str) -> Decimal | None:
    if value is None:
        return None
    try:
        return parse_amount(value, field)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint=option) from None


def _day(value: str | None, option: str) -> date | None:
    return date_option(value, option)


@command(app, "proposer")
def propose_command(
    numero: Number,
    intitule: Annotated[
        str | None,
        typer.Option("--intitule", metavar="TEXTE", help="Intitulé (pour une nouvelle fiche)."),
    ] = None,
    axe: Annotated[
        str | None,
        typer.Option("--axe", metavar="AXE", help="Axe (pour une nouvelle fiche), ex. Foncier."),
    ] = None,
    pilote: Annotated[
        str | None,
        typer.Option("--pilote", metavar="E-MAIL", help="E-mail du pilote de l'action."),
    ] = None,
    territoire: Territory = None,
    saisi_par: RecordedBy = "",
) -> None:
    """Propose une fiche au COPIL (brouillon, à réviser, ou nouvelle avec --intitule et --axe) :
    elle passe à « proposée » et s'inscrit au prochain COPIL planifié."""
    from flows.usecases.proposals import SheetDetails, propose

    try:
        axis = parse_axis(axe) if axe else None
    except CellError as error:
        raise typer.BadParameter(str(error), param_hint="'--axe'") from None
    details = SheetDetails(title=intitule, axis=axis, pilot_email=pilote)
    _step(
        lambda uow, cid: propose(
            uow, territoire, numero, details, recorded_by=saisi_par, correlation_id=cid
        ),
        _show_proposal,
    )


def _show_proposal(result: Any) -> None:
    console.print(
        f"{result.number} « {result.title} » {'créée' if result.created else 'reprise'} :"
        f" {result.from_state.label} → proposée (budget {format_eur(result.budget_total)}).",
        highlight=False,
    )
    if result.next_copil_id is not None:
        console.print(f"  Inscrite au COPIL n° {result.next_copil_id}.", highlight=False)
    else:
        console.print("  Aucun COPIL planifié : elle ira au prochain.", highlight=False)


def _text_option(flag: str, help: str) -> Any:
    metavar = "DATE" if "JJ" in help else "MONTANT" if "Montant" in help else "TEXTE"
    return typer.Option(flag, metavar=metavar, help=help, show_default=False)


@command(app, "financer")
def fund_command(
    numero: Number,
    financeur: Annotated[
        str, typer.Option("--financeur", metavar="NOM", help="Financeur, ex. Région ou État.")
    ],
    annee: Annotated[
        int | None, typer.Option("--annee", metavar="ANNÉE", help="Année du financement.")
    ] = None,
    demande: Annotated[
        str | None, _text_option("--demande", "Montant demandé, ex. 40 000.")
    ] = None,
    accorde: Annotated[str | None, _text_option("--accorde", "Montant accordé.")] = None,
    verse: Annotated[str | None, _text_option("--verse", "Montant versé.")] = None,
    decision_le: Annotated[
        str | None, _text_option("--decision-le", "Décision du financeur le JJ/MM/AAAA.")
    ] = None,
    dossier_avant: Annotated[
        str | None, _text_option("--dossier-avant", "Dossier à déposer avant le JJ/MM/AAAA.")
    ] = None,
    dossier_depose: Annotated[
        str | None, _text_option("--dossier-depose", "Dossier déposé le JJ/MM/AAAA.")
    ] = None,
    decision_attendue: Annotated[
        str | None, _text_option("--decision-attendue", "Décision attendue le JJ/MM/AAAA.")
    ] = None,
    versement_attendu: Annotated[
        str | None, _text_option("--versement-attendu", "Versement attendu le JJ/MM/AAAA.")
    ] = None,
    convention: Annotated[
        str | None, _text_option("--convention", "Référence de la convention.")
    ] = None,
    forcer: Annotated[
        str | None,
        _text_option("--forcer", "Passer « financée » sans couverture complète : pourquoi."),
    ] = None,
    territoire: Territory = None,
    saisi_par: RecordedBy = "",
) -> None:
    """Enregistre la part d'un financeur (montants, dates du dossier) ; l'action validée passe
    à « financée » quand les montants accordés couvrent son budget."""
    from flows.usecases.funding import FundingDates, record_funding

    requested = _amount(demande, "'--demande'", "Montant demandé")
    granted = _amount(accorde, "'--accorde'", "Montant accordé")
    paid = _amount(verse, "'--verse'", "Montant versé")
    dates = FundingDates(
        decision_date=_day(decision_le, "'--decision-le'"),
        dossier_due=_day(dossier_avant, "'--dossier-avant'"),
        dossier_filed_on=_day(dossier_depose, "'--dossier-depose'"),
        decision_expected=_day(decision_attendue, "'--decision-attendue'"),
        payment_expected=_day(versement_attendu, "'--versement-attendu'"),
    )
    _step(
        lambda uow, cid: record_funding(
            uow,
            territoire,
            numero,
            funder=financeur,
            year=annee,
            convention_ref=convention,
            force_reason=forcer,
            recorded_by=saisi_par,
            correlation_id=cid,
            dates=dates,
            requested=requested,
            granted=granted,
            paid=paid,
        ),
        lambda result: console.print(result.summary(), highlight=False),
    )


@command(app, "avancement")
def progress_command(
    numero: Number,
    jalon: Annotated[
        list[str] | None,
        typer.Option("--jalon", metavar="INTITULÉ", help="Jalon franchi (répétable)."),
    ] = None,
    indicateur: Annotated[
        list[str] | None,
        typer.Option(
            "--indicateur",
            metavar="NOM=VALEUR",
            help="Valeur mesurée d'un indicateur, ex. « Stagiaires accueillis=12 » (répétable).",
        ),
    ] = None,
    note: Annotated[str | None, _text_option("--note", "Note de suivi.")] = None,
    le: Annotated[str | None, _text_option("--le", "Jour du point, JJ/MM/AAAA.")] = None,
    territoire: Territory = None,
    saisi_par: RecordedBy = "",
) -> None:
    """Enregistre l'avancement d'une action : jalons franchis, indicateurs, note de suivi."""
    from flows.usecases.progress import MilestoneDone, report_progress

    day = _day(le, "'--le'")
    milestones = [MilestoneDone(title) for title in jalon or []]
    values = [_indicator(text) for text in indicateur or []]
    _step(
        lambda uow, cid: report_progress(
            uow,
            territoire,
            numero,
            milestones_done=milestones,
            indicator_values=values,
            note=note,
            on=day,
            recorded_by=saisi_par,
            correlation_id=cid,
        ),
        _show_progress,
    )


def _show_progress(result: Any) -> None:
    done = ", ".join(result.milestones_done) or "aucun"
    console.print(
        f"{result.number} « {result.title} » : avancement enregistré (jalons franchis : {done}"
        f"{' ; note écrite' if result.note_written else ''}).",
        highlight=False,
    )
    for status in result.indicators:
        console.print(f"  {status.name} : {status.actual} / {status.target}", highlight=False)


def _indicator(text: str) -> Any:
    from flows.usecases.progress import IndicatorValue

    name, equals, value = text.rpartition("=")
    if not equals or not name.strip():
        raise typer.BadParameter(
            f"« {text} » : écrivez NOM=VALEUR, ex. « Stagiaires accueillis=12 ».",
            param_hint="'--indicateur'",
        )
    try:
        return IndicatorValue(name.strip(), parse_number(value))
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="'--indicateur'") from None


def _state_change(kind: str, numero: str, territoire: str | None, **kwargs: Any) -> None:
    from flows.usecases import progress

    use_case = {
        "start": progress.start_action,
        "complete": progress.complete_action,
        "abandon": progress.abandon_action,
    }[kind]
    _step(
        lambda uow, cid: use_case(uow, territoire, numero, correlation_id=cid, **kwargs),
        _show_step,
    )


def _show_step(result: Any) -> None:
    console.print(
        f"{result.number} « {result.title} » : {result.from_state.label} →"
        f" {result.to_state.label}.",
        highlight=False,
    )
    for milestone in result.open_milestones:
        console.print(f"  Jalon non franchi : {milestone.title}", highlight=False)


@command(app, "demarrer")
def start_command(
    numero: Number, motif: Reason = None, territoire: Territory = None, saisi_par: RecordedBy = ""
) -> None:
    """Démarre une action financée : elle passe « en cours »."""
    _state_change("start", numero, territoire, reason=motif, recorded_by=saisi_par)


@command(app, "terminer")
def complete_command(
    numero: Number, motif: Reason = None, territoire: Territory = None, saisi_par: RecordedBy = ""
) -> None:
    """Termine une action en cours : elle passe « terminée »."""
    _state_change("complete", numero, territoire, reason=motif, recorded_by=saisi_par)


@command(app, "abandonner")
def abandon_command(
    numero: Number,
    motif: Annotated[
        str, typer.Option("--motif", metavar="TEXTE", help="Pourquoi l'action est abandonnée.")
    ],
    territoire: Territory = None,
    saisi_par: RecordedBy = "",
) -> None:
    """Abandonne une action (depuis tout état ouvert), avec son motif."""
    _state_change("abandon", numero, territoire, reason=motif, recorded_by=saisi_par)
