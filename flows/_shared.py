"""The steps every lifecycle flow shares: run a service in one unit of work and commit (its
notices and Prefect events are written with it, by the bus), then send what it left in the
outboxes; log refusals in French, name artifacts."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import TypeVar

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.runtime import current_run_id, database, settings
from flows.usecases.bus import send_consequences, unit_of_work
from models.errors import TiflowError
from models.events import DomainEvent
from models.uow import UnitOfWork

T = TypeVar("T")


def committed(work: Callable[[UnitOfWork, str | None], T]) -> tuple[T, list[DomainEvent]]:
    """Run `work(uow, run_id)` in one unit of work on the application database and commit.

    Returns its result and the domain events it recorded; on any error nothing is written."""
    run_id = current_run_id()
    with unit_of_work(database()) as uow:
        result = work(uow, run_id)
        uow.commit()
    return result, list(uow.events)


@task(name="Envoyer les suites de la décision", cache_policy=NO_CACHE, persist_result=False)
def publish_events(events: list[DomainEvent]) -> list[str]:
    """After commit: publish the Prefect events waiting in the event outbox (these and any an
    earlier run could not send), and deliver the notices the decisions called for. Returns
    the names of this run's events."""
    logger = get_run_logger()
    sent = send_consequences(database(), events, settings(), current_run_id())
    logger.info("%s.", sent.events.summary())
    if sent.notices is not None:
        logger.info("Avis : %s", sent.notices.summary())
    return [event.name for event in events]


@contextmanager
def refusals_logged(what: str) -> Iterator[None]:
    """Log a TiflowError's French message plainly before the run fails with it."""
    try:
        yield
    except TiflowError as error:
        get_run_logger().error("%s — rien n'a été enregistré.\n%s", what, error)
        raise


def artifact_key(*parts: object) -> str:
    """Prefect artifact keys: lowercase letters, digits and dashes only."""
    text = "-".join(str(p) for p in parts)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9]+", "-", text)).strip("-")


def run_name(prefix: str, parameter: str, *fields: str) -> Callable[[], str]:
    """A `flow_run_name` callable: ``tenir-copil-3``, ``financement-fa-07-region``…

    Reads the run's parameters (models when called from Python, dicts from a deployment)."""

    def name() -> str:
        from prefect.runtime import flow_run

        value = flow_run.parameters.get(parameter)
        parts: list[object] = [prefix]
        for field in fields:
            got = value.get(field) if isinstance(value, dict) else getattr(value, field, None)
            if isinstance(got, date):
                got = got.isoformat()[:10]
            if got not in (None, ""):
                parts.append(str(got)[:40])
        return artifact_key(*parts)

    return name
