"""Carrying an action out: progress reports, then start, completion or abandonment.

tiflow avancement FA-07 --jalon "Ouverture de la plateforme" --note "Plateforme ouverte."
tiflow demarrer FA-07
"""

from __future__ import annotations

from typing import Annotated

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows._shared import committed, refusals_logged, run_name
from flows.forms import AbandonForm, ProgressForm, StepForm, parameter
from flows.usecases import progress as service
from flows.usecases.progress import IndicatorValue, MilestoneDone, ProgressResult, StepResult
from flows.usecases.service import short_date
from models.lifecycle import State
from models.uow import UnitOfWork


@task(name="Enregistrer l'avancement", cache_policy=NO_CACHE)
def record_progress(form: ProgressForm) -> ProgressResult:
    return committed(
        lambda uow, run_id: service.report_progress(
            uow,
            form.territory,
            form.number,
            milestones_done=[MilestoneDone(m.title, m.done_on) for m in form.milestones_done],
            indicator_values=[
                IndicatorValue(i.name, i.value, i.measured_on) for i in form.indicator_values
            ],
            note=form.note,
            author_email=form.author_email,
            on=form.on,
            recorded_by=form.recorded_by,
            correlation_id=run_id,
            at=form.at,
        )
    )


@flow(
    name="Suivre l'avancement d'une action",
    description="Enregistre un point d'avancement : jalons franchis, valeurs des indicateurs,"
    " note de suivi. L'état de l'action ne change pas.",
    flow_run_name=run_name("avancement", "progress", "number"),
)
def report_progress(
    progress: Annotated[
        ProgressForm,
        parameter("Point d'avancement", "Jalons, indicateurs et note de suivi."),
    ],
) -> ProgressResult:
    logger = get_run_logger()
    with refusals_logged("Avancement refusé"):
        result = record_progress(progress)
    for title in result.milestones_done:
        logger.info("%s : jalon « %s » franchi.", result.number, title)
    for indicator in result.indicators:
        if indicator.actual is not None:
            logger.info(
                "%s : %s = %s %s (cible %s).",
                result.number,
                indicator.name,
                indicator.actual,
                indicator.unit,
                indicator.target,
            )
    if result.note_written:
        logger.info("%s : note de suivi enregistrée.", result.number)
    for milestone in result.open_milestones:
        logger.info(
            "%s : jalon restant « %s » (échéance %s).",
            result.number,
            milestone.title,
            short_date(milestone.due_date),
        )
    return result


@task(name="Changer l'état de l'action", cache_policy=NO_CACHE)
def move(target: State, form: StepForm | AbandonForm) -> StepResult:
    steps = {
        State.IN_PROGRESS: service.start_action,
        State.COMPLETED: service.complete_action,
    }

    def work(uow: UnitOfWork, run_id: str | None) -> StepResult:
        if target is State.ABANDONED:
            return service.abandon_action(
                uow,
                form.territory,
                form.number,
                reason=form.reason,
                recorded_by=form.recorded_by,
                correlation_id=run_id,
                at=form.at,
            )
        return steps[target](
            uow,
            form.territory,
            form.number,
            reason=form.reason,
            recorded_by=form.recorded_by,
            correlation_id=run_id,
            at=form.at,
        )

    return committed(work)


def _step(target: State, form: StepForm | AbandonForm, refusal: str) -> StepResult:
    logger = get_run_logger()
    with refusals_logged(refusal):
        result = move(target, form)
    logger.info(
        "%s « %s » : %s → %s.",
        result.number,
        result.title,
        result.from_state.label,
        result.to_state.label,
    )
    if target is State.COMPLETED and result.open_milestones:
        logger.warning(
            "%s terminée avec des jalons jamais marqués franchis : %s.",
            result.number,
            "; ".join(f"« {m.title} »" for m in result.open_milestones),
        )
    return result


@flow(
    name="Démarrer une action",
    description="Passe une action financée à « en cours ».",
    flow_run_name=run_name("demarrer", "action", "number"),
)
def start_action(
    action: Annotated[StepForm, parameter("Action à démarrer", "L'action financée qui commence.")],
) -> StepResult:
    return _step(State.IN_PROGRESS, action, "Démarrage refusé")


@flow(
    name="Terminer une action",
    description="Passe une action en cours à « terminée » (les jalons non franchis sont signalés).",
    flow_run_name=run_name("terminer", "action", "number"),
)
def complete_action(
    action: Annotated[StepForm, parameter("Action à terminer", "L'action en cours qui s'achève.")],
) -> StepResult:
    return _step(State.COMPLETED, action, "Clôture refusée")


@flow(
    name="Abandonner une action",
    description="Passe une action ouverte à « abandonnée » ; le motif est obligatoire.",
    flow_run_name=run_name("abandonner", "action", "number"),
)
def abandon_action(
    action: Annotated[
        AbandonForm, parameter("Action à abandonner", "L'action à abandonner et pourquoi.")
    ],
) -> StepResult:
    return _step(State.ABANDONED, action, "Abandon refusé")
