"""Private iCalendar feeds: one secret URL per person, revocable, of their deadlines,
milestones and COPILs. Each event keeps a stable UID; its SEQUENCE grows by one each time
its date (or title) changes, which ``calendar_entry`` remembers per feed."""

from __future__ import annotations

import hashlib
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models import clock
from models.types import UTCDateTime


def token_hash(token: str) -> str:
    """Only the SHA-256 of a feed's token is stored: a copy of the database opens no feed."""
    return hashlib.sha256(token.encode()).hexdigest()


def next_sequence(stored: tuple[str, int] | None, fingerprint: str) -> int:
    """The SEQUENCE of an event whose facts are ``fingerprint``, given what the feed last
    served (fingerprint, sequence): unchanged facts keep it, changed facts add one."""
    if stored is None:
        return 0
    old, sequence = stored
    return sequence if old == fingerprint else sequence + 1


class CalendarFeed(SQLModel, table=True):
    __tablename__ = "calendar_feed"
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CalendarEntry(SQLModel, table=True):
    """What a feed last served for one event: its facts and its SEQUENCE."""

    __tablename__ = "calendar_entry"
    __table_args__ = (sa.UniqueConstraint("feed_id", "uid"),)
    id: int | None = Field(default=None, primary_key=True)
    feed_id: int = Field(foreign_key="calendar_feed.id")
    uid: str = Field(max_length=200)
    fingerprint: str = Field(max_length=200)
    sequence: int = 0
