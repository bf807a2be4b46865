"""Private iCalendar feeds: one secret URL per person, revocable, of their deadlines,
milestones and COPILs. Each event keeps a stable UID; its SEQUENCE grows by one each time
its date (or title) changes, which ``calendar_entry`` remembers per feed."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models import clock
from models.types import UTCDateTime


def token_hash(token: str) -> str:
    """Only the SHA-256 of a feed's token is stored: a copy of the database opens no feed."""
    return hashlib.sha256(token.encode()).hexdigest()


def next_sequence(
    stored: tuple[str, int] | None, fingerprint: str, *, published: int | None = None
) -> int:
    """The SEQUENCE of an event whose facts are ``fingerprint``, given what the feed last
    served (fingerprint, sequence): unchanged facts keep it, changed facts add one.

    ``published``: for an event that e-mails also carry (a COPIL's invitation), the
    :func:`copil_sequence` of now; new or changed facts then take it, so the feed's SEQUENCE
    and the invitations' grow on one scale and the latest facts always win in a calendar
    that has both."""
    if stored is not None and stored[0] == fingerprint:
        return stored[1]
    following = 0 if stored is None else stored[1] + 1
    return following if published is None else max(published, following)


def copil_uid(copil_id: int, territory_code: str) -> str:
    """A COPIL's UID, the same in its invitation (.ics of the digest) and in the feeds: a
    calendar that imported the invitation updates that event from the feed."""
    return f"copil-{copil_id}-{territory_code}@tiflow"


_SEQUENCE_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def copil_sequence(at: datetime) -> int:
    """A COPIL event's SEQUENCE when published at ``at``: minutes since 2024, so a later
    invitation or feed change (the meeting moved) always supersedes an earlier one."""
    return int((at - _SEQUENCE_EPOCH).total_seconds() // 60)


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
