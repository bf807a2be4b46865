"""`tiflow run …` (run a flow by hand, with an "as of" date) and `tiflow copil planifier`.

Each command runs the real Prefect flow in this process — on the server of PREFECT_API_URL,
or on Prefect's temporary local server (see `prefect_runs`) — then prints a French summary:
the run's name and id and what it did. A refusal (unknown COPIL, impossible decision…) is one
French message and exit code 1; nothing was recorded.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import sqlalchemy as sa
import typer
from pydantic import BaseModel, ValidationError
from rich.markup import escape
from rich.table import Table
from sqlalchemy.engine import Engine

from flows.usecases.bus import unit_of_work
from flows.usecases.reminders import EnqueueSummary, enqueued_fr
from flows.usecases.service import short_datetime
from models.errors import InvalidInput
from models.money import format_eur
from models.outbox import OutboxMessage
from models.settings import load_settings
from notifications.fr import format_date, plural
from notifications.kinds import in_order, kind_count
from notifications.outbox import DeliveryReport, backlog, utcnow
from tiflow.cli import app, command, new_app
from tiflow.cli.common import console, database, date_option, pick_territory
from tiflow.cli.decisions_file import read_decisions
from tiflow.cli.french import err_console
from tiflow.cli.prefect_runs import FlowRun, prefect_session, run_flow
from tiflow.spreadsheet.cells import CellError, parse_date, parse_money

if TYPE_CHECKING:
    from flows.usecases.copil import CopilInfo, CopilOutcome

run_app = new_app(
    "Lance un flux Prefect à la main : rappels, synthèse COPIL, budget, décisions d'un COPIL,"
    " envoi des messages en attente."
)
app.add_typer(run_app, name="run")
copil_app = new_app("Réunions du COPIL.")
app.add_typer(copil_app, name="copil")

TerritoryOption = Annotated[
    str | None,
    typer.Option(
        "--territoire",
        "-t",
        metavar="CODE",
        help="Code du territoire, ex. grand-est-touraine (par défaut : tous les territoires).",
        show_default=False,
    ),
]
AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--au",
        metavar="DATE",
        help="Jour simulé, JJ/MM/AAAA (par défaut : aujourd'hui, heure de Paris) : pour"
        " rattraper un jour où le flux n'a pas tourné, ou rejouer une date.",
        show_default=False,
    ),
]
JournalOption = Annotated[
    bool,
    typer.Option("--journal", help="Affiche aussi le journal de Prefect (sur la sortie d'erreur)."),
]
RecordedByOption = Annotated[
    str,
    typer.Option(
        "--saisi-par",
        metavar="NOM",
        help="Nom inscrit à l'historique (par défaut : le chargé de mission du territoire).",
        show_default=False,
    ),
]

_TIME = re.compile(r"^(\d{1,2})\s*(?:[:h])\s*(\d{2})?$")


def datetime_option(value: str | None, option: str, default_time: time) -> datetime | None:
    """``25/01/2024 09:30``, ``25/01/2024 9h30``, ``2024-01-25T09:30`` or a date alone (at
    `default_time`); Paris time."""
    if value is None:
        return None
    text = value.strip().replace("T", " ")
    day_text, _, time_text = text.partition(" ")
    try:
        day = parse_date(day_text)
    except CellError as error:
        raise typer.BadParameter(str(error), param_hint=option) from None
    moment = default_time
    if time_text.strip():
        match = _TIME.match(time_text.strip())
        if not match or int(match[1]) > 23 or int(match[2] or 0) > 59:
            raise typer.BadParameter(
                f"heure illisible « {time_text.strip()} » (attendu HH:MM, ex. 09:30)",
                param_hint=option,
            )
        moment = time(int(match[1]), int(match[2] or 0))
    return datetime.combine(day, moment)


def _check_territory(code: str | None) -> Engine:
    engine = database()
    if code:
        with unit_of_work(engine) as uow:
            pick_territory(uow, code)  # a French error for an unknown code, before any run
    return engine


def _emails_by_kind(engine: Engine, run_id: str) -> Counter[str]:
    """Outbox rows the run created, by kind."""
    m = OutboxMessage.__table__.c  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(m.kind, sa.func.count()).where(m.correlation_id == run_id).group_by(m.kind)
        )
        return Counter({str(kind): int(n) for kind, n in rows})


def _describe_kinds(counts: Counter[str]) -> str:
    parts = [kind_count(kind, counts[kind]) for kind in in_order(list(counts)) if counts[kind]]
    return ", ".join(parts) if parts else "aucun"


def _show_run(title: str, run: FlowRun[Any]) -> None:
    console.print(f"[bold]{escape(title)}[/] — {escape(run.describe())}", highlight=False)


def run_day_flow(
    label: str,
    flow: Any,
    au: str | None,
    territoire: str | None,
    journal: bool,
    settings: Callable[[list[str]], BaseModel],
    parameter: str,
) -> tuple[dict[str, Any], FlowRun[Any], Engine]:
    """A one-day flow (`rappels`, `synthese`, `suites`): its day (`--au`), its territory
    checked before any run, its settings (``parameter``) for that territory, the run, then
    « <label> du <day> — <run> ». Returns the run's result, the run and the database."""
    day = date_option(au, "'--au'")
    engine = _check_territory(territoire)
    chosen = settings([territoire] if territoire else [])
    with prefect_session(journal) as server, _running(label):
        if server is not None:
            server.wait()
        run = run_flow(flow, as_of=day, **{parameter: chosen})
    result: dict[str, Any] = run.result
    _show_run(f"{label} du {format_date(date.fromisoformat(result['as_of']))}", run)
    return result, run, engine


