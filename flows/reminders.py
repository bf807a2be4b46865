"""Daily deadline reminders (flow « rappels-echeances »), meant for 08:00 Europe/Paris.

Three coarse tasks, whatever the size of the plan: compute (one batch of queries), enqueue
(one transaction of bulk inserts into the outbox), deliver (one round, one SMTP connection).
Re-running it for the same day sends nothing new; ``as_of`` re-runs a missed day.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows._shared import publish_summary
from flows.forms import OptionalDate, parameter
from flows.outbox import delivery_markdown, delivery_round
from flows.runtime import current_run_id, database
from flows.usecases.reminders import (
    EnqueueSummary,
    ReminderSettings,
    enqueued_fr,
    plan_and_enqueue,
)
from models.deadlines import paris_date
from notifications.fr import format_date
from notifications.outbox import DeliverySettings, utcnow

# For deployments (issue 7): every day at 08:00, Paris time, whatever the season.
SCHEDULE = {"cron": "0 8 * * *", "timezone": "Europe/Paris"}


@task(
    name="Calculer les rappels et les mettre en file", cache_policy=NO_CACHE, persist_result=False
)
def plan_reminders(
    as_of: date, reminders: ReminderSettings, correlation_id: str | None
) -> EnqueueSummary:
    """One task, one transaction: planning and enqueuing under the sweep lock (issue 20)."""
    _, summary = plan_and_enqueue(database(), as_of, reminders, correlation_id=correlation_id)
    return summary


@flow(
    name="rappels-echeances",
    description="Rappels d'échéances aux pilotes (et alertes au chargé de mission), un e-mail"
    " par personne.",
    log_prints=True,
)
def deadline_reminders(
    as_of: Annotated[
        OptionalDate,
        parameter(
            "Jour de référence",
            "Jour (heure de Paris) dont on envoie les rappels. Vide : aujourd'hui. Pour"
            " rattraper un jour où le flux n'a pas tourné, indiquez ce jour-là.",
        ),
    ] = None,
    reminders: Annotated[
        ReminderSettings,
        parameter("Rappels", "Réglages des rappels : délais, relances, territoires."),
    ] = ReminderSettings(),  # noqa: B008  (frozen model)
    delivery: Annotated[
        DeliverySettings,
        parameter("Envoi", "Réglages de l'envoi : tentatives, délais entre deux essais."),
    ] = DeliverySettings(),  # noqa: B008  (frozen model)
) -> dict[str, Any]:
    """Reminders of the day `as_of` (default: today, Paris), then one delivery round."""
    run_id = current_run_id()
    day = as_of or paris_date(utcnow())
    summary = plan_reminders(day, reminders, run_id)
    report = delivery_round(delivery, run_id)
    print(f"Rappels du {format_date(day)} : {enqueued_fr(summary)} ; {report.summary()}")
    publish_summary(
        key="rappels-echeances",
        markdown=f"# Rappels d'échéances du {format_date(day)}\n\n"
        f"{enqueued_fr(summary)}.\n\n" + delivery_markdown(report),
        description="Rappels d'échéances : mise en file et envoi",
    )
    return {
        "as_of": day.isoformat(),
        "enqueued": summary.messages,
        "items": summary.items,
        "superseded": summary.superseded,
        "already_queued": summary.already_queued,
        "recreated": summary.recreated,
        "invalid": summary.invalid,
        "sent": report.sent,
        "retry": report.retry,
        "failed": report.failed,
        "dropped": report.dropped,
        "in_doubt": report.in_doubt,
        "resumed": report.resumed,
        "delivery_seconds": round(report.elapsed, 3),
    }


if __name__ == "__main__":
    deadline_reminders()
