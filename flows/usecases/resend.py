"""« Renvoyer » a message from the coordinator's sent-mail page, through the outbox, once.

A failed message goes back in the queue with `notifications.outbox.requeue_once` (same key,
so the same Message-ID; once only, as `tiflow envois --relancer`); a pending one waiting for
its back-off is made due now, also once. A second click, or the same button in another tab,
finds the message already put back by hand and changes nothing (``already``): the next
delivery round sends it once.

    with unit_of_work(engine) as uow:
        done = resend_message(uow, territory_id, message_id)
        uow.commit()
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from models import clock
from models.errors import NotFound, TiflowError
from models.outbox import OutboxMessage, OutboxStatus
from models.uow import UnitOfWork
from notifications.fr import format_datetime
from notifications.outbox import requeue_once

M = OutboxMessage.__table__.c  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Resent:
    message_id: int
    recipient: str
    already: bool  # an earlier click (another tab) had already put it back


def resend_message(
    uow: UnitOfWork, territory_id: int, message_id: int, *, now: datetime | None = None
) -> Resent:
    """Put one message of the territory back in the queue (see the module docstring)."""
    now = now or clock.now()
    row = uow.session.execute(
        sa.select(M).where(M.id == message_id, M.territory_id == territory_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"Aucun message n° {message_id} dans les envois de ce territoire.")
    who = row.recipient or row.tag
    status = OutboxStatus(row.status)
    if row.requeued_at is not None and status is not OutboxStatus.FAILED:
        return Resent(message_id, who, already=True)
    if status is OutboxStatus.FAILED:
        requeue_once(uow, message_id, now=now)
        return Resent(message_id, who, already=False)
    if status is OutboxStatus.PENDING:
        moved = uow.session.execute(
            sa.update(OutboxMessage)
            .where(
                M.id == message_id,
                M.status == OutboxStatus.PENDING.value,
                M.requeued_at.is_(None),
            )
            .values(next_attempt_at=now, requeued_at=now)
        )
        return Resent(message_id, who, already=moved.rowcount != 1)  # type: ignore[attr-defined]
    when = f" le {format_datetime(row.sent_at)}" if row.sent_at is not None else ""
    raise TiflowError(
        f"Le message n° {message_id} à {who} est « {status.label} »{when} : seul un message en"
        " échec ou en attente peut être renvoyé."
    )
