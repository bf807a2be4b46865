"""Flows started by tiflow's own events (see the triggers in prefect.yaml).

- `tiflow.action.validated` → « Suite à la validation » : the pilot and the funders learn what
  comes next;
- `tiflow.action.funded` → « Avis de lancement » : the pilot and the coordination get the kick-off;
- `tiflow.copil.scheduled` → « Programmer les synthèses d'un COPIL » : the digest runs at J-10
  and J-3 appear as scheduled runs of the digest deployment.

Each notice is keyed by the transition it announces: a trigger fired twice sends nothing new.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Annotated

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import FlowRun

from flows.forms import parameter
from flows.outbox import delivery_round
from flows.runtime import current_run_id, database
from flows.usecases.notices import kickoff_notice, next_steps_notice
from models.deadlines import PARIS, paris_date
from models.uow import UnitOfWork
from notifications.outbox import DeliverySettings, NewMessage, enqueue, utcnow

DIGEST_DEPLOYMENT = "synthese-copil/syntheses-copil"
DIGEST_HOUR = time(7, 30)
Builder = Callable[[UnitOfWork, str, str], list[NewMessage]]


@task(name="mettre-l-avis-en-file", cache_policy=NO_CACHE, persist_result=False)
def enqueue_notice(
    build: Builder,
    territory: str,
    number: str,
    correlation_id: str | None,
) -> int:
    with UnitOfWork(database()) as uow:
        result = enqueue(uow, build(uow, territory, number), correlation_id=correlation_id)
        uow.commit()
    return len(result.created)


def _announce(build: Builder, territory: str, number: str) -> dict[str, int]:
    run_id = current_run_id()
    created = enqueue_notice(build, territory, number, run_id)
    report = delivery_round(DeliverySettings(), run_id)
    print(f"{number} ({territory}) : {created} message(s) mis en file ; {report.summary()}")
    return {"queued": created, "sent": report.sent}


Territory = Annotated[str, parameter("Territoire", "Code du territoire, ex. grand-est-touraine.")]
Number = Annotated[str, parameter("N° de l'action", "Numéro de la fiche action, ex. FA-07.")]


@flow(
    name="Suite à la validation",
    description="Prévient le pilote et les financeurs d'une action validée en COPIL de la suite"
    " à donner.",
    log_prints=True,
)
def announce_next_steps(territory: Territory, number: Number) -> dict[str, int]:
    """The next-steps notice of a validated action (started by its event)."""
    return _announce(next_steps_notice, territory, number)


@flow(
    name="Avis de lancement",
    description="Envoie l'avis de lancement d'une action financée à son pilote et à la"
    " coordination.",
    log_prints=True,
)
def announce_kickoff(territory: Territory, number: Number) -> dict[str, int]:
    """The kick-off notice of a funded action (started by its event)."""
    return _announce(kickoff_notice, territory, number)


def digest_days(held_on: date, offsets: list[int]) -> list[date]:
    """The calendar days (Paris) the digest of a COPIL held on `held_on` is due."""
    return sorted({held_on - timedelta(days=offset) for offset in offsets})


@flow(
    name="Programmer les synthèses d'un COPIL",
    description="Programme les envois de la synthèse d'un COPIL (J-10 et J-3 par défaut) à"
    " 7 h 30. Les jours déjà passés sont laissés au rattrapage du flux quotidien. Rejouer ce"
    " flux ne programme rien deux fois (clé d'idempotence par COPIL et par jour).",
    log_prints=True,
)
def plan_copil_digests(
    copil_id: Annotated[
        int, parameter("N° du COPIL", "Numéro de la réunion, donné lors de sa planification.")
    ],
    offsets_days: Annotated[
        list[int],
        parameter(
            "Envois avant le COPIL (jours)", "Jours d'envoi avant la réunion (vide : 10 et 3)."
        ),
    ] = [],  # noqa: B006  (never mutated)
) -> list[str]:
    """One scheduled run of the digest deployment per digest day still to come."""
    from prefect.deployments import run_deployment

    with UnitOfWork(database()) as uow:
        held_on = paris_date(uow.repo.copil(copil_id).held_at)
    today = paris_date(utcnow())
    planned = []
    for day in digest_days(held_on, offsets_days or [10, 3]):
        if day < today:
            print(f"Synthèse du {day.isoformat()} : jour passé, laissée au rattrapage quotidien")
            continue
        run: FlowRun = run_deployment(  # type: ignore[assignment]
            DIGEST_DEPLOYMENT,
            parameters={"as_of": day.isoformat()},
            scheduled_time=datetime.combine(day, DIGEST_HOUR, PARIS),
            idempotency_key=f"synthese-copil-{copil_id}-{day.isoformat()}",
            timeout=0,
            as_subflow=False,
        )
        planned.append(str(run.id))
        print(f"Synthèse programmée le {day.isoformat()} à 7 h 30 (run {run.id})")
    return planned
