"""A person's private iCalendar feed (`tiflow web` serves it at ``/calendrier/TOKEN.ics``).

It holds the milestones and funding deadlines of the open actions the person pilots, and the
scheduled COPILs they are a member of. UIDs are stable (``milestone-42@tiflow``…); serving the
feed records what each event looked like, so that its SEQUENCE grows by one whenever its date
or title changes (calendar applications then replace the event instead of keeping the old
one). A COPIL has its invitation's UID (``copil-3-grand-est-touraine@tiflow``) and SEQUENCE
scale (:func:`models.calendar_feed.copil_sequence`), so feed and invitation are one event.
A new feed revokes the previous one; a revoked feed answers nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import icalendar
import sqlalchemy as sa

from flows.usecases.digest import DigestSettings
from models import clock
from models.calendar_feed import (
    CalendarEntry,
    CalendarFeed,
    copil_sequence,
    copil_uid,
    next_sequence,
    token_hash,
)
from models.lifecycle import OPEN_STATES
from models.tables import (
    ActionSheet,
    CopilMeeting,
    CopilMember,
    Funding,
    Milestone,
    Organisation,
    Person,
    Territory,
)
from models.uow import UnitOfWork
from models.vocabulary import CopilStatus

F = CalendarFeed.__table__  # type: ignore[attr-defined]
E = CalendarEntry.__table__  # type: ignore[attr-defined]
# The invitation's default length: the feed's event matches the e-mail's.
COPIL_LENGTH = timedelta(minutes=DigestSettings.model_fields["duration_minutes"].default)


@dataclass(frozen=True)
class Event:
    uid: str
    summary: str
    when: date | datetime  # a day (deadline) or an instant (COPIL)
    place: str = ""
    invited: bool = False  # a COPIL: its invitation e-mails carry the same UID

    @property
    def fingerprint(self) -> str:
        where = f"|{self.place}" if self.place else ""  # absent: the facts served before
        return f"{self.when.isoformat()}|{self.summary}{where}"[:200]


def new_feed(uow: UnitOfWork, person: Person) -> str:
    """A fresh secret token for ``person`` (the caller commits); earlier feeds are revoked."""
    assert person.id is not None
    revoke_feeds(uow, person)
    token = secrets.token_urlsafe(32)
    uow.session.add(CalendarFeed(person_id=person.id, token_hash=token_hash(token)))
    uow.session.flush()  # written now: a later revoke in this unit of work must see it
    return token


def revoke_feeds(uow: UnitOfWork, person: Person) -> int:
    done = uow.session.execute(
        sa.update(F)
        .where(F.c.person_id == person.id, F.c.revoked_at.is_(None))
        .values(revoked_at=clock.now())
    )
    return int(done.rowcount)  # type: ignore[attr-defined]


def feed_ics(uow: UnitOfWork, token: str) -> bytes | None:
    """The feed of ``token`` as iCalendar bytes, or None (unknown or revoked); records the
    served events (the caller commits)."""
    feed = uow.session.execute(
        sa.select(F.c.id, F.c.person_id).where(
            F.c.token_hash == token_hash(token), F.c.revoked_at.is_(None)
        )
    ).first()
    if feed is None:
        return None
    events = _milestones(uow, feed.person_id) + _fundings(uow, feed.person_id)
    events += _copils(uow, feed.person_id)
    stored = {
        row.uid: (row.fingerprint, row.sequence)
        for row in uow.session.execute(sa.select(E).where(E.c.feed_id == feed.id))
    }
    cal = icalendar.Calendar()
    cal.add("prodid", "-//tiflow//Calendrier personnel//FR")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", "tiflow : mes échéances et COPIL")
    now = clock.now()
    for event in events:
        published = copil_sequence(now) if event.invited else None
        sequence = next_sequence(stored.get(event.uid), event.fingerprint, published=published)
        if stored.get(event.uid) != (event.fingerprint, sequence):
            _remember(uow, feed.id, event, sequence, event.uid in stored)
        cal.add_component(_vevent(event, sequence, now))
    return bytes(cal.to_ical())


def _remember(uow: UnitOfWork, feed_id: int, event: Event, sequence: int, known: bool) -> None:
    values = {"fingerprint": event.fingerprint, "sequence": sequence}
    if known:
        uow.session.execute(
            sa.update(E).where(E.c.feed_id == feed_id, E.c.uid == event.uid).values(**values)
        )
    else:
        uow.session.execute(sa.insert(E).values(feed_id=feed_id, uid=event.uid, **values))


def _vevent(event: Event, sequence: int, now: datetime) -> icalendar.Event:
    vevent = icalendar.Event()
    vevent.add("uid", event.uid)
    vevent.add("sequence", sequence)
    vevent.add("dtstamp", now.astimezone(UTC))
    vevent.add("summary", event.summary)
    if event.place:
        vevent.add("location", event.place)
    if isinstance(event.when, datetime):
        start = event.when.astimezone(clock.PARIS)
        vevent.add("dtstart", start)
        vevent.add("dtend", start + COPIL_LENGTH)
    else:
        vevent.add("dtstart", event.when)
        vevent.add("dtend", event.when + timedelta(days=1))
    return vevent


def _open_actions(person_id: int) -> sa.Select[tuple[int]]:
    a = ActionSheet.__table__.c  # type: ignore[attr-defined]
    return sa.select(a.id).where(
        a.pilot_id == person_id, a.state.in_(sorted(s.value for s in OPEN_STATES))
    )


def _milestones(uow: UnitOfWork, person_id: int) -> list[Event]:
    m = Milestone.__table__.c  # type: ignore[attr-defined]
    a = ActionSheet.__table__.c  # type: ignore[attr-defined]
    rows = uow.session.execute(
        sa.select(m.id, m.title, m.due_date, a.number)
        .join(ActionSheet, a.id == m.action_id)
        .where(m.action_id.in_(_open_actions(person_id)), m.done_on.is_(None))
    )
    return [Event(f"milestone-{r.id}@tiflow", f"{r.number} : {r.title}", r.due_date) for r in rows]


FUNDING_DATES = {
    "dossier_due": "dépôt du dossier",
    "decision_expected": "décision attendue",
    "payment_expected": "versement attendu",
}


def _fundings(uow: UnitOfWork, person_id: int) -> list[Event]:
    f = Funding.__table__.c  # type: ignore[attr-defined]
    a = ActionSheet.__table__.c  # type: ignore[attr-defined]
    o = Organisation.__table__.c  # type: ignore[attr-defined]
    rows = uow.session.execute(
        sa.select(f, a.number, o.name.label("funder"))
        .join(ActionSheet, a.id == f.action_id)
        .join(Organisation, o.id == f.funder_id)
        .where(f.action_id.in_(_open_actions(person_id)))
    )
    events = []
    for row in rows:
        for column, what in FUNDING_DATES.items():
            day = getattr(row, column)
            if day is not None:
                summary = f"{row.number} : {row.funder}, {what}"
                events.append(Event(f"funding-{row.id}-{column}@tiflow", summary, day))
    return events


def _copils(uow: UnitOfWork, person_id: int) -> list[Event]:
    c = CopilMeeting.__table__.c  # type: ignore[attr-defined]
    cm = CopilMember.__table__.c  # type: ignore[attr-defined]
    t = Territory.__table__.c  # type: ignore[attr-defined]
    rows = uow.session.execute(
        sa.select(c.id, c.held_at, c.place, t.name, t.code)
        .join(CopilMember, cm.copil_id == c.id)
        .join(Territory, t.id == c.territory_id)
        .where(cm.person_id == person_id, c.status == CopilStatus.SCHEDULED.value)
    )
    return [
        Event(
            copil_uid(r.id, r.code),
            f"COPIL Territoire d'industrie {r.name}",
            r.held_at,
            r.place or "",
            invited=True,
        )
        for r in rows
    ]
