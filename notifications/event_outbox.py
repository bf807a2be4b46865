"""The event outbox: Prefect events leave the machine after the change they announce commits.

    with unit_of_work(engine) as uow:       # the bus stores each domain event's Prefect event
        hold_copil(uow, ...)
        uow.commit()
    publish_pending(engine, send)           # after commit; `send` posts a batch to Prefect

Guarantees:

* **Only what was committed.** Rows are written in the change's transaction: a rolled-back
  decision leaves no event behind.
* **Not lost.** Prefect unreachable at commit time: the rows stay unpublished (with the error
  and the number of attempts) and the next publisher — any flow run after its commit, the
  delivery round of the outbox flow (`tiflow run envoi`, every 15 minutes when served) —
  sends them.
* **In order.** Rows are sent oldest first (the order the units of work recorded them); a
  failed batch stops the round, so nothing newer overtakes it.
* **Once.** Each row carries its Prefect event id from the start, derived from the event's
  content: the same domain event handled twice is stored once. A row is marked published
  right after the server accepted it; if the process dies in between, the row is sent again
  with the same id, and the Prefect server keeps one event per id (its storage ignores a
  known id and its triggers skip an event already seen).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from models import clock
from models.event_outbox import EventOutbox
from models.uow import UnitOfWork
from notifications.fr import plural

E = EventOutbox.__table__.c  # type: ignore[attr-defined]
Send = Callable[[list[dict[str, Any]]], None]
"""Publishes a batch of events (emit_event arguments with `id` and `occurred`) or raises."""
BATCH = 50
EVENT_NAMESPACE = uuid.UUID("5d0c1c52-7a55-4c1e-9a3e-0f1d2b3c4a5e")  # tiflow's, fixed forever
ERROR_MAX = 2000


@dataclass
class PublishReport:
    published: int = 0
    pending: int = 0  # still unpublished after this round (the server refused or was down)
    error: str | None = None

    def summary(self) -> str:
        text = plural(self.published, "événement Prefect publié", "événements Prefect publiés")
        if self.pending:
            text += f", {self.pending} en attente (serveur Prefect injoignable : {self.error})"
        return text


def event_id_of(spec: dict[str, Any]) -> str:
    """The Prefect event id, derived from what the event says: the same domain event handled
    twice (a second trigger, a replayed unit of work) is one event, stored and sent once."""
    content = json.dumps(spec, sort_keys=True, ensure_ascii=False, default=str)
    return str(uuid.uuid5(EVENT_NAMESPACE, content))


def store(
    uow: UnitOfWork, specs: Iterable[dict[str, Any]], *, correlation_id: str | None = None
) -> list[str]:
    """Write Prefect events (emit_event arguments) in the caller's transaction, ignoring those
    already stored; returns their ids."""
    now = clock.now()
    rows = []
    for spec in specs:
        event_id = event_id_of(spec)
        occurred = spec.get("occurred") or now
        full = {**spec, "id": event_id, "occurred": occurred.isoformat()}
        rows.append(
            {
                "event_id": event_id,
                "name": spec["event"],
                "resource_id": spec["resource"]["prefect.resource.id"][:200],
                "spec": json.dumps(full, ensure_ascii=False, default=str),
                "occurred": occurred,
                "created_at": now,
                "attempts": 0,
                "correlation_id": correlation_id,
            }
        )
    if rows:
        uow.session.execute(_insert_ignoring_known(uow.session.get_bind().dialect.name), rows)
    return [row["event_id"] for row in rows]


def _insert_ignoring_known(dialect: str) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(EventOutbox).on_conflict_do_nothing(index_elements=["event_id"])


def publish_pending(engine: Engine, send: Send, *, batch: int = BATCH) -> PublishReport:
    """Send every unpublished event, oldest first, in batches; stop at the first failure."""
    report = PublishReport()
    while True:
        rows = _unpublished(engine, batch)
        if not rows:
            return report
        try:
            send([json.loads(row.spec) for row in rows])
        except Exception as error:  # any failure: the rows wait for the next round
            report.error = f"{type(error).__name__}: {error}"[:ERROR_MAX]
            _record_failure(engine, [row.id for row in rows], report.error)
            report.pending = pending_count(engine)
            return report
        _mark_published(engine, [row.id for row in rows])
        report.published += len(rows)


def pending_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(EventOutbox).where(E.published_at.is_(None))
            ).scalar_one()
        )


def _unpublished(engine: Engine, limit: int) -> Sequence[Any]:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(E.id, E.spec).where(E.published_at.is_(None)).order_by(E.id).limit(limit)
        ).all()


def _mark_published(engine: Engine, ids: list[int]) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.update(EventOutbox)
            .where(E.id.in_(ids), E.published_at.is_(None))
            .values(published_at=clock.now(), attempts=E.attempts + 1, last_error=None)
        )


def _record_failure(engine: Engine, ids: list[int], error: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.update(EventOutbox)
            .where(E.id.in_(ids))
            .values(attempts=E.attempts + 1, last_error=error)
        )
