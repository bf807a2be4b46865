"""Recording a person's preferences (web page, coordinator on request, CLI, spreadsheet import).

One change is one transaction that takes the reminder sweeps' lock first
(:func:`flows.usecases.reminders.lock_sweeps`), so a sweep never plans with a choice that is
changing under it; the same transaction appends the history row and moves (or drops, for
« jamais ») the person's pending messages that follow the changed category. Items already in a
pending message stay in exactly that one message: none lost, none doubled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from flows.usecases.reminders import REMINDER, lock_sweeps
from models import clock
from models.outbox import OutboxItem, OutboxMessage, OutboxStatus
from models.preferences import (
    Away,
    Category,
    Choice,
    PersonAbsence,
    PersonAbsenceChange,
    PersonPreference,
    PersonPreferenceChange,
    PreferenceError,
    check_absence,
    check_choice,
    earliest_send,
    end_absence_check,
    resume_at,
)
from models.settings import load_settings
from models.tables import Person
from models.uow import UnitOfWork
from notifications.config import person_channels
from notifications.fr import plural
from notifications.preferences import categories_of, choices_for, load_choices, reschedule

P = PersonPreference.__table__  # type: ignore[attr-defined]
M = OutboxMessage.__table__  # type: ignore[attr-defined]
I = OutboxItem.__table__  # type: ignore[attr-defined]  # noqa: E741


@dataclass(frozen=True)
class PreferenceChanged:
    person: str  # « Hélène Garnier »
    category: Category
    choice: Choice
    moved: int  # pending messages moved to the new time
    dropped: int  # pending messages not sent any more (never)

    def summary(self) -> str:
        text = f"{self.person} : {self.category.label} → {self.choice.describe_all()}"
        if self.moved:
            text += " ; " + plural(
                self.moved, "message en attente déplacé", "messages en attente déplacés"
            )
        if self.dropped:
            text += " ; " + plural(
                self.dropped, "message en attente annulé", "messages en attente annulés"
            )
        return text


def offered_channels() -> frozenset[str]:
    """The ``canal-…`` channels the operator configured, that a person may choose."""
    return person_channels(load_settings().notify_config)


def choices_of(uow: UnitOfWork, person_id: int) -> dict[Category, Choice]:
    """Every category with the person's choice (the default where they chose nothing)."""
    stored = load_choices(uow.session, [person_id])
    return {c: stored.get((person_id, c), Choice()) for c in Category}


def set_preference(
    uow: UnitOfWork,
    person: Person,
    category: Category,
    choice: Choice,
    *,
    actor: str,
    via: str,
    channels: frozenset[str] | None = None,
) -> PreferenceChanged:
    """Record ``choice`` for ``person`` (the caller commits). ``actor``: who did it (the
    person, or the coordinator on their request); ``via``: web, cli, import, désabonnement.
    ``channels``: the channels one may choose besides e-mail (default: the ``canal-…`` tags
    of TIFLOW_NOTIFY_CONFIG)."""
    if channels is None:
        channels = offered_channels()
    check_choice(category, choice, channels)
    assert person.id is not None
    session = uow.session
    lock_sweeps(session)
    now = clock.now()
    values = {
        "frequency": choice.frequency.value,
        "weekday": choice.weekday,
        "hour": choice.hour,
        "channel": choice.channel,
        "updated_at": now,
    }
    updated = session.execute(
        sa.update(P)
        .where(P.c.person_id == person.id, P.c.category == category.value)
        .values(**values)
    ).rowcount  # type: ignore[attr-defined]
    if not updated:
        session.execute(sa.insert(P).values(person_id=person.id, category=category.value, **values))
    session.add(
        PersonPreferenceChange(
            person_id=person.id,
            category=category,
            frequency=choice.frequency,
            weekday=choice.weekday,
            hour=choice.hour,
            channel=choice.channel,
            at=now,
            actor=actor[:200],
            via=via[:32],
        )
    )
    session.flush()
    moved, dropped = reschedule(session, person.id, category)
    return PreferenceChanged(person.full_name, category, choice, moved, dropped)


def record_absence(
    uow: UnitOfWork,
    person: Person,
    starts_on: date,
    ends_on: date,
    *,
    delegate: Person | None,
    hold: bool,
    actor: str,
) -> str:
    """Record an absence (the caller commits); the next sweeps follow it. Returns the French
    summary: « Hélène Garnier absente du … au … : rappels à Karim Haddad ».

    Without a delegate (or with ``hold``), reminders wait for the return."""
    assert person.id is not None
    away = Away(person.id, starts_on, ends_on, delegate.id if delegate else None, hold)
    check_absence(away)
    if delegate is not None and delegate.territory_id != person.territory_id:
        raise PreferenceError(
            f"Absence : le suppléant {delegate.full_name} n'est pas du même territoire."
        )
    lock_sweeps(uow.session)
    uow.session.add(
        PersonAbsence(
            person_id=person.id,
            starts_on=starts_on,
            ends_on=ends_on,
            delegate_id=away.delegate_id,
            hold=hold,
            actor=actor[:200],
        )
    )
    uow.session.flush()
    period = f"du {starts_on:%d/%m/%Y} au {ends_on:%d/%m/%Y}"
    if away.delegates and delegate is not None:
        return f"{person.full_name} : absence {period}, rappels à {delegate.full_name}"
    return f"{person.full_name} : absence {period}, rappels gardés jusqu'au retour"


