"""Flows started by tiflow's own events (see the triggers in prefect.yaml).

- `tiflow.copil.scheduled` → « Programmer les synthèses d'un COPIL » : the digest runs at J-10
  and J-3 appear as scheduled runs of the digest deployment.

The notices that follow a decision (validated, revision requested, rejected, deferred, funded)
are no longer triggered flows: the message bus (flows/usecases/bus.py) enqueues them in the
decision's own transaction, whichever entrance made it.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from prefect import flow
from prefect.client.schemas.objects import FlowRun

from flows.runtime import database
from flows.usecases.bus import unit_of_work
from models.deadlines import PARIS, paris_date
from notifications.outbox import utcnow

DIGEST_DEPLOYMENT = "synthese-copil/syntheses-copil"
DIGEST_HOUR = time(7, 30)


def digest_days(held_on: date, offsets: list[int]) -> list[date]:
    """The calendar days (Paris) the digest of a COPIL held on `held_on` is due."""
    return sorted({held_on - timedelta(days=offset) for offset in offsets})


@flow(name="Programmer les synthèses d'un COPIL", log_prints=True)
def plan_copil_digests(copil_id: int, offsets_days: list[int] | None = None) -> list[str]:
    """Programme les envois de la synthèse d'un COPIL (J-10 et J-3 par défaut) à 7 h 30.

    Les jours déjà passés sont laissés au rattrapage du flux quotidien. Rejouer ce flux ne
    programme rien deux fois (clé d'idempotence par COPIL et par jour).

    Args:
        copil_id: Numéro de la réunion du COPIL.
        offsets_days: Jours d'envoi avant la réunion (vide : 10 et 3).
    """
    from prefect.deployments import run_deployment

    with unit_of_work(database()) as uow:
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
