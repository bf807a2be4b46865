"""Proposing an action to the COPIL: a new sheet, or a draft / revised one submitted again.

tiflow proposer FA-07
"""

from __future__ import annotations

from typing import Annotated

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows._shared import committed, refusals_logged, run_name
from flows.forms import ProposalForm, parameter
from flows.usecases import proposals as service
from flows.usecases.proposals import (
    BudgetLineInput,
    IndicatorInput,
    MilestoneInput,
    ProposalResult,
    SheetDetails,
)
from flows.usecases.service import short_datetime
from models.money import format_eur


def details_from(form: ProposalForm) -> SheetDetails:
    return SheetDetails(
        title=form.title,
        description=form.description,
        axis=form.axis,
        pilot_email=form.pilot_email,
        firm_commitment=form.firm_commitment,
        priority=form.priority,
        start_date=form.start_date,
        end_date=form.end_date,
        budget=[BudgetLineInput(b.year, b.kind, b.amount) for b in form.budget],
        milestones=[MilestoneInput(m.title, m.due_date) for m in form.milestones],
        indicators=[IndicatorInput(i.name, i.target, i.unit) for i in form.indicators],
        partners=form.partners,
    )


@task(name="Enregistrer la proposition", cache_policy=NO_CACHE)
def record_proposal(form: ProposalForm) -> ProposalResult:
    return committed(
        lambda uow, run_id: service.propose(
            uow,
            form.territory,
            form.number,
            details_from(form),
            recorded_by=form.recorded_by,
            correlation_id=run_id,
            at=form.at,
        )
    )


@flow(
    name="Proposer une action au COPIL",
    description="Crée une fiche action (ou reprend une fiche en brouillon ou à réviser) et la"
    " propose au COPIL : elle passe à « proposée » et s'ajoute à l'ordre du jour du prochain"
    " COPIL planifié.",
    flow_run_name=run_name("proposer", "proposal", "number"),
)
def propose_action(
    proposal: Annotated[
        ProposalForm,
        parameter("Proposition", "La fiche action à proposer au COPIL."),
    ],
) -> ProposalResult:
    logger = get_run_logger()
    with refusals_logged("Proposition refusée"):
        result = record_proposal(proposal)
    logger.info(
        "%s « %s » %s : %s → proposée (budget %s).",
        result.number,
        result.title,
        "créée" if result.created else "reprise",
        result.from_state.label,
        format_eur(result.budget_total),
    )
    if result.next_copil_at is not None:
        logger.info(
            "Inscrite à l'ordre du jour du COPIL n° %s du %s.",
            result.next_copil_id,
            short_datetime(result.next_copil_at),
        )
    else:
        logger.info("Aucun COPIL planifié : elle sera à l'ordre du jour du prochain.")
    return result