def _show_delivery(result: dict[str, Any]) -> None:
    round_ = DeliveryReport(
        sent=result.get("sent", 0),
        retry=result.get("retry", 0),
        failed=result.get("failed", 0),
        dropped=result.get("dropped", 0),
        in_doubt=result.get("in_doubt", 0),
        resumed=result.get("resumed", 0),
    )
    console.print(f"  Cette tournée : {round_.counts()}.", highlight=False)
    with database().connect() as conn:  # what waits now, whatever the flow did
        console.print(f"  Boîte d'envoi : {backlog(conn, utcnow()).summary()}.", highlight=False)
    settings = load_settings()
    if not settings.notify_config and result.get("sent"):
        console.print(
            f"  E-mails écrits en fichiers .eml dans {settings.outbox_dir}"
            " (TIFLOW_NOTIFY_CONFIG n'est pas défini).",
            highlight=False,
        )


def _running(what: str) -> Any:
    return err_console.status(f"{what} (Prefect)…")


@command(run_app, "rappels")
def run_reminders(
    au: AsOfOption = None, territoire: TerritoryOption = None, journal: JournalOption = False
) -> None:
    """Rappels d'échéances aux pilotes et alertes au chargé de mission (flux
    « rappels-echeances ») ; relancer le même jour n'envoie rien de nouveau."""
    from flows.reminders import deadline_reminders
    from flows.usecases.reminders import ReminderSettings

    result, run, engine = run_day_flow(
        "Rappels d'échéances",
        deadline_reminders,
        au,
        territoire,
        journal,
        lambda codes: ReminderSettings(territories=codes),
        "reminders",
    )
    kinds = _emails_by_kind(engine, run.run_id)
    summary = EnqueueSummary(
        messages=result["enqueued"],
        items=result["items"],
        superseded=result.get("superseded", 0),
        recreated=result.get("recreated", 0),
        already_queued=result.get("already_queued", 0),
    )
    detail = f" : {_describe_kinds(kinds)}" if summary.messages else ""
    text = enqueued_fr(summary)
    console.print(f"  {text[:1].upper()}{text[1:]}{detail}.", highlight=False)
    _show_delivery(result)


