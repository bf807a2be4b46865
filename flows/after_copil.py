"""After each COPIL (flow « suites-copil »), meant for every day at 08:15 Paris: the record of
decisions the day after each COPIL, and the reminder of its minutes to the coordinator 3 and
7 days after while they are not recorded (see flows/usecases/after_copil.py). Two tasks:
enqueue what is due, deliver the outbox in one round.
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
from flows.usecases.after_copil import AfterCopil, AfterCopilSettings, enqueue_after_copil
from flows.usecases.bus import unit_of_work
from models import clock
from notifications.fr import format_date, plural
from notifications.outbox import DeliverySettings

SCHEDULE = {"cron": "15 8 * * *", "timezone": "Europe/Paris"}


@task(name="Mettre en file les suites des COPIL", cache_policy=NO_CACHE, persist_result=False)
def enqueue_due(day: date, settings: AfterCopilSettings, correlation_id: str | None) -> AfterCopil:
    with unit_of_work(database()) as uow:
        done = enqueue_after_copil(uow, day, settings, correlation_id=correlation_id)
        uow.commit()
    return done


@flow(
    name="suites-copil",
    description="Relevé de décisions aux membres et aux pilotes le lendemain de chaque COPIL ;"
    " rappel du compte rendu au chargé de mission 3 et 7 jours après, tant qu'il n'est pas"
    " enregistré.",
    log_prints=True,
)
def after_copil(
    as_of: Annotated[
        OptionalDate,
        parameter("Jour de référence", "Jour (heure de Paris) de l'envoi. Vide : aujourd'hui."),
    ] = None,
    settings: Annotated[
        AfterCopilSettings,
        parameter("Suites du COPIL", "Réglages : jours d'envoi, rattrapage, territoires."),
    ] = AfterCopilSettings(),  # noqa: B008  (frozen model)
    delivery: Annotated[
        DeliverySettings,
        parameter("Envoi", "Réglages de l'envoi : tentatives, délais entre deux essais."),
    ] = DeliverySettings(),  # noqa: B008  (frozen model)
) -> dict[str, Any]:
    """What is due on `as_of` (default: today, Paris), then one delivery round."""
    run_id = current_run_id()
    day = as_of or clock.today_paris()
    done = enqueue_due(day, settings, run_id)
    report = delivery_round(delivery, run_id)
    lines = [f"- relevé de décisions du {c}" for c in done.records] + [
        f"- rappel du compte rendu du {c}" for c in done.reminders
    ]
    print(
        f"Suites des COPIL du {format_date(day)} :"
        f" {plural(len(done.records), 'relevé de décisions', 'relevés de décisions')},"
        f" {plural(len(done.reminders), 'rappel du compte rendu', 'rappels du compte rendu')},"
        f" {plural(done.enqueued, 'message mis', 'messages mis')} en file ; {report.summary()}"
    )
    publish_summary(
        key="suites-copil",
        markdown=f"# Suites des COPIL du {format_date(day)}\n\n"
        + ("\n".join(lines) or "Rien à envoyer ce jour.")
        + "\n\n"
        + delivery_markdown(report),
        description="Suites des COPIL : relevés de décisions et rappels du compte rendu",
    )
    return {
        "as_of": day.isoformat(),
        "records": done.records,
        "reminders": done.reminders,
        "enqueued": done.enqueued,
        "sent": report.sent,
        "retry": report.retry,
        "failed": report.failed,
        "dropped": report.dropped,
    }


if __name__ == "__main__":
    after_copil()
