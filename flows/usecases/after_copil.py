"""After each COPIL: the record of its decisions (*relevé de décisions*) and the reminder of
its minutes (*compte rendu*).

* The day after a COPIL is held, its members and the pilots of the actions it decided get the
  record of its decisions, written from the decisions recorded (outcome, conditions, comment
  per action, the annual budget validated). Key ``decision-record:<copil>`` per recipient:
  enqueued once, whatever the number of runs.
* 3 and 7 days after the COPIL (by default), while its minutes are not recorded
  (:func:`record_minutes`, ``tiflow copil compte-rendu``), the territory's coordinators get a
  reminder. Key ``minutes-reminder:<copil>:J+<n>``; the message carries the ``copil_minutes``
  reference, whose fingerprint disappears once the minutes are recorded, so a reminder still
  waiting in the outbox then is dropped, never sent.

A day the flow did not run is caught up by the next run within ``catch_up_days``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlmodel import col, select

from flows.usecases.notices import _message
from flows.usecases.reminders import unknown_territories
from models import clock
from models.deadlines import COPIL_MINUTES, copil_fingerprint, paris_date
from models.errors import InvalidInput, NotFound
from models.lifecycle import State
from models.outbox import OutboxMessage
from models.tables import ActionSheet, CopilDecision, CopilMeeting, CopilMember, Person, Territory
from models.uow import UnitOfWork
from models.vocabulary import CopilStatus, Role
from notifications import fr
from notifications.outbox import EnqueueResult, ItemRef, NewMessage, enqueue

DECISION_RECORD = "decision-record"  # outbox kinds
MINUTES_REMINDER = "minutes-reminder"
MINUTES_MAX = 20_000  # characters of a compte rendu typed or pasted in


class AfterCopilSettings(BaseModel):
    """Réglages des envois qui suivent un COPIL."""

    model_config = ConfigDict(title="Réglages des suites du COPIL", frozen=True)

    record_after_days: int = Field(
        default=1,
        ge=0,
        le=14,
        title="Relevé de décisions (jours après le COPIL)",
        description="Le relevé de décisions part … jours après le COPIL (1 : le lendemain).",
    )
    minutes_reminder_days: list[int] = Field(
        default=[3, 7],
        title="Rappels du compte rendu (jours après le COPIL)",
        description="Tant que le compte rendu n'est pas enregistré, le chargé de mission est"
        " relancé … jours après le COPIL (3 et 7 par défaut).",
    )
    catch_up_days: int = Field(
        default=2,
        ge=0,
        le=14,
        title="Rattrapage (jours)",
        description="Un envoi dont le jour est passé de moins de … jours sans envoi (flux"
        " arrêté) part au passage suivant.",
    )
    territories: list[str] = Field(
        default_factory=list, title="Territoires (codes)", description="Vide : tous."
    )

    @field_validator("minutes_reminder_days")
    @classmethod
    def _days(cls, value: list[int]) -> list[int]:
        if any(v < 1 or v > 60 for v in value):
            raise ValueError("les rappels se comptent en jours après le COPIL, de 1 à 60")
        return sorted(set(value))


@dataclass
class AfterCopil:
    """What one run enqueued: the COPILs whose record, and whose minutes reminder, went out."""

    records: list[str] = field(default_factory=list)  # « COPIL du 25/01/2024 »
    reminders: list[str] = field(default_factory=list)  # « COPIL du 25/01/2024 (J+3) »
    result: EnqueueResult | None = None

    @property
    def enqueued(self) -> int:
        return len(self.result.created) if self.result else 0


def latest_day(
    held: date, as_of: date, window_start: date, offsets: Sequence[int]
) -> tuple[date, int] | None:
    """The latest of ``held + offset`` within ``[window_start, as_of]``, with its offset."""
    best: tuple[date, int] | None = None
    for offset in offsets:
        day = held + timedelta(days=offset)
        if window_start <= day <= as_of and (best is None or day > best[0]):
            best = (day, offset)
    return best


def _label(copil: CopilMeeting) -> str:
    return f"COPIL du {paris_date(copil.held_at):%d/%m/%Y}"


def _members(uow: UnitOfWork, copil: CopilMeeting) -> list[Person]:
    listed = uow.session.exec(
        select(Person)
        .join(CopilMember, col(CopilMember.person_id) == col(Person.id))
        .where(CopilMember.copil_id == copil.id)
        .order_by(Person.full_name)
    ).all()
    return list(listed or uow.repo.people_with_role(copil.territory_id, Role.COPIL_MEMBER))


def _decision_lines(uow: UnitOfWork, copil: CopilMeeting) -> tuple[list[str], list[Person]]:
    """One line per decision (number, title, outcome, conditions, comment), and the pilots of
    the actions decided."""
    rows = uow.session.exec(
        select(CopilDecision, ActionSheet)
        .join(ActionSheet, col(ActionSheet.id) == col(CopilDecision.action_id))
        .where(CopilDecision.copil_id == copil.id)
        .order_by(ActionSheet.number)
    ).all()
    lines: list[str] = []
    pilots: list[Person] = []
    for decision, action in rows:
        line = f"{action.number} {fr.quoted(action.title)} : {State(decision.outcome).label}"
        if decision.conditions:
            line += f" ; conditions : {decision.conditions}"
        if decision.comment:
            line += f" ; commentaire : {decision.comment}"
        lines.append(line)
        if action.pilot_id is not None:
            pilots.append(uow.session.get_one(Person, action.pilot_id))
    return lines, pilots


def decision_record(uow: UnitOfWork, copil: CopilMeeting, territory: Territory) -> NewMessage:
    """The record of a held COPIL's decisions, to its members and the pilots concerned."""
    lines, pilots = _decision_lines(uow, copil)
    paragraphs = [
        f"Le COPIL du Territoire d'industrie {territory.name} s'est réuni le"
        f" {fr.format_datetime(copil.held_at)}"
        + (f", {copil.place}" if copil.place else "")
        + f". Il a pris {fr.plural(len(lines), 'décision', 'décisions')} :",
    ]
    if copil.validated_budget is not None:
        year = copil.budget_year or paris_date(copil.held_at).year
        paragraphs.append(f"Budget {year} validé : {fr.format_eur(copil.validated_budget)}.")
    recipients: dict[str, Person] = {}
    for person in [*_members(uow, copil), *pilots]:
        recipients.setdefault(person.email.strip().lower(), person)
    coordinators = uow.repo.people_with_role(copil.territory_id, Role.COORDINATOR)
    return _message(
        key=f"{DECISION_RECORD}:{copil.id}",
        kind=DECISION_RECORD,
        tag="copil",
        to=list(recipients.values()),
        subject=f"Relevé de décisions du {_label(copil)} ({territory.name})",
        territory=territory,
        reply_to=coordinators[0] if coordinators else None,
        context={
            "title": f"Relevé de décisions du {_label(copil)}",
            "territory": territory.name,
            "paragraphs": [fr.typeset(p) for p in paragraphs[:1]],
            "items": [fr.typeset(line) for line in lines] or ["aucune décision enregistrée"],
            "closing": [fr.typeset(p) for p in paragraphs[1:]],
        },
    )


