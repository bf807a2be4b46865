"""The event outbox: Prefect events waiting to be published, written in the transaction of the
change they announce (see notifications/event_outbox.py for publishing).

One row per domain event, in the order the unit of work recorded them (``id``). ``event_id``
is the Prefect event's own id, fixed when the row is written: publishing a row twice (a crash
between the server's answer and our commit) gives the server the same id, which it keeps once.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models import clock
from models.types import UTCDateTime


def _utcnow() -> datetime:
    return clock.now()


class EventOutbox(SQLModel, table=True):
    __tablename__ = "event_outbox"
    __table_args__ = (
        sa.UniqueConstraint("event_id", name="uq_event_outbox_event_id"),
        # The publisher's query: unpublished rows, oldest first.
        sa.Index("ix_event_outbox_published_id", "published_at", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=36, description="identifiant de l'événement")
    name: str = Field(max_length=200, description="tiflow.action.validated…")
    resource_id: str = Field(max_length=200)
    spec: str = Field(sa_type=sa.Text, description="l'événement Prefect (JSON)")
    occurred: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=_utcnow, sa_type=UTCDateTime)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    correlation_id: str | None = Field(default=None, max_length=64)