HELD_RELEASED = (
    "Absence écourtée : ces rappels, gardés jusqu'au retour, repartent avec la prochaine"
    " tournée des rappels, rédigés pour ce jour-là."
)


def end_absence(
    uow: UnitOfWork,
    person: Person,
    absence_id: int,
    *,
    ends_on: date | None,
    actor: str,
    via: str,
) -> str:
    """Cancel ``person``'s absence (``ends_on`` None) or shorten it to end on ``ends_on``
    (the caller commits); appends the history row. Returns the French summary.

    Reminders held for the return are released in the same transaction, under the sweeps'
    lock: when the person is back by today, each pending one is handed to the next sweep (a
    ``stale`` drop, which a sweep folds into that day's e-mail, written for that day — so
    each item goes once, never lost); when the shortened absence still runs, they move to
    the new day of return (by the person's choice of frequency)."""
    assert person.id is not None
    lock_sweeps(uow.session)
    row = uow.session.get(PersonAbsence, absence_id)
    if row is None or row.person_id != person.id or row.cancelled_at is not None:
        raise PreferenceError(f"Absence n° {absence_id} introuvable pour {person.full_name}.")
    away, today, now = row.away(), clock.today_paris(), clock.now()
    end_absence_check(away, today, ends_on)
    previous = row.ends_on
    if ends_on is None:
        row.cancelled_at = now
    else:
        row.ends_on = ends_on
    uow.session.add(
        PersonAbsenceChange(
            absence_id=absence_id,
            person_id=person.id,
            at=now,
            actor=actor[:200],
            via=via[:32],
            previous_ends_on=previous,
            ends_on=ends_on,
        )
    )
    uow.session.flush()
    back = None if ends_on is None or row.away().back_on <= today else resume_at(row.away())
    released = _release_held(uow, person.id, resume_at(away), back)
    period = f"du {away.starts_on:%d/%m/%Y} au {previous:%d/%m/%Y}"
    text = f"{person.full_name} : absence {period} annulée"
    if ends_on is not None:
        text = f"{person.full_name} : absence {period} écourtée au {ends_on:%d/%m/%Y}"
    if released:
        text += " ; " + plural(
            released, "rappel gardé repart normalement", "rappels gardés repartent normalement"
        )
    return text


def _release_held(
    uow: UnitOfWork, person_id: int, held_until: datetime, back: datetime | None
) -> int:
    """The person's pending reminders that waited for ``held_until``: handed to the next
    sweep (``back`` None: the person is back), or moved to ``back``. Conditional on
    ``pending``: a row a round already claimed goes out as it is, once."""
    session = uow.session
    held = sa.and_(
        M.c.person_id == person_id,
        M.c.kind == REMINDER,
        M.c.status == OutboxStatus.PENDING.value,
        M.c.next_attempt_at >= held_until,
    )
    if back is None:
        values: dict[str, object] = {
            "status": OutboxStatus.DROPPED.value,
            "drop_reason": "stale",
            "last_error": HELD_RELEASED,
        }
        return int(session.execute(sa.update(M).where(held).values(**values)).rowcount)  # type: ignore[attr-defined]
    choices = load_choices(session, [person_id])
    moved = 0
    for row in session.execute(sa.select(M.c.id).where(held)).all():
        kinds = set(
            session.execute(sa.select(I.c.ref_kind).where(I.c.message_id == row.id)).scalars()
        )
        picked = choices_for(choices, person_id, categories_of(REMINDER, kinds))
        at = earliest_send(picked, back, None) or back
        pending = sa.and_(M.c.id == row.id, M.c.status == OutboxStatus.PENDING.value)
        moved += session.execute(sa.update(M).where(pending).values(next_attempt_at=at)).rowcount  # type: ignore[attr-defined]
    return moved


@dataclass(frozen=True)
class AbsenceShown:
    """An absence still to come or running, as pages show it (French)."""

    id: int
    starts_on: date
    ends_on: date
    what: str  # « rappels à Karim Haddad », « rappels gardés jusqu'au retour »


def coming_absences(uow: UnitOfWork, person_id: int) -> list[AbsenceShown]:
    """The person's absences not over and not cancelled, first to come first."""
    a = PersonAbsence.__table__.c  # type: ignore[attr-defined]
    rows = uow.session.execute(
        sa.select(a.id, a.starts_on, a.ends_on, a.delegate_id, a.hold)
        .where(
            a.person_id == person_id,
            a.ends_on >= clock.today_paris(),
            a.cancelled_at.is_(None),
        )
        .order_by(a.starts_on, a.id)
    ).all()
    shown = []
    for row in rows:
        delegate = uow.session.get(Person, row.delegate_id) if row.delegate_id else None
        what = "rappels gardés jusqu'au retour"
        if delegate is not None and not row.hold:
            what = f"rappels à {delegate.full_name}"
        shown.append(AbsenceShown(row.id, row.starts_on, row.ends_on, what))
    return shown