def minutes_reminder(
    uow: UnitOfWork, copil: CopilMeeting, territory: Territory, offset: int, day: date
) -> NewMessage | None:
    """To the territory's coordinators: the COPIL's minutes are still not recorded."""
    coordinators = uow.repo.people_with_role(copil.territory_id, Role.COORDINATOR)
    if not coordinators:
        return None
    message = _message(
        key=f"{MINUTES_REMINDER}:{copil.id}:J+{offset}",
        kind=MINUTES_REMINDER,
        tag="coordinator",
        to=coordinators,
        subject=f"Compte rendu du {_label(copil)} à enregistrer ({territory.name})",
        territory=territory,
        reply_to=coordinators[0],  # as every message: a reply reaches a person, not no-reply
        context={
            "title": f"Compte rendu du {_label(copil)} à enregistrer",
            "territory": territory.name,
            "paragraphs": [
                fr.typeset(
                    f"Le COPIL du {fr.format_datetime(copil.held_at)} s'est tenu il y a"
                    f" {fr.plural(offset, 'jour', 'jours')} ; son compte rendu n'est pas"
                    " encore enregistré."
                ),
                fr.typeset("Pour l'enregistrer :")
                + f" tiflow copil compte-rendu {copil.id} --fichier compte-rendu.txt",
            ],
        },
    )
    return replace(
        message,
        items=[
            ItemRef(
                key=f"{COPIL_MINUTES}:{copil.id}:J+{offset}",
                ref_kind=COPIL_MINUTES,
                ref_id=copil.id or 0,
                fingerprint=copil_fingerprint(copil.held_at, str(copil.status)),
                remind_on=day,
            )
        ],
    )