@command(run_app, "synthese")
def run_digest(
    au: AsOfOption = None, territoire: TerritoryOption = None, journal: JournalOption = False
) -> None:
    """Synthèse aux membres du COPIL, 10 et 3 jours avant chaque réunion planifiée (flux
    « synthese-copil ») ; les autres jours, rien à envoyer."""
    from flows.digest import copil_digest
    from flows.usecases.digest import DigestSettings

    result, _, _ = run_day_flow(
        "Synthèse COPIL",
        copil_digest,
        au,
        territoire,
        journal,
        lambda codes: DigestSettings(territories=codes),
        "digest",
    )
    copils = result["copils"]
    if copils:
        console.print(
            f"  COPIL n° {', '.join(str(c) for c in copils)} : "
            + plural(result["enqueued"], "e-mail", "e-mails")
            + " mis en file (ordre du jour, invitation .ics, tableau CSV).",
            highlight=False,
        )
    else:
        console.print("  Aucun COPIL à annoncer ce jour-là (envois à J-10 et J-3).")
    _show_delivery(result)


@command(run_app, "budget")
def run_budget(
    annee: Annotated[
        int,
        typer.Argument(metavar="ANNÉE", help="Année budgétaire à consolider, ex. 2024."),
    ],
    territoire: TerritoryOption = None,
    au: Annotated[
        str | None,
        typer.Option(
            "--au",
            metavar="DATE",
            help="Date de situation des retards, JJ/MM/AAAA (par défaut : aujourd'hui).",
            show_default=False,
        ),
    ] = None,
    journal: JournalOption = False,
) -> None:
    """Consolide le budget d'une année (flux « Consolider le budget annuel ») : nouvel
    instantané, classeur et CSV, e-mail du classeur aux chargés de mission."""
    from flows.budget import BudgetParameters, BudgetRunResult, consolidate_budget

    as_of = date_option(au, "'--au'")
    if not 2000 <= annee <= 2100:
        raise typer.BadParameter(
            f"{annee} n'est pas une année valide (de 2000 à 2100).", param_hint="ANNÉE"
        )
    _check_territory(territoire)
    params = BudgetParameters(year=annee, territory=territoire, as_of=as_of)
    with prefect_session(journal) as server, _running(f"Consolidation du budget {annee}"):
        if server is not None:
            server.wait()
        run = run_flow(consolidate_budget, params)
    result = run.result
    assert isinstance(result, BudgetRunResult)
    _show_run(f"Budget {annee} consolidé — version {result.version}", run)
    console.print(f"  Classeur : {result.files.xlsx}", highlight=False, soft_wrap=True)
    console.print(f"  CSV      : {result.files.csv}", highlight=False, soft_wrap=True)
    if result.emails:
        console.print(
            "  Classeur envoyé aux chargés de mission : "
            + plural(result.emails, "e-mail mis en file.", "e-mails mis en file."),
            highlight=False,
        )
    _show_delivery({"sent": result.sent})


