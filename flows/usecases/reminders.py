"""Deadline reminders: what to tell each pilot (and coordinator) on a given day.

The sweep for day ``as_of`` (a calendar day in Europe/Paris) runs in three steps, each a
batch: :func:`compute_plan` (a handful of queries, then pure Python), :func:`enqueue_plan`
(one transaction, bulk inserts into the outbox), then an outbox delivery round.

Rules (defaults in :class:`ReminderSettings`):

* every *deadline* of an open action (milestone not done, planned end, funding dossier due,
  decision expected, payment expected) is reminded to the action's pilot at J-30, J-7, J-1 and
  J0, then every 7 days while overdue;
* after 14 days overdue, the territory's coordinator(s) get it once (*escalation*); deadlines
  of an action without pilot go to the coordinator(s) at the same offsets;
* an action being carried out (validated, funded, in progress) whose pilot wrote no follow-up
  note for 6 weeks gets an « Où en êtes-vous ? » nudge (again every 6 weeks of silence); a
  nudge due before the next sweep (within ``catch_up_days`` after today) is enqueued ahead, in
  its own e-mail sent on its day (:mod:`models.cadence`), unless that day's sweep folds it into
  the person's e-mail of that day;
* ONE e-mail per person and day groups all of that person's items;
* offsets are counted in calendar days (``date`` arithmetic): daylight saving time cannot skip
  or double a reminder. A reminder whose day fell in the last ``catch_up_days`` days and was
  not sent (the flow did not run) goes out at the next run; only the latest one per deadline.

Each item has an idempotency key (``ref_kind:ref_id:due:label:audience``, e.g.
``milestone:42:2025-03-17:J-7:p5``) recorded in ``outbox_item``: an item already in a live
(not dropped) message is never planned again, so re-running a day is a no-op.

When a due date, a pilot or a state changes, reminders enqueued for the old facts but not yet
sent are dropped (their fingerprint no longer matches): by the next sweep, which folds the
still-valid items of a person's unsent messages into that day's single e-mail, and at the
latest by the delivery round, which re-checks fingerprints right before sending.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import parseaddr
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from flows.usecases.bus import unit_of_work
from models.cadence import LastNudge, nudge_days, sent_ahead_at
from models.db import one_of, retry_when_busy
from models.deadlines import (
    NUDGE,
    Deadline,
    Silence,
    Snapshot,
    is_late,
    load_snapshot,
    matches,
    paris_date,
)
from models.errors import NotFound
from models.outbox import OutboxItem, OutboxMessage, OutboxStatus
from models.preferences import (
    IMMEDIATELY,
    Away,
    Category,
    Frequency,
    PersonAbsence,
    earliest_send,
    resume_at,
)
from models.settings import Settings, load_settings
from models.tables import Person, PersonRole, Territory
from models.uow import UnitOfWork
from models.vocabulary import Role
from notifications import fr
from notifications.outbox import (
    DeliveryPolicy,
    DeliveryReport,
    ItemRef,
    NewMessage,
    Recipient,
    count_fr,
    deliver_pending,
    enqueue,
    mailbox_of,
    utcnow,
)
from notifications.preferences import Choices, categories_of, choices_for, load_choices
from notifications.templates import ReplyTo, environment, render
from notifications.transports import Deliverer

REMINDER = "reminder"  # outbox kind: a pilot's daily e-mail
ESCALATION = "escalation"  # outbox kind: a coordinator's daily e-mail
KINDS = (REMINDER, ESCALATION)
CARRY_HORIZON = timedelta(days=60)  # unsent messages older than this are not folded in again
SUBJECT_MAX = 300

M = OutboxMessage.__table__  # type: ignore[attr-defined]
I = OutboxItem.__table__  # type: ignore[attr-defined]  # noqa: E741


class ReminderSettings(BaseModel):
    """Réglages des rappels d'échéance (valeurs par défaut : celles du plan d'actions)."""

    model_config = ConfigDict(title="Réglages des rappels", frozen=True)

    offsets_days: list[int] = Field(
        default=[30, 7, 1, 0],
        title="Rappels avant l'échéance (jours)",
        description="Jours avant chaque échéance où le pilote reçoit un rappel : 30, 7, 1 et 0"
        " (le jour même).",
    )
    overdue_every_days: int = Field(
        default=7,
        ge=1,
        le=90,
        title="Relance des retards (jours)",
        description="Une échéance dépassée est rappelée au pilote tous les … jours.",
    )
    escalate_after_days: int = Field(
        default=14,
        ge=1,
        le=365,
        title="Alerte au chargé de mission (jours de retard)",
        description="Après … jours de retard, le ou les chargés de mission du territoire sont"
        " prévenus (une fois).",
    )
    nudge_after_weeks: int = Field(
        default=6,
        ge=1,
        le=52,
        title="« Où en êtes-vous ? » (semaines sans note)",
        description="Une action en cours dont le pilote n'a écrit aucune note de suivi depuis …"
        " semaines reçoit une relance amicale.",
    )
    catch_up_days: int = Field(
        default=3,
        ge=0,
        le=31,
        title="Rattrapage (jours)",
        description="Un rappel tombé un jour où le flux n'a pas tourné part au passage suivant"
        " s'il date de moins de … jours (0 : seulement les rappels du jour).",
    )
    funding: bool = Field(
        default=True,
        title="Échéances de financement",
        description="Rappeler aussi les dépôts de dossier, décisions et versements attendus.",
    )
    territories: list[str] = Field(
        default_factory=list,
        title="Territoires (codes)",
        description="Vide : tous les territoires.",
    )

    @field_validator("offsets_days")
    @classmethod
    def _offsets(cls, value: list[int]) -> list[int]:
        if any(v < 0 or v > 366 for v in value):
            raise ValueError("les rappels se comptent en jours avant l'échéance, de 0 à 366")
        return sorted(set(value), reverse=True)


# ---------------------------------------------------------------------------------------------
# Planning (pure, given a snapshot)


@dataclass(frozen=True, slots=True)
class PlannedItem:
    key: str
    label: str  # J-7, J0, R+14 (overdue), E+14 (escalation), N6 (weeks of silence)
    subject: Deadline | Silence
    remind_on: date
    fingerprint: str

    @property
    def ref(self) -> ItemRef:
        s = self.subject
        return ItemRef(self.key, s.ref_kind, s.ref_id, self.fingerprint, self.remind_on)


@dataclass
class Batch:
    """What one person (or the coordinator tag's channels) receives for the day."""

    kind: str
    address: str  # lowercase e-mail, "" for the coordinator tag's configured channels
    recipient: Recipient | None
    territory_ids: set[int] = field(default_factory=set)
    items: list[PlannedItem] = field(default_factory=list)
    carry_from: list[int] = field(default_factory=list)  # unsent messages folded into this one
    send_on: date | None = None  # the day it goes out, when the person's choice delays it
    ahead: datetime | None = None  # nudges enqueued ahead: when they are due to go out
    hold_until: datetime | None = None  # the pilot is away and chose to wait for the return


@dataclass
class ReminderPlan:
    as_of: date
    batches: list[Batch]
    territories: dict[int, str]  # id -> name
    coordinators: dict[int, list[str]]  # territory id -> "Name <addr>", for the contact line
    pilots: dict[int, str] = field(default_factory=dict)  # named in coordinators' e-mails
    keep_pending: int = 0  # unsent messages still valid, left for the delivery round
    already_queued: int = 0  # items due that an earlier sweep had queued already
    behalf: dict[int, str] = field(default_factory=dict)  # absent pilot id -> name


def unknown_territories(codes: list[str]) -> NotFound:
    """``Territoire inconnu : « x »``, ``Territoires inconnus : « x », « y »`` (real plurals)."""
    what = "Territoire inconnu" if len(codes) < 2 else "Territoires inconnus"
    return NotFound(f"{what} : " + ", ".join(fr.quoted(c) for c in codes))


def _days(n: int) -> timedelta:
    return timedelta(days=n)


def reminder_day(
    due: date,
    as_of: date,
    window_start: date,
    offsets: Sequence[int],
    overdue_every: int,
) -> tuple[date, str] | None:
    """The latest reminder day of a deadline within ``[window_start, as_of]``, with its label.

    Reminder days are ``due - o`` for each offset and ``due + k * overdue_every`` (k >= 1),
    all in calendar days: the same local day whatever the UTC offset."""
    best: tuple[date, str] | None = None
    for offset in offsets:
        day = due - _days(offset)
        if window_start <= day <= as_of and (best is None or day > best[0]):
            best = (day, f"J-{offset}" if offset else "J0")
    if is_late(due, as_of):
        k = (as_of - due).days // overdue_every
        day = due + _days(k * overdue_every)
        if k >= 1 and day >= window_start and (best is None or day > best[0]):
            best = (day, f"R+{k * overdue_every}")
    return best


def _item(
    subject: Deadline | Silence, day: date, label: str, audience: str, fp: str
) -> PlannedItem:
    due = subject.due if isinstance(subject, Deadline) else subject.since
    key = f"{subject.ref_kind}:{subject.ref_id}:{due.isoformat()}:{label}:{audience}"
    return PlannedItem(key, label, subject, day, fp)


def plan_items(
    snapshot: Snapshot,
    as_of: date,
    settings: ReminderSettings,
    coordinators: dict[int, list[_Person]],
    last_nudges: Mapping[int, LastNudge] | None = None,
) -> dict[tuple[str, str], list[PlannedItem]]:
    """Items due on ``as_of`` (or caught up, or nudges due before the next sweep), grouped
    by (outbox kind, audience); ``last_nudges``: per action, its pilot's last nudge.

    Audience ``p<person id>`` is a pilot, ``c<person id>`` a coordinator, ``c*`` the
    coordinator tag's channels (territory without a coordinator)."""
    window_start = as_of - _days(settings.catch_up_days)
    grouped: dict[tuple[str, str], list[PlannedItem]] = defaultdict(list)
    days: dict[date, tuple[date, str] | None] = {}  # many deadlines share a due date

    def day_for(due: date) -> tuple[date, str] | None:
        if due not in days:
            days[due] = reminder_day(
                due, as_of, window_start, settings.offsets_days, settings.overdue_every_days
            )
        return days[due]

    def to_coordinators(
        subject: Deadline, day: date, label: str, fingerprint: str
    ) -> Iterable[tuple[tuple[str, str], PlannedItem]]:
        people = coordinators.get(subject.action.territory_id) or []
        audiences = [f"c{p.id}" for p in people] or ["c*"]
        for audience in audiences:
            yield (ESCALATION, audience), _item(subject, day, label, audience, fingerprint)

    escalate_after = _days(settings.escalate_after_days)  # once, not per deadline
    escalation_label = f"E+{settings.escalate_after_days}"
    for deadline in snapshot.deadlines:
        found = day_for(deadline.due)
        if found is not None:
            day, label = found
            if deadline.pilot_id is not None:
                audience = f"p{deadline.pilot_id}"
                item = _item(deadline, day, label, audience, deadline.fingerprint())
                grouped[(REMINDER, audience)].append(item)
            else:
                for group, item in to_coordinators(deadline, day, label, deadline.fingerprint()):
                    grouped[group].append(item)
        escalation = deadline.due + escalate_after
        if deadline.pilot_id is not None and window_start <= escalation <= as_of:
            label = escalation_label
            fingerprint = deadline.fingerprint(with_pilot=False)
            for group, item in to_coordinators(deadline, escalation, label, fingerprint):
                grouped[group].append(item)
    for silence in snapshot.silences:
        last = (last_nudges or {}).get(silence.action.id)
        period = 7 * settings.nudge_after_weeks
        horizon = as_of + _days(settings.catch_up_days)  # the next sweep runs by then
        for day, weeks in nudge_days(silence.since, last, as_of, window_start, horizon, period):
            audience = f"p{silence.action.pilot_id}"
            item = _item(silence, day, f"N{weeks}", audience, silence.fingerprint())
            grouped[(REMINDER, audience)].append(item)
    return grouped


# ---------------------------------------------------------------------------------------------
# Compute: the query batch


def _territory_scope(
    session: Session, codes: Sequence[str]
) -> tuple[dict[int, str], set[int] | None]:
    t = Territory.__table__.c  # type: ignore[attr-defined]
    names = {row.id: row.name for row in session.execute(sa.select(t.id, t.name, t.code))}
    if not codes:
        return names, None
    by_code = {row.code: row.id for row in session.execute(sa.select(t.id, t.code))}
    unknown = [c for c in codes if c not in by_code]
    if unknown:
        raise unknown_territories(unknown)
    return names, {by_code[c] for c in codes}


@dataclass(frozen=True, slots=True)
class _Person:
    """The four columns a sweep reads of a person (a SQLModel ``Person`` costs ~0.5 ms to
    build, and a national sweep reads a few thousand)."""

    id: int
    territory_id: int
    full_name: str
    email: str


def _people(session: Session, ids: set[int]) -> dict[int, _Person]:
    found: dict[int, _Person] = {}
    p = Person.__table__.c  # type: ignore[attr-defined]
    ordered = sorted(ids)
    for start in range(0, len(ordered), 2000):
        for row in session.execute(
            sa.select(p.id, p.territory_id, p.full_name, p.email).where(
                one_of(p.id, ordered[start : start + 2000])
            )
        ):
            found[row.id] = _Person(row.id, row.territory_id, row.full_name, row.email)
    return found


def _coordinators(session: Session, territory_ids: set[int] | None) -> dict[int, list[_Person]]:
    p = Person.__table__.c  # type: ignore[attr-defined]
    r = PersonRole.__table__.c  # type: ignore[attr-defined]
    query = (
        sa.select(p.id, p.territory_id, p.full_name, p.email)
        .join(PersonRole, r.person_id == p.id)
        .where(r.role == Role.COORDINATOR.value)
        .order_by(p.full_name)
    )
    if territory_ids is not None:
        query = query.where(p.territory_id.in_(sorted(territory_ids)))
    found: dict[int, list[_Person]] = defaultdict(list)
    for row in session.execute(query):
        found[row.territory_id].append(_Person(row.id, row.territory_id, row.full_name, row.email))
    return found


def _last_nudges(session: Session, action_ids: Sequence[int]) -> dict[int, LastNudge]:
    """Per action, its last « Où en êtes-vous ? » not dropped: the Paris day it was enqueued,
    its due day (an action's nudges are planned in date order: both maxima are its own)."""
    found: dict[int, LastNudge] = {}
    ordered = sorted(set(action_ids))
    for start in range(0, len(ordered), 2000):
        rows = session.execute(
            sa.select(I.c.ref_id, sa.func.max(M.c.created_at), sa.func.max(I.c.remind_on))
            .join(M, M.c.id == I.c.message_id)
            .where(
                I.c.ref_kind == NUDGE,
                one_of(I.c.ref_id, ordered[start : start + 2000]),
                M.c.status != OutboxStatus.DROPPED.value,
            )
            .group_by(I.c.ref_id)
        )
        for action_id, created, due in rows:
            aware = created if created.tzinfo is not None else created.replace(tzinfo=UTC)
            found[action_id] = LastNudge(paris_date(aware), due)
    return found


def live_item_keys(
    session: Session,
    keys: Iterable[str] | None = None,
    *,
    since: date | None = None,
    exclude: Sequence[int] = (),
) -> set[str]:
    """Item keys already in a live (not dropped) reminder or escalation message."""
    query = (
        sa.select(I.c.item_key)
        .join(M, M.c.id == I.c.message_id)
        .where(M.c.status != OutboxStatus.DROPPED.value, M.c.kind.in_(KINDS))
    )
    if exclude:
        query = query.where(M.c.id.not_in(sorted(exclude)))
    if since is not None:
        query = query.where(I.c.remind_on >= since)
    if keys is None:
        return set(session.execute(query).scalars())
    found: set[str] = set()
    wanted = sorted(set(keys))
    for start in range(0, len(wanted), 2000):
        chunk = wanted[start : start + 2000]
        found.update(session.execute(query.where(one_of(I.c.item_key, chunk))).scalars())
    return found


@dataclass(frozen=True)
class _Source:
    id: int
    kind: str
    address: str
    status: str
    items: list[Any]


def _unsent_sources(
    session: Session, now: datetime, territory_ids: set[int] | None
) -> list[_Source]:
    """Unsent reminder messages that a sweep may fold into the day's e-mail."""
    query = sa.select(M.c.id, M.c.kind, M.c.address, M.c.status, M.c.territory_id).where(
        M.c.kind.in_(KINDS),
        M.c.created_at >= now - CARRY_HORIZON,
        sa.or_(
            M.c.status == OutboxStatus.PENDING.value,
            sa.and_(
                M.c.status == OutboxStatus.DROPPED.value,
                M.c.drop_reason == "stale",
                M.c.superseded_by.is_(None),
            ),
        ),
    )
    rows = [
        r
        for r in session.execute(query)
        if territory_ids is None or r.territory_id in territory_ids
    ]
    if not rows:
        return []
    items: dict[int, list[Any]] = defaultdict(list)
    ids = [r.id for r in rows]
    for start in range(0, len(ids), 2000):
        for item in session.execute(
            sa.select(
                I.c.message_id,
                I.c.item_key,
                I.c.ref_kind,
                I.c.ref_id,
                I.c.fingerprint,
                I.c.remind_on,
            ).where(one_of(I.c.message_id, ids[start : start + 2000]))
        ):
            items[item.message_id].append(item)
    return [_Source(r.id, r.kind, r.address, r.status, items[r.id]) for r in rows]


def compute_plan(
    session: Session,
    as_of: date,
    settings: ReminderSettings | None = None,
    *,
    now: datetime | None = None,
) -> ReminderPlan:
    """Everything to send for ``as_of``: one query batch, then pure Python."""
    settings = settings or ReminderSettings()
    now = now or utcnow()
    names, territory_ids = _territory_scope(session, settings.territories)
    snapshot = load_snapshot(session, territory_ids=territory_ids, funding=settings.funding)
    coordinators = _coordinators(session, territory_ids)
    last_nudges = _last_nudges(session, [s.action.id for s in snapshot.silences])
    grouped = plan_items(snapshot, as_of, settings, coordinators, last_nudges)
    choices = _follow_choices(session, grouped)
    held, behalf = _reroute_absent(session, grouped, as_of, coordinators)
    window_start = as_of - _days(settings.catch_up_days)
    already = live_item_keys(session, since=window_start)
    if between_planning_steps is not None:
        between_planning_steps()
    already_queued = 0
    for group, items in list(grouped.items()):
        fresh = [i for i in items if i.key not in already]
        already_queued += len(items) - len(fresh)
        if fresh:
            grouped[group] = fresh
        else:
            del grouped[group]

    people_ids = {int(a[1:]) for _, a in grouped if a != "c*"}
    carry_from, keep_pending = _fold_unsent(
        session, now, as_of, territory_ids, snapshot, grouped, people_ids
    )
    escalated_pilots = {
        i.subject.action.pilot_id
        for (kind, _), items in grouped.items()
        if kind == ESCALATION
        for i in items
        if i.subject.action.pilot_id is not None
    }
    people = _people(session, people_ids | escalated_pilots)
    batches = _ahead(_batches(grouped, people, carry_from), as_of, now)
    _sending_days(batches, choices, now, held)
    contacts = {
        tid: [mailbox_of(p.full_name, p.email) for p in people_list]
        for tid, people_list in coordinators.items()
    }
    pilots = {
        pid: mailbox_of(people[pid].full_name, people[pid].email)
        for pid in escalated_pilots
        if pid in people
    }
    return ReminderPlan(
        as_of,
        _merge_by_address(batches),
        names,
        contacts,
        pilots,
        keep_pending,
        already_queued,
        behalf,
    )


def _follow_choices(session: Session, grouped: dict[tuple[str, str], list[PlannedItem]]) -> Choices:
    """Leave out the items of the categories a pilot chose never to receive (deadline
    reminders, « Où en êtes-vous ? » nudges); their choices, for the sending days."""
    pilots = {int(a[1:]) for kind, a in grouped if kind == REMINDER and a.startswith("p")}
    choices = load_choices(session, pilots)
    for (kind, audience), items in list(grouped.items()):
        if kind != REMINDER or not audience.startswith("p") or not choices:
            continue
        person = int(audience[1:])
        kept = [
            i
            for i in items
            if choices.get((person, _category(i)), IMMEDIATELY).frequency is not Frequency.NEVER
        ]
        if kept:
            grouped[(kind, audience)] = kept
        else:
            del grouped[(kind, audience)]
    return choices


def _category(item: PlannedItem) -> Category:
    return Category.NUDGES if item.subject.ref_kind == NUDGE else Category.DEADLINES


def _sending_days(
    batches: list[Batch], choices: Choices, now: datetime, held: dict[int, datetime]
) -> None:
    """A pilot's e-mail that waits for their daily or weekly sending, or for their return,
    is written for the day it goes out (« dans 2 jours » counted from that day)."""
    for batch in batches:
        person = batch.recipient.person_id if batch.recipient else None
        if batch.kind != REMINDER or person is None or not (choices or person in held):
            continue
        batch.hold_until = held.get(person)
        categories = categories_of(REMINDER, {i.subject.ref_kind for i in batch.items})
        due = max(now, batch.hold_until or now, batch.ahead or now)
        at = earliest_send(choices_for(choices, person, categories), due, None)
        if at is not None and paris_date(at) > paris_date(now):
            batch.send_on = paris_date(at)


def _absences(session: Session, people: set[int], as_of: date) -> dict[int, Away]:
    a = PersonAbsence.__table__.c  # type: ignore[attr-defined]
    found: dict[int, Away] = {}
    if not people:
        return found
    for row in session.execute(
        sa.select(a.person_id, a.starts_on, a.ends_on, a.delegate_id, a.hold)
        .where(
            one_of(a.person_id, sorted(people)),
            a.starts_on <= as_of,
            a.ends_on >= as_of,
            a.cancelled_at.is_(None),
        )
        .order_by(a.id)
    ):
        found[row.person_id] = Away(*row)  # the latest recorded wins
    return found


def _reroute_absent(
    session: Session,
    grouped: dict[tuple[str, str], list[PlannedItem]],
    as_of: date,
    coordinators: dict[int, list[_Person]],
) -> tuple[dict[int, datetime], dict[int, str]]:
    """Pilots away on ``as_of``: their items go to their delegate (re-keyed to the delegate,
    the e-mail saying on whose behalf) or wait for their return; a deadline that fell due
    during the absence is told to the coordinator(s). Returns (pilot -> when held items go
    out, pilot -> name)."""
    pilots = {int(a[1:]) for kind, a in grouped if kind == REMINDER and a.startswith("p")}
    absences = _absences(session, pilots, as_of)
    held: dict[int, datetime] = {}
    for pilot, away in absences.items():
        items = grouped.pop((REMINDER, f"p{pilot}"))
        for item in items:
            s = item.subject
            if isinstance(s, Deadline) and away.starts_on <= s.due <= as_of:
                audiences = [f"c{p.id}" for p in coordinators.get(s.action.territory_id, [])]
                fingerprint = s.fingerprint(with_pilot=False)
                for audience in audiences or ["c*"]:
                    told = _item(s, as_of, ABSENT, audience, fingerprint)
                    grouped.setdefault((ESCALATION, audience), []).append(told)
        if away.delegates:
            delegate = f"p{away.delegate_id}"
            grouped.setdefault((REMINDER, delegate), []).extend(
                _item(i.subject, i.remind_on, i.label, delegate, i.fingerprint) for i in items
            )
        else:
            grouped[(REMINDER, f"p{pilot}")] = items
            held[pilot] = resume_at(away)
    names = {pid: p.full_name for pid, p in _people(session, set(absences)).items()}
    return held, names


ABSENT = "ABS"  # label of a coordinator's item: a deadline fell due while its pilot is away


def _fold_unsent(
    session: Session,
    now: datetime,
    as_of: date,
    territory_ids: set[int] | None,
    snapshot: Snapshot,
    grouped: dict[tuple[str, str], list[PlannedItem]],
    people_ids: set[int],
) -> tuple[dict[tuple[str, str], list[int]], int]:
    """Unsent messages: fold their still-valid items into today's e-mail of the same person
    when that person gets one anyway, or when some of their items went stale. Updates
    `grouped` and `people_ids`; returns the messages each group replaces, and how many
    messages stay pending as they are."""
    current = snapshot.fingerprints()
    sources = _unsent_sources(session, now, territory_ids)
    source_keys = [i.item_key for s in sources for i in s.items]
    elsewhere = live_item_keys(session, source_keys, exclude=[s.id for s in sources])
    carried: dict[tuple[str, str], list[PlannedItem]] = defaultdict(list)
    carry_from: dict[tuple[str, str], list[int]] = defaultdict(list)
    keep_pending = 0
    for source in sources:
        valid: list[PlannedItem] = []
        for item in source.items:
            subject = current.get((item.ref_kind, item.ref_id))
            if subject is None or not matches(item.fingerprint, subject.fingerprint()):
                continue
            if item.item_key not in elsewhere:
                label = item.item_key.split(":")[3]
                valid.append(
                    PlannedItem(item.item_key, label, subject, item.remind_on, item.fingerprint)
                )
        audience = _audience_of(source)
        group = (source.kind, audience)
        all_fresh = len(valid) == len(source.items)
        # Enqueued ahead for a later day: it waits for it, unless some of its items went stale
        # (then its valid ones are enqueued again for their day, by `_ahead`).
        ahead = bool(source.items) and min(i.remind_on for i in source.items) > as_of
        if (
            source.status == OutboxStatus.PENDING.value
            and all_fresh
            and (group not in grouped or ahead)
        ):
            keep_pending += 1
            continue
        carry_from[group].append(source.id)
        carried[group].extend(valid)
        if audience.startswith("p") or (audience.startswith("c") and audience != "c*"):
            people_ids.add(int(audience[1:]))
    for group in set(grouped) | set(carried):
        merged = {i.key: i for i in grouped.get(group, [])}
        for item in carried.get(group, []):
            merged.setdefault(item.key, item)
        grouped[group] = list(merged.values())
    return carry_from, keep_pending


def _batches(
    grouped: dict[tuple[str, str], list[PlannedItem]],
    people: dict[int, _Person],
    carry_from: dict[tuple[str, str], list[int]],
) -> list[Batch]:
    batches: list[Batch] = []
    for (kind, audience), items in sorted(grouped.items()):
        person = people.get(int(audience[1:])) if audience != "c*" else None
        recipient = (
            Recipient(mailbox_of(person.full_name, person.email), person.id)
            if person is not None
            else None
        )
        address = person.email.strip().lower() if person is not None else ""
        batches.append(
            Batch(
                kind=kind,
                address=address,
                recipient=recipient,
                territory_ids={i.subject.action.territory_id for i in items},
                items=sorted(items, key=_order),
                carry_from=carry_from.get((kind, audience), []),
            )
        )
    return batches


def _ahead(batches: list[Batch], as_of: date, now: datetime) -> list[Batch]:
    """The items due after ``as_of`` (nudges enqueued ahead) leave their batch for one of
    their own day, sent then, at the sweep's time of day."""
    found: list[Batch] = []
    for batch in batches:
        later: dict[date, list[PlannedItem]] = defaultdict(list)
        for item in batch.items:
            if item.remind_on > as_of:
                later[item.remind_on].append(item)
        if later:
            batch.items = [i for i in batch.items if i.remind_on <= as_of]
            if batch.items:
                batch.territory_ids = {i.subject.action.territory_id for i in batch.items}
        found.append(batch)
        for day, items in sorted(later.items()):
            found.append(
                Batch(
                    kind=batch.kind,
                    address=batch.address,
                    recipient=batch.recipient,
                    territory_ids={i.subject.action.territory_id for i in items},
                    items=items,
                    send_on=day,
                    ahead=sent_ahead_at(day, now),
                )
            )
    return found


def _audience_of(source: _Source) -> str:
    keys = [i.item_key for i in source.items]
    return keys[0].rsplit(":", 1)[1] if keys else ("c*" if not source.address else "p0")


def _merge_by_address(batches: list[Batch]) -> list[Batch]:
    """One e-mail per address and kind, even when one address is a Person of several
    territories (a regional officer piloting actions in two of them), and one channel
    message for all the territories without a coordinator (address "")."""
    merged: dict[tuple[str, str, datetime | None], Batch] = {}
    for batch in batches:
        key = (batch.kind, batch.address, batch.ahead)
        target = merged.setdefault(key, batch)
        if target is not batch:
            target.items = sorted([*target.items, *batch.items], key=_order)
            target.territory_ids |= batch.territory_ids
            target.carry_from.extend(batch.carry_from)
    return [b for b in merged.values() if b.items or b.carry_from]


def _due(item: PlannedItem) -> date:
    s = item.subject
    return s.due if isinstance(s, Deadline) else s.since


def _order(item: PlannedItem) -> tuple[Any, ...]:
    return (_due(item), item.subject.action.number, item.key)


# ---------------------------------------------------------------------------------------------
# Enqueue: render and store, in one transaction


# Test seam: called inside compute_plan between its two reads of the outbox (what is already
# live, then what is still unsent). Tests set it to make another sweep run exactly there.
between_planning_steps: Callable[[], object] | None = None

_ADVISORY_KEY = 7203191005  # "reminders" sweep, one for every territory


def lock_sweeps(session: Session) -> None:
    """Serialise sweeps: the first statement of the transaction that plans and enqueues.

    PostgreSQL: a transaction-level advisory lock. SQLite: a write that matches no row, which
    takes the database's write lock at once (the driver opens the transaction before it), so
    every read of the plan that follows sees the last committed sweep and no other sweep can
    commit before this one does."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_KEY})
    else:
        session.execute(sa.update(M).where(M.c.id == -1).values(attempts=M.c.attempts))


@dataclass
class EnqueueSummary:
    messages: int = 0  # rows created
    items: int = 0
    superseded: int = 0  # unsent messages folded into a newer one
    recreated: int = 0  # dropped rows of the same messages, created again
    already_queued: int = 0  # items an earlier sweep had queued already: nothing new
    existing: int = 0
    invalid: list[str] = field(default_factory=list)


def enqueue_plan(
    uow: UnitOfWork,
    plan: ReminderPlan,
    *,
    correlation_id: str | None = None,
    now: datetime | None = None,
) -> EnqueueSummary:
    """Render every batch and store it in the outbox (the caller commits).

    ``plan`` must have been computed in the same transaction, after :func:`lock_sweeps`
    (:func:`plan_and_enqueue` does both): otherwise a sweep that committed in between makes
    this one drop its rows."""
    now = now or utcnow()
    session = uow.session
    summary = EnqueueSummary(already_queued=plan.already_queued)
    planned = [i.key for b in plan.batches for i in b.items]
    sources = sorted({sid for b in plan.batches for sid in b.carry_from})
    # Re-check inside the transaction: a sweep that ran in between wins.
    taken = live_item_keys(session, planned, exclude=sources)
    dropped: set[int] = set()
    if sources:
        dropped = set(
            session.execute(
                sa.update(M)
                .where(
                    M.c.id.in_(sources),
                    sa.or_(
                        M.c.status == OutboxStatus.PENDING.value,
                        sa.and_(
                            M.c.status == OutboxStatus.DROPPED.value, M.c.drop_reason == "stale"
                        ),
                    ),
                )
                .values(
                    status=OutboxStatus.DROPPED.value,
                    drop_reason="superseded",
                    last_error=f"Remplacé par le rappel du {fr.format_date(plan.as_of)} (regroupé,"
                    " sans les éléments périmés).",
                )
                .returning(M.c.id)
            ).scalars()
        )
        summary.superseded = len(dropped)
        # A source being sent right now by another round keeps its items.
        lost = {sid for sid in sources if sid not in dropped}
        if lost:
            taken |= live_item_keys(session, planned)
    messages: list[tuple[Batch, NewMessage]] = []
    settings = load_settings()  # once per sweep, not per e-mail (it reads the environment)
    for batch in plan.batches:
        batch.items = [i for i in batch.items if i.key not in taken]
        if batch.items:
            messages.append((batch, render_batch(batch, plan, settings)))
    summary.recreated = _release_dropped_keys(session, [m.key for _, m in messages])
    result = enqueue(uow, [m for _, m in messages], correlation_id=correlation_id, now=now)
    summary.messages, summary.existing = len(result.created), result.existing
    summary.invalid = result.invalid
    summary.items = sum(len(b.items) for b, _ in messages)
    if dropped:
        ids = _ids_by_key(session, [m.key for _, m in messages])
        for batch, message in messages:
            mine = [sid for sid in batch.carry_from if sid in dropped]
            if mine and message.key in ids:
                new_id = ids[message.key]  # never itself: its key was released above
                session.execute(
                    sa.update(M)
                    .where(M.c.id.in_(mine), M.c.id != new_id)
                    .values(superseded_by=new_id)
                )
    return summary


def plan_and_enqueue(
    engine: Engine,
    as_of: date,
    settings: ReminderSettings | None = None,
    *,
    correlation_id: str | None = None,
    now: datetime | None = None,
) -> tuple[ReminderPlan, EnqueueSummary]:
    """Plan the day and enqueue it in ONE transaction that starts with :func:`lock_sweeps`:
    two sweeps of a day at once give exactly what one would (the second finds the first's
    rows). A database locked for too long: ``DatabaseBusy``, a French message."""

    def attempt() -> tuple[ReminderPlan, EnqueueSummary]:
        with unit_of_work(engine) as uow:
            lock_sweeps(uow.session)
            plan = compute_plan(uow.session, as_of, settings, now=now)
            summary = enqueue_plan(uow, plan, correlation_id=correlation_id, now=now)
            uow.commit()
        return plan, summary

    return retry_when_busy(attempt, "la mise en file des rappels")


def enqueued_fr(summary: EnqueueSummary) -> str:
    """What a sweep put in the outbox, in French, saying why when it is nothing."""
    if not summary.messages:
        if summary.already_queued:
            return (
                f"aucun nouvel e-mail : {count_fr(summary.already_queued, 'échéance', 'échéances')}"
                " du jour déjà en file (par un passage précédent ou simultané)"
            )
        return "aucune échéance à rappeler ce jour-là"
    text = (
        f"{count_fr(summary.messages, 'e-mail mis', 'e-mails mis')} en file pour"
        f" {count_fr(summary.items, 'échéance', 'échéances')}"
    )
    if summary.superseded:
        folded = count_fr(
            summary.superseded, "message non envoyé regroupé", "messages non envoyés regroupés"
        )
        text += f", {folded} dans ceux du jour"
    if summary.recreated:
        recreated = count_fr(
            summary.recreated, "abandonné à tort recréé", "abandonnés à tort recréés"
        )
        text += f", {recreated}"
    return text


def _release_dropped_keys(session: Session, keys: list[str]) -> int:
    """Free the keys of dropped rows that today's plan wants again, so that it creates them.

    The plan only holds items that no live message carries, so a dropped row with one of its
    keys (stale, superseded by nothing, or by itself after the concurrent-sweep bug of issue
    20) is not covered by anything: without this, ``INSERT ... ON CONFLICT DO NOTHING`` would
    keep the dead row and the day would never be sent. The old row stays, as history, with
    its key suffixed by its id."""
    if not keys:
        return 0
    released = session.execute(
        sa.update(M)
        .where(
            M.c.key.in_(sorted(set(keys))),
            M.c.status == OutboxStatus.DROPPED.value,
            sa.or_(M.c.superseded_by.is_(None), M.c.superseded_by == M.c.id),
        )
        .values(key=M.c.key + "~" + sa.cast(M.c.id, sa.String))
    )
    return int(released.rowcount)  # type: ignore[attr-defined]


def _ids_by_key(session: Session, keys: list[str]) -> dict[str, int]:
    if not keys:
        return {}
    rows = session.execute(sa.select(M.c.key, M.c.id).where(M.c.key.in_(keys)))
    return {row.key: row.id for row in rows}


# ---------------------------------------------------------------------------------------------
# Rendering


@lru_cache(maxsize=4096)
def _date_fr(day: date) -> str:
    return fr.format_date(day)


@lru_cache(maxsize=65536)
def _phrase(due: date, as_of: date) -> str:
    return fr.deadline_phrase(due, as_of)


_plural = fr.plural  # one rule for French plurals (0 and 1 singular)


class _Fields(dict[str, Any]):
    """A row or an action block of the reminder templates. The templates ask ``row["url"] is
    defined`` (and ``behalf``) of every action: on a plain dict Jinja's lookup raises
    KeyError, then AttributeError, before giving its undefined (~30 000 times per national
    sweep). A missing key here gives the same undefined at once."""

    __slots__ = ()

    def __missing__(self, key: str) -> Any:
        return environment().undefined(obj=self, name=key)


def _row(
    item: PlannedItem,
    as_of: date,
    with_pilot: dict[int, str] | None = None,
    settings: Settings | None = None,
) -> dict[str, str]:
    s = item.subject
    action = s.action
    row = _Fields(number=action.number, title=action.title)
    if settings is not None and (url := settings.action_url(action.id)):
        row["url"] = url  # "Mettre à jour mon action" (tiflow web)
    if isinstance(s, Deadline):
        row.update(
            what=s.what[:1].upper() + s.what[1:],
            due=_date_fr(s.due),
            phrase=_phrase(s.due, as_of),
        )
    else:
        weeks = (as_of - s.since).days // 7
        since = _date_fr(s.since)
        row.update(
            what="Aucune note de suivi",
            due=since,
            phrase=f"depuis le {since} ({_plural(weeks, 'semaine', 'semaines')})"
            if s.last_note
            else f"depuis le début de l'action, le {since}",
        )
    if with_pilot is not None:
        row["pilot"] = with_pilot.get(action.pilot_id or 0, "aucun pilote désigné")
    return row


def render_batch(batch: Batch, plan: ReminderPlan, settings: Settings | None = None) -> NewMessage:
    as_of = batch.send_on or plan.as_of  # the day the person reads it
    territory = ", ".join(sorted(plan.territories.get(t, "") for t in batch.territory_ids))
    keys = sorted(i.key for i in batch.items)
    digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]
    recipients = [batch.recipient] if batch.recipient is not None else []
    name = batch.recipient.mailbox.split("<")[0].strip() if batch.recipient else ""
    greeting = f"Bonjour {name}," if name and "@" not in name else "Bonjour,"
    if batch.kind == REMINDER:
        subject, context = _pilot_message(batch, as_of, settings or load_settings(), plan.behalf)
        template, tag = "reminders", "pilots"
        contacts = sorted({c for t in batch.territory_ids for c in plan.coordinators.get(t, [])})
        context["contacts"] = contacts
    else:
        subject, context = _coordinator_message(batch, as_of, plan.pilots)
        template, tag = "escalation", "coordinator"
    reply = _reply_to(plan, batch)
    text, html = render(
        template,
        reply_to=reply,
        territory=territory,
        greeting=greeting,
        as_of=fr.format_date(as_of),
        **context,
    )
    return NewMessage(
        reply_to=reply.header if reply else None,
        key=f"{batch.kind}:{plan.as_of.isoformat()}:{digest}",
        kind=batch.kind,
        tag=tag,
        to=recipients,
        subject=subject[:SUBJECT_MAX],
        text=text,
        html=html,
        territory_id=next(iter(batch.territory_ids)) if len(batch.territory_ids) == 1 else None,
        items=[i.ref for i in batch.items],
        channels=batch.recipient is None,
        not_before=max(filter(None, (batch.hold_until, batch.ahead)), default=None),
    )


def _reply_to(plan: ReminderPlan, batch: Batch) -> ReplyTo | None:
    """Replies reach the territory's coordinator (the first one, by name)."""
    for territory_id in sorted(batch.territory_ids):
        for contact in plan.coordinators.get(territory_id, []):
            reply = _reply_of(contact)
            if reply is not None:
                return reply
    return None


@lru_cache(maxsize=4096)  # a territory's coordinator answers for every pilot of it
def _reply_of(contact: str) -> ReplyTo | None:
    name, address = parseaddr(contact)
    return ReplyTo(name or address, address) if address else None


def _pilot_message(
    batch: Batch, as_of: date, settings: Settings, behalf: dict[int, str]
) -> tuple[str, dict[str, Any]]:
    recipient = batch.recipient.person_id if batch.recipient else None

    def row_of(item: PlannedItem) -> dict[str, str]:
        row = _row(item, as_of, settings=settings)
        pilot = item.subject.action.pilot_id
        if pilot is not None and pilot != recipient and pilot in behalf:
            row["behalf"] = behalf[pilot]  # a delegate's e-mail: on whose behalf
        return row

    overdue, today, upcoming, nudges = [], [], [], []
    shown = _once_per_subject(batch.items)
    for item in shown:
        if item.subject.ref_kind == NUDGE:
            nudges.append(item)
        elif _due(item) < as_of:
            overdue.append(item)
        elif _due(item) == as_of:
            today.append(item)
        else:
            upcoming.append(item)
    sections = [
        {"title": title, "actions": _by_action([row_of(i) for i in items])}
        for title, items in (
            ("En retard", overdue),
            ("Aujourd'hui", today),
            ("À venir", upcoming),
        )
        if items
    ]
    deadlines = len(overdue) + len(today) + len(upcoming)
    if len(shown) == 1:
        (item,) = shown
        action = item.subject.action
        if nudges:
            subject = f"Où en êtes-vous ? {action.number} « {action.title} »"
        else:
            row = _row(item, as_of)
            subject = f"Rappel {action.number} « {action.title} » : {row['phrase']}"
    elif deadlines:
        subject = f"Rappel : {_plural(deadlines, 'échéance', 'échéances')}"
        if len(overdue) == deadlines:
            subject += " en retard"
        else:
            subject += " pour vos actions"
            if overdue:
                subject += f", dont {len(overdue)} en retard"
        if nudges:
            steps = _plural(len(nudges), "point d'étape", "points d'étape")
            subject += f" et {steps}"
    else:
        subject = f"Où en êtes-vous ? {_plural(len(nudges), 'action', 'actions')} sans nouvelles"
    return subject, {
        "sections": sections,
        "nudges": [row_of(i) for i in nudges],
    }


def _once_per_subject(items: list[PlannedItem]) -> list[PlannedItem]:
    """Each deadline (or silence) once, by its latest reminder: a weekly e-mail holding the
    J-7 and the J-1 of one milestone says it once, counted from the day it is read."""
    latest: dict[tuple[str, int], PlannedItem] = {}
    for item in items:
        key = (item.subject.ref_kind, item.subject.ref_id)
        if key not in latest or item.remind_on >= latest[key].remind_on:
            latest[key] = item
    return [i for i in items if latest[(i.subject.ref_kind, i.subject.ref_id)] is i]


def _by_action(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """One block per action (its number and title once, then its deadlines in date order),
    blocks in the order of the actions' numbers. The « Mettre à jour mon action » link (tiflow
    web, when configured) is the action's, so it comes once per block."""
    blocks: dict[str, dict[str, Any]] = {}
    for row in rows:  # rows come in due-date order: each block keeps it
        block = blocks.setdefault(
            row["number"], _Fields(number=row["number"], title=row["title"], items=[])
        )
        for extra in ("url", "behalf"):
            if extra in row:
                block[extra] = row[extra]
        block["items"].append(row)
    return [blocks[number] for number in sorted(blocks)]


def _coordinator_message(
    batch: Batch, as_of: date, pilots: dict[int, str]
) -> tuple[str, dict[str, Any]]:
    late = [i for i in batch.items if i.label.startswith("E+")]
    away = [i for i in batch.items if i.label == ABSENT]
    orphan = [i for i in batch.items if not i.label.startswith("E+") and i.label != ABSENT]
    parts = []
    if late:
        parts.append(f"{_plural(len(late), 'échéance', 'échéances')} en retard")
    if away:
        parts.append(f"{_plural(len(away), 'échéance', 'échéances')} d'un pilote absent")
    if orphan:
        parts.append(f"{_plural(len(orphan), 'échéance', 'échéances')} sans pilote")
    subject = "Alerte plan d'actions : " + " et ".join(parts)
    delay = late[0].label[2:] if late else ""
    return subject, {
        "late": _by_pilot([_row(i, as_of, pilots) for i in late]),
        "delay": delay,
        "orphans": _by_action([_row(i, as_of) for i in orphan]),
        "away": [_row(i, as_of, pilots) for i in away],
    }


def _by_pilot(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """An escalation's late deadlines per pilot (by name), then per action (its number and
    title once, then its deadlines): whom to call, about what."""
    per_pilot: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        per_pilot[row["pilot"]].append(row)
    return [
        {"pilot": pilot, "actions": _by_action(per_pilot[pilot])} for pilot in sorted(per_pilot)
    ]


# ---------------------------------------------------------------------------------------------
# The whole sweep, without Prefect (tests, CLI); the flow runs the same three steps as tasks.


@dataclass
class SweepReport:
    as_of: date
    plan_batches: int
    enqueued: EnqueueSummary
    delivery: DeliveryReport


def sweep(
    engine: Engine,
    deliverer: Deliverer,
    *,
    as_of: date | None = None,
    settings: ReminderSettings | None = None,
    policy: DeliveryPolicy | None = None,
    now: datetime | None = None,
    correlation_id: str | None = None,
    on_sent: Callable[[int], None] | None = None,
) -> SweepReport:
    """Compute, enqueue and deliver the reminders of ``as_of`` (default: today in Paris).

    ``now`` fixes the clock (the day's Paris date when ``as_of`` is not given, and the
    outbox's timestamps and back-off); ``deliverer`` must be open."""
    now = now or utcnow()
    day = as_of or paris_date(now)
    plan, summary = plan_and_enqueue(engine, day, settings, correlation_id=correlation_id, now=now)
    report = deliver_pending(
        engine,
        deliverer,
        policy=policy,
        now=now,
        correlation_id=correlation_id,
        on_sent=on_sent,
    )
    return SweepReport(day, len(plan.batches), summary, report)
