"""Recording a person's preferences (web page, coordinator on request, CLI, spreadsheet import).

One change is one transaction that takes the reminder sweeps' lock first
(:func:`flows.usecases.reminders.lock_sweeps`), so a sweep never plans with a choice that is
changing under it; the same transaction appends the history row and moves (or drops, for
« jamais ») the person's pending messages that follow the changed category. Items already in a
pending message stay in exactly that one message: none lost, none doubled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from flows.usecases.reminders import lock_sweeps
from models import clock
from models.preferences import (
    Away,
    Category,
    Choice,
    PersonAbsence,
    PersonPreference,
    PersonPreferenceChange,
    PreferenceError,
    check_absence,
    check_choice,
)
from models.settings import load_settings
from models.tables import Person
from models.uow import UnitOfWork
from notifications.config import person_channels
from notifications.fr import plural
from notifications.preferences import load_choices, reschedule

P = PersonPreference.__table__  # type: ignore[attr-defined]


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