@command(run_app, "copil")
def run_copil(
    copil_id: Annotated[
        int, typer.Argument(metavar="COPIL_ID", help="N° du COPIL (donné à sa planification).")
    ],
    decisions: Annotated[
        Path,
        typer.Option(
            "--decisions",
            metavar="FICHIER",
            help="Les décisions : CSV « numéro;décision;conditions;commentaire » (une ligne par"
            " action ; décision : validée, rejetée, ajournée, révision demandée, non examinée)"
            " ou JSON.",
            show_default=False,
        ),
    ],
    budget: Annotated[
        str | None,
        typer.Option(
            "--budget",
            metavar="MONTANT",
            help="Budget annuel validé par le COPIL, ex. « 1 035 000,00 ».",
            show_default=False,
        ),
    ] = None,
    annee_budget: Annotated[
        int | None,
        typer.Option(
            "--annee-budget",
            metavar="ANNÉE",
            help="Année du budget validé (par défaut : l'année de la réunion).",
            show_default=False,
        ),
    ] = None,
    saisi_par: RecordedByOption = "",
    le: Annotated[
        str | None,
        typer.Option(
            "--le",
            metavar="DATE",
            help="Quand les décisions ont été prises, JJ/MM/AAAA [HH:MM] (par défaut :"
            " maintenant) : pour les saisir après coup.",
            show_default=False,
        ),
    ] = None,
    journal: JournalOption = False,
) -> None:
    """Enregistre les décisions d'un COPIL lues dans un fichier (flux « Tenir un COPIL ») :
    toutes ensemble, ou aucune si l'une est impossible."""
    from flows.copil import hold_copil
    from flows.forms import CopilDecisionsForm, DecisionForm, Outcome

    at = datetime_option(le, "'--le'", time(12, 0))
    amount: Decimal | None = None
    if budget is not None:
        try:
            amount = parse_money(budget)
        except CellError as error:
            raise typer.BadParameter(str(error), param_hint="'--budget'") from None
    read = read_decisions(decisions)
    if amount is None and read.validated_budget is not None:
        try:
            amount = parse_money(read.validated_budget)
        except CellError as error:
            raise typer.BadParameter(str(error), param_hint="validated_budget") from None
    database()
    form = CopilDecisionsForm(
        copil_id=copil_id,
        decisions=[
            DecisionForm(
                number=d.number,
                outcome=Outcome(d.outcome),
                conditions=d.conditions,
                comment=d.comment,
            )
            for d in read.decisions
        ],
        budget_year=annee_budget if annee_budget is not None else read.budget_year,
        validated_budget=amount,
        recorded_by=saisi_par or read.recorded_by or "",
        at=at,
    )
    with prefect_session(journal) as server, _running(f"Décisions du COPIL n° {copil_id}"):
        if server is not None:
            server.wait()
        run = run_flow(hold_copil, form)
    _show_outcome(run)


def _show_outcome(run: FlowRun[CopilOutcome]) -> None:
    outcome = run.result
    copil = outcome.copil
    _show_run(f"{copil.label} — {copil.territory_name} : décisions enregistrées", run)
    if outcome.decisions:
        table = Table(title_justify="left")
        for header in ("N°", "Action", "Avant", "Décision", "Conditions", "Commentaire"):
            table.add_column(header)
        for d in outcome.decisions:
            table.add_row(
                d.number,
                escape(d.title),
                d.from_state.label,
                f"[bold]{d.outcome.label}[/]",
                escape(d.conditions or "—"),
                escape(d.comment or "—"),
            )
        console.print(table)
    for item in outcome.undecided:
        console.print(
            f"  {item.number} reste en attente d'une décision ({item.state.label}).",
            highlight=False,
        )
    if outcome.validated_budget is not None:
        console.print(
            f"  Budget {outcome.budget_year} validé : {format_eur(outcome.validated_budget)}.",
            highlight=False,
        )


@command(run_app, "envoi")
def run_delivery(
    journal: JournalOption = False,
    maintenant: Annotated[
        bool,
        typer.Option(
            "--maintenant",
            help="Renvoie tout de suite les messages en attente d'un nouvel essai, sans"
            " attendre la fin de leur délai (par exemple dès le retour du serveur SMTP).",
        ),
    ] = False,
) -> None:
    """Envoie les messages en attente de la boîte d'envoi (flux
    « envoi-messages-en-attente ») : nouvel essai après un échec d'envoi. Voir aussi
    « tiflow envois » pour la liste des messages."""
    from flows.outbox import deliver_outbox
    from notifications.outbox import DeliverySettings

    database()
    with prefect_session(journal) as server, _running("Envoi des messages en attente"):
        if server is not None:
            server.wait()
        run = run_flow(deliver_outbox, delivery=DeliverySettings(now=maintenant))
    _show_run("Envoi des messages en attente", run)
    _show_delivery(run.result)


