"""Recording funding: requested, granted and paid amounts of one funder for one action.

When the granted amounts cover the budget, a validated action becomes funded; otherwise the
run says what is still missing.

    tiflow financer FA-07 --financeur Région --accorde "20 000" --dossier-avant 15/02/2025
"""

from __future__ import annotations

from typing import Annotated

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows._shared import artifact_key, committed, publish_summary, refusals_logged, run_name
from flows.forms import FundingForm, parameter
from flows.usecases import funding as service
from flows.usecases.funding import FundingResult
from models.money import format_eur


@task(name="Enregistrer le financement", cache_policy=NO_CACHE)
def record(form: FundingForm) -> FundingResult:
    return committed(
        lambda uow, run_id: service.record_funding(
            uow,
            form.territory,
            form.number,
            funder=form.funder,
            year=form.year,
            requested=form.requested,
            granted=form.granted,
            paid=form.paid,
            decision_date=form.decision_date,
            dossier_filed_on=form.dossier_filed_on,
            convention_ref=form.convention_ref,
            force_reason=form.force_reason,
            recorded_by=form.recorded_by,
            correlation_id=run_id,
            at=form.at,
        )
    )


def summary_markdown(result: FundingResult) -> str:
    lines = [
        f"# Financement de {result.number} — {result.title}",
        "",
        f"{result.funder} {result.year} : demandé {format_eur(result.requested)},"
        f" accordé {format_eur(result.granted)}, versé {format_eur(result.paid)}.",
        "",
        f"Budget de l'action : {format_eur(result.budget_total)} ; accordé au total :"
        f" {format_eur(result.granted_total)} ; reste à financer : {format_eur(result.missing)}.",
        "",
        f"État de l'action : **{result.state.label}**.",
    ]
    if result.pending:
        lines += ["", "Demandes en attente :"]
        lines += [f"- {p.funder} {p.year} : {format_eur(p.still_expected)}" for p in result.pending]
    return "\n".join(lines) + "\n"


@flow(
    name="Enregistrer un financement",
    description="Enregistre la part d'un financeur pour une action et une année (montants"
    " demandé, accordé, versé, date de décision, convention). Si les montants accordés couvrent"
    " le budget, l'action validée passe à « financée » ; sinon le flux indique ce qui manque.",
    flow_run_name=run_name("financement", "funding", "number", "funder"),
)
def record_funding(
    funding: Annotated[
        FundingForm,
        parameter("Financement", "La part d'un financeur pour une action et une année."),
    ],
) -> FundingResult:
    logger = get_run_logger()
    with refusals_logged("Financement refusé"):
        result = record(funding)
    logger.info(result.summary())
    publish_summary(
        summary_markdown(result),
        key=artifact_key("financement", result.number, result.funder, result.year),
        description=f"Financement de {result.number} par {result.funder}",
    )
    return result
