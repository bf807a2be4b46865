"""Sending what waits in the outbox (flow « envoi-messages-en-attente »).

Every flow that writes e-mails ends with :func:`delivery_round`, one coarse task that opens one
Deliverer (one SMTP connection) for the whole round, or a few side by side for a large one
(``DeliverySettings.connections``). The standalone flow retries what an earlier run could not
send (SMTP down), and publishes the Prefect events an outage of the Prefect server left in the
event outbox; it can be scheduled every 15 minutes or so.
"""

from __future__ import annotations

from typing import Annotated

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows._shared import publish_summary
from flows.events import publish_pending_events
from flows.forms import parameter
from flows.runtime import current_run_id, database, settings
from notifications.fr import plural
from notifications.outbox import (
    DeliveryReport,
    DeliverySettings,
    deliver_in_parallel,
    open_deliverer,
)


@task(name="Tournée d'envoi", cache_policy=NO_CACHE, persist_result=False)
def delivery_round(
    delivery: DeliverySettings, correlation_id: str | None, kinds: list[str] | None = None
) -> DeliveryReport:
    """Deliver every due message of the outbox (all kinds, or ``kinds``): one round. The
    round also publishes the Prefect events an outage of the server left waiting."""
    config = settings()
    report = deliver_in_parallel(
        database(),
        lambda: open_deliverer(config),
        connections=delivery.connections,
        policy=delivery.policy(),
        kinds=kinds,
        correlation_id=correlation_id,
    )
    events = publish_pending_events(database())
    if events.published or events.pending:
        print(f"Événements : {events.summary()}.")
    return report


def delivery_markdown(report: DeliveryReport, limit: int = 20) -> str:
    lines = [
        "| envoyés | à réessayer | en échec | abandonnés | incertains |",
        "| ---: | ---: | ---: | ---: | ---: |",
        f"| {report.sent} | {report.retry} | {report.failed} | {report.dropped}"
        f" | {report.in_doubt} |",
    ]
    if report.backlog is not None:
        lines += ["", f"Boîte d'envoi : {report.backlog.summary()}."]
    if report.failures:
        lines += [
            "",
            "**Échecs**",
            "",
            "| n° | type | destinataire | erreur |",
            "| --- | --- | --- | --- |",
        ]
        for failure in report.failures[:limit]:
            error = failure.error.replace("|", "/").replace("\n", " ")
            lines.append(f"| {failure.id} | {failure.kind} | {failure.recipient} | {error} |")
        if len(report.failures) > limit:
            lines.append(f"| … | | {plural(len(report.failures) - limit, 'autre', 'autres')} | |")
    return "\n".join(lines)


@flow(
    name="envoi-messages-en-attente",
    description="Envoie les messages en attente de la boîte d'envoi (nouvel essai après un échec).",
    log_prints=True,
)
def deliver_outbox(
    delivery: Annotated[
        DeliverySettings,
        parameter("Envoi", "Réglages de l'envoi : tentatives, délais entre deux essais."),
    ] = DeliverySettings(),  # noqa: B008  (frozen model)
) -> dict[str, int]:
    """One delivery round of the pending messages, with a markdown artifact.

    The run is the round: it calls the round's function, not its task (a task run would
    only repeat the flow run's state, at ~13 ms of CPU for Prefect's engine and server, in a
    flow that runs every 15 minutes)."""
    report = delivery_round.fn(delivery, current_run_id())
    print(f"Boîte d'envoi : {report.summary()}")
    publish_summary(
        key="envoi-messages-en-attente",
        markdown="# Envoi des messages en attente\n\n" + delivery_markdown(report),
        description="Résultat de la tournée d'envoi",
    )
    return {
        "sent": report.sent,
        "retry": report.retry,
        "failed": report.failed,
        "dropped": report.dropped,
        "in_doubt": report.in_doubt,
        "resumed": report.resumed,
    }


if __name__ == "__main__":
    deliver_outbox()