def _held_copils(uow: UnitOfWork, codes: Sequence[str]) -> list[tuple[CopilMeeting, Territory]]:
    territories = {t.id: t for t in uow.repo.territories()}
    unknown = sorted(set(codes) - {t.code for t in territories.values()})
    if unknown:
        raise unknown_territories(unknown)
    held = uow.session.exec(
        select(CopilMeeting)
        .where(CopilMeeting.status == CopilStatus.HELD)
        .order_by(col(CopilMeeting.held_at))
    ).all()
    return [
        (c, territories[c.territory_id])
        for c in held
        if not codes or territories[c.territory_id].code in codes
    ]


def _queued(uow: UnitOfWork, key: str) -> bool:
    """Already in the outbox (whatever its status): enqueued once, never again."""
    m = OutboxMessage.__table__.c  # type: ignore[attr-defined]
    return uow.session.execute(sa.select(m.id).where(m.key == key).limit(1)).first() is not None


def enqueue_after_copil(
    uow: UnitOfWork,
    as_of: date,
    settings: AfterCopilSettings | None = None,
    *,
    correlation_id: str | None = None,
) -> AfterCopil:
    """Enqueue the records and minutes reminders due on ``as_of`` (the caller commits)."""
    settings = settings or AfterCopilSettings()
    window_start = as_of - timedelta(days=settings.catch_up_days)
    done = AfterCopil()
    messages: list[NewMessage] = []
    for copil, territory in _held_copils(uow, settings.territories):
        held = paris_date(copil.held_at)
        record = latest_day(held, as_of, window_start, [settings.record_after_days])
        if record and not _queued(uow, f"{DECISION_RECORD}:{copil.id}"):
            messages.append(decision_record(uow, copil, territory))
            done.records.append(_label(copil))
        found = latest_day(held, as_of, window_start, settings.minutes_reminder_days)
        if found is None or copil.minutes_recorded_at is not None:
            continue
        if _queued(uow, f"{MINUTES_REMINDER}:{copil.id}:J+{found[1]}"):
            continue
        reminder = minutes_reminder(uow, copil, territory, found[1], found[0])
        if reminder is not None:
            messages.append(reminder)
            done.reminders.append(f"{_label(copil)} (J+{found[1]})")
    done.result = enqueue(uow, messages, correlation_id=correlation_id)
    return done


def record_minutes(uow: UnitOfWork, copil_id: int, text: str) -> CopilMeeting:
    """Record (or replace) the minutes of a held COPIL: its reminders stop (the caller
    commits)."""
    copil = uow.session.get(CopilMeeting, copil_id)
    if copil is None:
        raise NotFound(f"COPIL inconnu : n° {copil_id}.")
    if copil.status != CopilStatus.HELD:
        raise InvalidInput(
            [
                f"Le {_label(copil)} (n° {copil_id}) est {copil.status.label} : son compte"
                " rendu s'enregistre une fois ses décisions saisies."
            ]
        )
    minutes = text.strip()
    if not minutes:
        raise InvalidInput(["Compte rendu : le texte est vide."])
    if len(minutes) > MINUTES_MAX:
        raise InvalidInput([f"Compte rendu : {len(minutes)} caractères, au plus {MINUTES_MAX}."])
    copil.minutes = minutes
    copil.minutes_recorded_at = clock.now()
    uow.session.add(copil)
    return copil