@command(copil_app, "planifier")
def schedule_command(
    date_: Annotated[
        str,
        typer.Option(
            "--date",
            metavar="DATE",
            help="Date et heure de la réunion, « JJ/MM/AAAA HH:MM », heure de Paris (sans"
            " heure : 09:30).",
            show_default=False,
        ),
    ],
    lieu: Annotated[
        str,
        typer.Option("--lieu", metavar="LIEU", help="Lieu de la réunion.", show_default=False),
    ] = "",
    membre: Annotated[
        list[str] | None,
        typer.Option(
            "--membre",
            metavar="EMAIL",
            help="E-mail d'un membre invité (répétable ; par défaut : toutes les personnes"
            " ayant le rôle « membre du COPIL »).",
            show_default=False,
        ),
    ] = None,
    territoire: Annotated[
        str | None,
        typer.Option(
            "--territoire",
            "-t",
            metavar="CODE",
            help="Code du territoire (par défaut : le seul de la base).",
            show_default=False,
        ),
    ] = None,
    saisi_par: RecordedByOption = "",
    journal: JournalOption = False,
) -> None:
    """Planifie un COPIL (flux « Planifier un COPIL ») : son ordre du jour reprend les actions
    proposées ou ajournées ; la synthèse partira à J-10 et J-3 (tiflow run synthese)."""
    from flows.copil import schedule_copil
    from flows.forms import CopilScheduleForm

    held_at = datetime_option(date_, "'--date'", time(9, 30))
    assert held_at is not None
    engine = database()
    with unit_of_work(engine) as uow:
        code = pick_territory(uow, territoire).code
    try:
        form = CopilScheduleForm(
            territory=code, held_at=held_at, place=lieu, members=membre or [], recorded_by=saisi_par
        )
    except ValidationError as error:  # what the form refuses (a line break in --lieu…)
        raise InvalidInput(form_problems(CopilScheduleForm, error)) from None
    with prefect_session(journal) as server, _running("Planification du COPIL"):
        if server is not None:
            server.wait()
        run = run_flow(schedule_copil, form)
    _show_schedule(run)


def form_problems(form: type[BaseModel], error: ValidationError) -> list[str]:
    """« Lieu : retour à la ligne interdit ici … », one line per refused field."""
    problems = []
    for item in error.errors():
        field = form.model_fields.get(str(item["loc"][0])) if item["loc"] else None
        label = (field.title if field else None) or ".".join(map(str, item["loc"]))
        problems.append(f"{label} : {str(item['msg']).removeprefix('Value error, ')}")
    return problems


def _show_schedule(run: FlowRun[CopilInfo]) -> None:
    info = run.result
    _show_run(f"COPIL n° {info.copil_id} planifié — {info.territory_name}", run)
    console.print(
        f"  Le {short_datetime(info.held_at)}"
        + (f", {escape(info.place)}" if info.place else "")
        + " ; "
        + plural(len(info.members), "membre invité.", "membres invités."),
        highlight=False,
    )
    if info.agenda:
        title = f"Ordre du jour ({plural(len(info.agenda), 'action', 'actions')})"
        table = Table(title=title, title_justify="left")
        for header in ("N°", "Action", "État", "Pilote", "Budget"):
            table.add_column(header, justify="right" if header == "Budget" else "left")
        for item in info.agenda:
            table.add_row(
                item.number,
                escape(item.title),
                item.state.label,
                escape(item.pilot or "—"),
                format_eur(item.budget_total),
            )
        console.print(table)
    else:
        console.print("  Ordre du jour vide pour l'instant : les actions proposées s'y ajoutent.")
    console.print(
        f"  Décisions : tiflow run copil {info.copil_id} --decisions decisions.csv",
        highlight=False,
    )
