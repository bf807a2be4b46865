"""COPIL flows: plan a meeting with its agenda, then record its decisions.

Two ways to record decisions, same rules (all decisions applied together, or none):

* "Tenir un COPIL": the decisions are the run's parameters (Prefect form, CLI, a JSON file);
* "Tenir un COPIL (saisie dans Prefect)": the run shows the agenda, pauses, and waits for the
  coordinator to type the decisions in the paused run's "Resume" form.

    tiflow run copil 3 --decisions decisions.csv
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from prefect import flow, get_run_logger, pause_flow_run, task
from prefect.cache_policies import NO_CACHE

from flows._shared import artifact_key, committed, publish_summary, refusals_logged, run_name
from flows.forms import (
    CopilDecisionsForm,
    CopilDecisionsInput,
    CopilScheduleForm,
    DecisionForm,
    InteractiveCopilForm,
    Outcome,
    parameter,
)
from flows.runtime import database
from flows.usecases import copil as service
from flows.usecases.bus import unit_of_work
from flows.usecases.copil import CopilInfo, CopilOutcome, DecisionInput
from flows.usecases.service import short_date, short_datetime
from models.money import format_eur
from notifications.fr import plural


@task(name="Planifier la réunion et son ordre du jour", cache_policy=NO_CACHE)
def plan_meeting(form: CopilScheduleForm) -> CopilInfo:
    return committed(
        lambda uow, run_id: service.schedule_copil(
            uow,
            form.territory,
            held_at=form.held_at,
            place=form.place,
            member_emails=form.members,
            recorded_by=form.recorded_by,
            correlation_id=run_id,
        )
    )


@flow(
    name="Planifier un COPIL",
    description="Planifie une réunion du COPIL (date, lieu, membres) et construit son ordre du"
    " jour avec les actions en attente de décision (proposées ou ajournées).",
    flow_run_name=run_name("planifier-copil", "meeting", "territory", "held_at"),
)
def schedule_copil(
    meeting: Annotated[
        CopilScheduleForm,
        parameter("Réunion", "Date, lieu et membres du COPIL à planifier."),
    ],
) -> CopilInfo:
    logger = get_run_logger()
    with refusals_logged("COPIL non planifié"):
        info = plan_meeting(meeting)
    logger.info(
        "%s planifié (n° %s) le %s%s : %s à l'ordre du jour, %s.",
        info.label,
        info.copil_id,
        short_datetime(info.held_at),
        f", {info.place}" if info.place else "",
        plural(len(info.agenda), "point", "points"),
        plural(len(info.members), "membre", "membres"),
    )
    for item in info.agenda:
        logger.info("  %s — %s (%s)", item.number, item.title, item.state.label)
    publish_summary(
        service.agenda_markdown(info),
        key=artifact_key("copil", info.territory_code, info.copil_id, "ordre-du-jour"),
        description=f"Ordre du jour du {info.label}",
    )
    return info


@task(name="Enregistrer les décisions du COPIL", cache_policy=NO_CACHE)
def record_decisions(
    copil_id: int,
    decisions: list[DecisionForm],
    budget_year: int | None,
    validated_budget: Decimal | None,
    recorded_by: str,
    at: datetime | None,
) -> CopilOutcome:
    inputs = [
        DecisionInput(d.number, Outcome(d.outcome).state, d.conditions, d.comment)
        for d in decisions
    ]
    return committed(
        lambda uow, run_id: service.hold_copil(
            uow,
            copil_id,
            inputs,
            budget_year=budget_year,
            validated_budget=validated_budget,
            recorded_by=recorded_by,
            correlation_id=run_id,
            at=at,
        )
    )


def _apply(
    copil_id: int,
    decisions: list[DecisionForm],
    budget_year: int | None,
    validated_budget: Decimal | None,
    recorded_by: str,
    at: datetime | None = None,
) -> CopilOutcome:
    logger = get_run_logger()
    with refusals_logged(f"Décisions du COPIL n° {copil_id} refusées"):
        outcome = record_decisions(
            copil_id, decisions, budget_year, validated_budget, recorded_by, at
        )
    for d in outcome.decisions:
        logger.info(
            "%s « %s » : %s → %s%s",
            d.number,
            d.title,
            d.from_state.label,
            d.outcome.label,
            f" (conditions : {d.conditions})" if d.conditions else "",
        )
    for item in outcome.undecided:
        logger.info("%s reste en attente d'une décision (%s).", item.number, item.state.label)
    if outcome.validated_budget is not None:
        logger.info(
            "Budget %s validé : %s.", outcome.budget_year, format_eur(outcome.validated_budget)
        )
    copil = outcome.copil
    publish_summary(
        service.decisions_markdown(outcome),
        key=artifact_key(
            "copil", copil.territory_code, copil.held_at.strftime("%Y-%m-%d"), "decisions"
        ),
        description=f"Décisions du {copil.label}",
    )
    return outcome


@flow(
    name="Tenir un COPIL",
    description="Enregistre toutes les décisions d'un COPIL (validée, rejetée, ajournée,"
    " révision demandée, avec conditions et commentaires) et le budget annuel qu'il valide :"
    " toutes ensemble, ou aucune si l'une d'elles est impossible.",
    flow_run_name=run_name("tenir-copil", "decisions", "copil_id"),
)
def hold_copil(
    decisions: Annotated[
        CopilDecisionsForm,
        parameter("Réunion et décisions", "La réunion, ses décisions et le budget validé."),
    ],
) -> CopilOutcome:
    return _apply(
        decisions.copil_id,
        decisions.decisions,
        decisions.budget_year,
        decisions.validated_budget,
        decisions.recorded_by,
        decisions.at,
    )


@task(name="Lire l'ordre du jour", cache_policy=NO_CACHE)
def read_agenda(copil_id: int) -> CopilInfo:
    with unit_of_work(database()) as uow:
        return service.copil_awaiting_decisions(uow, copil_id)


def _pause_description(info: CopilInfo) -> str:
    return (
        service.agenda_markdown(info)
        + "\nPour chaque action, choisissez la décision du COPIL (« non examinée » la laisse"
        " en attente du prochain COPIL), ajoutez conditions et commentaires, puis le budget"
        " annuel validé s'il y en a un. Tout est enregistré ensemble quand vous validez ;"
        " une seule décision impossible et rien n'est enregistré (le flux échoue et dit"
        " laquelle)."
    )


@flow(
    name="Tenir un COPIL (saisie dans Prefect)",
    description="Affiche l'ordre du jour d'un COPIL planifié puis attend que vous saisissiez"
    " ses décisions dans Prefect (bouton « Resume » du flux en pause) ; les décisions sont"
    " enregistrées toutes ensemble à la validation du formulaire.",
    flow_run_name=run_name("saisir-copil", "meeting", "copil_id"),
)
def hold_copil_interactively(
    meeting: Annotated[
        InteractiveCopilForm,
        parameter("Réunion", "Le COPIL dont vous saisirez les décisions."),
    ],
) -> CopilOutcome:
    logger = get_run_logger()
    with refusals_logged(f"COPIL n° {meeting.copil_id}"):
        info = read_agenda(meeting.copil_id)
    logger.info(
        "%s (%s) : %s à l'ordre du jour. En attente de la saisie des décisions"
        " (bouton « Resume » de ce flux) pendant %s h au plus.",
        info.label,
        short_date(info.held_at),
        plural(len(info.agenda), "point", "points"),
        meeting.wait_hours,
    )
    form = CopilDecisionsInput.prefilled(
        _pause_description(info),
        [DecisionForm(number=i.number, outcome=Outcome.NOT_EXAMINED) for i in info.agenda],
    )
    answer = pause_flow_run(
        wait_for_input=form,
        timeout=meeting.wait_hours * 3600,
        poll_interval=meeting.poll_seconds,
    )
    logger.info(
        "Décisions reçues (%s) : enregistrement.", plural(len(answer.decisions), "ligne", "lignes")
    )
    return _apply(
        meeting.copil_id,
        answer.decisions,
        answer.budget_year,
        answer.validated_budget,
        answer.recorded_by,
    )
