"""The steps every lifecycle flow shares: run a service in one unit of work and commit (its
notices and Prefect events are written with it, by the bus), then send what it left in the
outboxes, in the same task; log refusals in French, name and publish artifacts."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.runtime import current_run_id, database, settings
from flows.usecases.bus import send_consequences, unit_of_work
from models.errors import TiflowError
from models.events import DomainEvent
from models.uow import UnitOfWork

T = TypeVar("T")


def committed(work: Callable[[UnitOfWork, str | None], T]) -> T:
    """Run `work(uow, run_id)` in one unit of work on the application database and commit
    (the bus writes the notices and Prefect events it calls for in the same transaction),
    then send them: see `send_after_commit`. On any error before commit nothing is written.

    Called inside the step's own task: the step and the sending of its consequences are one
    task run, not two (a task run costs the engine and the Prefect server ~13 ms of CPU; a
    second one per decision was a third of the demo's task runs)."""
    run_id = current_run_id()
    with unit_of_work(database()) as uow:
        result = work(uow, run_id)
        uow.commit()
    send_after_commit(list(uow.events), run_id)
    return result


def send_after_commit(events: list[DomainEvent], run_id: str | None) -> None:
    """Publish the Prefect events waiting in the event outbox (these and any an earlier run
    could not send), and deliver the notices the decisions called for. A failure to send
    leaves them in their outboxes for the next round and is logged as a warning: the step
    is recorded whatever happens here."""
    logger = get_run_logger()
    sent = send_consequences(database(), events, settings(), run_id)
    log = logger.warning if sent.events.pending else logger.info
    log("%s.", sent.events.summary())
    if sent.notices is not None:
        notices = sent.notices
        log = logger.warning if notices.retry or notices.failed else logger.info
        log("Avis : %s", notices.summary())


@contextmanager
def refusals_logged(what: str) -> Iterator[None]:
    """Log a TiflowError's French message plainly before the run fails with it."""
    try:
        yield
    except TiflowError as error:
        get_run_logger().error("%s — rien n'a été enregistré.\n%s", what, error)
        raise


@dataclass(frozen=True)
class Summary:
    """A flow's markdown artifact: what the coordinator reads in Prefect's UI."""

    key: str
    description: str
    markdown: str


_gathered: ContextVar[list[Summary] | None] = ContextVar("tiflow_gathered_summaries", default=None)


def publish_summary(markdown: str, *, key: str, description: str) -> None:
    """The flow's markdown artifact, published now; inside `summaries_gathered()`, kept for
    the run that gathers them instead."""
    gathered = _gathered.get()
    if gathered is not None:
        gathered.append(Summary(key, description, markdown))
        return
    create_markdown_artifact(markdown, key=key, description=description)


@contextmanager
def summaries_gathered() -> Iterator[list[Summary]]:
    """The summaries the flow bodies run in this block publish, gathered in the yielded list.

    For a run that plays many flows' bodies (the demo's month runs dozens): it publishes them
    as one artifact. Each artifact is a request the Prefect server writes (with an event);
    one per body was the demo's most frequent request."""
    gathered: list[Summary] = []
    token = _gathered.set(gathered)
    try:
        yield gathered
    finally:
        _gathered.reset(token)


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
