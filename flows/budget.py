"""Consolider le budget annuel: the year's budget for one territory or all, stored and reported.

Four coarse tasks, whatever the number of actions: consolidate (a few SQL GROUP BY queries)
→ store an immutable, numbered snapshot → write the XLSX and CSV reports under
``TIFLOW_DATA_DIR/reports/`` and publish a table and a Markdown artifact in the run → e-mail the
workbook to the coordinators through the outbox (`flows.usecases.budget.mail`) and deliver it
(one delivery round, in the same task).

Scheduled yearly on the first working day of January at 07:00 Europe/Paris, for the year that
starts (see `yearly_schedule`); runnable by hand for any year and territory::

    tiflow run budget 2024 --territoire grand-est-touraine
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, TypeVar, cast

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.schedules import Cron, Schedule
from prefect.states import Completed, State
from prefect.utilities.annotations import quote
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from flows.forms import OptionalDate, OptionalText, optional, parameter
from flows.outbox import delivery_round
from flows.runtime import current_run_id, database, settings
from flows.usecases.budget.calendar import (
    PARIS,
    current_year,
    first_working_day,
    is_consolidation_day,
)
from flows.usecases.budget.consolidation import Consolidation, consolidate
from flows.usecases.budget.mail import enqueue_budget_mail
from flows.usecases.budget.reports import (
    ReportFiles,
    artifact_key,
    axis_table,
    markdown_summary,
    write_reports,
)
from flows.usecases.budget.snapshots import Snapshot, store_snapshot
from flows.usecases.bus import unit_of_work
from models import clock
from models.money import format_eur
from notifications.fr import plural
from notifications.outbox import DeliveryReport, DeliverySettings

T = TypeVar("T")
FLOW_NAME = "Consolider le budget annuel"
# Every day from 1 to 7 January at 07:00 Paris; the flow itself keeps only the first working
# day (holidays package). Day-of-week is `*`, so cron's day_or rule never widens the days;
# day_or=False states it anyway, in case someone adds a weekday field (pitfalls.md).
YEARLY_CRON = "0 7 1-7 1 *"
TIMEZONE = "Europe/Paris"


class BudgetParameters(BaseModel):
    """What the coordinator fills in to consolidate a budget by hand (Prefect's form)."""

    model_config = ConfigDict(
        title="Consolidation du budget annuel",
        extra="forbid",
        json_schema_extra={"description": "Année, territoire et date de situation du budget."},
    )

    year: int = Field(
        default_factory=current_year,
        ge=2000,
        le=2100,
        title="Année budgétaire",
        description="Année à consolider. Par défaut : l'année en cours (heure de Paris).",
    )
    territory: OptionalText = optional(
        "Territoire",
        "Code du territoire, par exemple grand-est-touraine. Laisser vide pour consolider tous"
        " les territoires.",
        max_length=64,
    )
    as_of: OptionalDate = optional(
        "Date de situation",
        "Date à laquelle on juge les actions en retard. Par défaut : aujourd'hui (heure de Paris).",
    )
    scheduled: bool = Field(
        default=False,
        title="Lancement planifié",
        description="Réservé à la planification annuelle : la consolidation n'a lieu que le "
        "premier jour ouvré de janvier, pour l'année qui commence. Laisser décoché "
        "pour un lancement à la main.",
    )

    @field_validator("territory")
    @classmethod
    def _blank_means_all(cls, value: str | None) -> str | None:
        value = (value or "").strip()
        return value or None


@dataclass(frozen=True)
class BudgetRunResult:
    snapshot_id: int
    year: int
    scope: str
    version: int
    files: ReportFiles
    emails: int = 0  # outbox rows created for the budget e-mail (0: already enqueued)
    sent: int = 0  # messages sent by the run's delivery round (all kinds)


def yearly_schedule() -> Schedule:
    """The deployment schedule (issue 7): 1–7 January, 07:00 Paris, `scheduled=True`."""
    return Cron(
        YEARLY_CRON,
        timezone=TIMEZONE,
        day_or=False,
        parameters={"params": {"scheduled": True}},
    )


@task(name="Consolider les chiffres", cache_policy=NO_CACHE)
def consolidate_figures(year: int, territory: str | None, as_of: date | None) -> Consolidation:
    with unit_of_work(database()) as uow:
        return consolidate(uow, year, territory, as_of)


@task(name="Enregistrer l'instantané", cache_policy=NO_CACHE)
def save_snapshot(consolidation: Consolidation, flow_run_id: str | None) -> Snapshot:
    engine = database()
    return store_snapshot(lambda: unit_of_work(engine), consolidation, flow_run_id)


@task(name="Écrire et publier les rapports", cache_policy=NO_CACHE)
def write_report_files(snapshot: Snapshot) -> ReportFiles:
    """The XLSX and CSV files, then the run's artifacts (one task: two API calls, no more
    worth a task run of their own)."""
    files = write_reports(snapshot, settings().reports_dir)
    publish_artifacts(snapshot, files)
    return files


@task(name="Envoyer le classeur aux chargés de mission", cache_policy=NO_CACHE)
def send_budget_email(
    snapshot: Snapshot, files: ReportFiles, flow_run_id: str | None
) -> tuple[int, DeliveryReport]:
    """Put the e-mail with the workbook in the outbox (idempotent per snapshot version): the
    very file just written, byte for byte; then, once committed, one delivery round (the
    outbox's own, `flows.outbox.delivery_round`, inside this task rather than as one more).
    Returns the outbox rows created (0: already enqueued) and the round's report."""
    workbook = (files.xlsx.read_bytes(), files.xlsx.name)
    with unit_of_work(database()) as uow:
        result = enqueue_budget_mail(uow, snapshot, workbook=workbook, correlation_id=flow_run_id)
        uow.commit()
    return len(result.created), delivery_round.fn(DeliverySettings(), flow_run_id)


def publish_artifacts(snapshot: Snapshot, files: ReportFiles) -> None:
    c = snapshot.figures
    create_table_artifact(
        axis_table(snapshot),
        key=artifact_key(snapshot),
        description=f"Budget {c.year} par axe — {c.scope_label}, version {snapshot.version}",
    )
    create_markdown_artifact(
        markdown_summary(snapshot, files),
        key=artifact_key(snapshot, "synthese"),
        description=f"Synthèse du budget {c.year} — {c.scope_label}",
    )


@flow(name=FLOW_NAME, description="Consolide le budget d'une année, l'archive et le publie.")
def consolidate_budget(
    params: Annotated[
        BudgetParameters | SkipJsonSchema[None],
        parameter("Consolidation", "L'année et le territoire à consolider."),
    ] = None,
) -> BudgetRunResult | State[Any]:
    """Consolidate, store a new snapshot version, write the reports, publish the artifacts.

    A scheduled run (`params.scheduled`) on any other day than the first working day of
    January ends at once, Completed with a message; it then consolidates the year of its
    scheduled date, so a run started late still reports the right year.
    """
    params = params or BudgetParameters()
    logger = get_run_logger()
    year = params.year
    if params.scheduled:
        day = scheduled_day()
        if not is_consolidation_day(day):
            message = (
                f"{day:%d/%m/%Y} n'est pas le premier jour ouvré de janvier"
                f" ({first_working_day(day.year):%d/%m/%Y}) : rien à consolider aujourd'hui."
            )
            logger.info(message)
            return Completed(message=message)
        if "year" not in params.model_fields_set:
            year = day.year
    run_id = current_run_id()
    consolidation = consolidate_figures(year, params.territory, params.as_of)
    snapshot = save_snapshot(_as_is(consolidation), run_id)
    files = write_report_files(_as_is(snapshot))
    emails, delivery = send_budget_email(_as_is(snapshot), files, run_id)
    total = snapshot.figures.total()
    logger.info(
        "Budget %s (%s) : version %s enregistrée, %s actions, prévu %s, accordé %s ; rapports : %s",
        year,
        snapshot.figures.scope_label,
        snapshot.version,
        snapshot.figures.governance.action_count,
        format_eur(total.planned),
        format_eur(total.granted),
        files.xlsx,
    )
    logger.info(
        "Classeur envoyé aux chargés de mission : %s ; boîte d'envoi : %s",
        plural(emails, "message mis en file", "messages mis en file"),
        delivery.summary(),
    )
    return BudgetRunResult(
        snapshot.id, year, snapshot.scope, snapshot.version, files, emails, delivery.sent
    )


def _as_is(value: T) -> T:
    """Pass `value` to a task without Prefect walking it (thousands of lines at national
    scale) in search of futures: the figures are plain data."""
    return cast(T, quote(value))


def scheduled_day() -> date:
    """The Paris date this run was scheduled for (its start date when run by hand)."""
    from prefect.runtime import flow_run

    scheduled: datetime | None = flow_run.scheduled_start_time
    return (scheduled or clock.now()).astimezone(PARIS).date()
