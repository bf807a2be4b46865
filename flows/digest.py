"""Digest before each COPIL (flow « synthese-copil »), meant for every day at 07:30 Paris.

It sends nothing on most days: only when a scheduled COPIL is 10 or 3 days away (by default).
Three coarse tasks: compute the digests due, enqueue one message per member (with the .ics
invitation and the agenda CSV), deliver the outbox in one round.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from flows._shared import publish_summary
from flows.forms import OptionalDate, parameter
from flows.outbox import delivery_markdown, delivery_round
from flows.runtime import current_run_id, database
from flows.usecases.bus import unit_of_work
from flows.usecases.digest import Digest, DigestSettings, compute_digests, enqueue_digests
from models.deadlines import paris_date
from notifications.fr import format_date, format_datetime, plural
from notifications.outbox import DeliverySettings, EnqueueResult, utcnow

SCHEDULE = {"cron": "30 7 * * *", "timezone": "Europe/Paris"}


def unchanged_line(digest: Digest) -> str:
    """The log's line for a digest not sent because nothing changed since the earlier one."""
    assert digest.earlier is not None
    return (
        f"- {digest.territory.name} : COPIL du {format_datetime(digest.copil.held_at)} :"
        f" synthèse {digest.label} non envoyée, rien n'a changé depuis la synthèse"
        f" {digest.earlier[0]} du {format_date(digest.earlier[1])}"
    )


@task(name="Préparer les synthèses", cache_policy=NO_CACHE, persist_result=False)
def compute(as_of: date, digest: DigestSettings) -> list[Digest]:
    with unit_of_work(database()) as uow:
        return compute_digests(uow.session, as_of, digest)


@task(name="Mettre les synthèses en file", cache_policy=NO_CACHE, persist_result=False)
def enqueue_all(
    digests: list[Digest], digest: DigestSettings, correlation_id: str | None
) -> EnqueueResult:
    with unit_of_work(database()) as uow:
        result = enqueue_digests(uow, digests, digest, correlation_id=correlation_id)
        uow.commit()
    return result


@flow(
    name="synthese-copil",
    description="Synthèse envoyée aux membres du COPIL avant chaque réunion (J-10 et J-3 par"
    " défaut).",
    log_prints=True,
)
def copil_digest(
    as_of: Annotated[
        OptionalDate,
        parameter("Jour de référence", "Jour (heure de Paris) de l'envoi. Vide : aujourd'hui."),
    ] = None,
    digest: Annotated[
        DigestSettings,
        parameter("Synthèse", "Réglages : jours d'envoi, durée de la réunion, territoires."),
    ] = DigestSettings(),  # noqa: B008  (frozen model)
    delivery: Annotated[
        DeliverySettings,
        parameter("Envoi", "Réglages de l'envoi : tentatives, délais entre deux essais."),
    ] = DeliverySettings(),  # noqa: B008  (frozen model)
) -> dict[str, Any]:
    """The digests due on `as_of` (default: today, Paris), then one delivery round."""
    run_id = current_run_id()
    day = as_of or paris_date(utcnow())
    digests = compute(day, digest)
    result = enqueue_all(quote(digests), digest, run_id)  # type: ignore[call-overload]
    report = delivery_round(delivery, run_id)
    sent = [d for d in digests if not d.unchanged]
    unchanged = [d for d in digests if d.unchanged]
    lines = [
        f"- {d.territory.name} : COPIL du {format_datetime(d.copil.held_at)} ({d.label}),"
        f" {plural(len(d.members), 'destinataire', 'destinataires')},"
        f" {plural(len(d.agenda), 'action', 'actions')} à l'ordre du jour"
        for d in sent
    ] + [unchanged_line(d) for d in unchanged]
    for skipped in unchanged:
        print(unchanged_line(skipped).removeprefix("- "))
    print(
        f"Synthèses COPIL du {format_date(day)} : {plural(len(sent), 'réunion', 'réunions')},"
        f" {plural(len(result.created), 'message mis', 'messages mis')} en file ;"
        f" {report.summary()}"
    )
    publish_summary(
        key="synthese-copil",
        markdown=f"# Synthèses COPIL du {format_date(day)}\n\n"
        + ("\n".join(lines) or "Aucun COPIL à annoncer ce jour.")
        + "\n\n"
        + delivery_markdown(report),
        description="Synthèses avant COPIL : mise en file et envoi",
    )
    return {
        "as_of": day.isoformat(),
        "copils": [d.copil.id for d in sent],
        "unchanged": [d.copil.id for d in unchanged],
        "enqueued": len(result.created),
        "invalid": result.invalid,
        "sent": report.sent,
        "retry": report.retry,
        "failed": report.failed,
        "dropped": report.dropped,
    }


if __name__ == "__main__":
    copil_digest()
