"""Deadlines and silences of open actions, loaded in a handful of batch queries.

A *deadline* is a date someone must act by: a milestone's due date, an action's planned end,
or a funding date (dossier due, decision expected, payment expected). A *silence* is an
action being carried out whose pilot has written no follow-up note for a while.

Each one has a ``(ref_kind, ref_id)`` reference and a *fingerprint* of the facts a reminder
about it depends on (the due date and the pilot). Reminders store the fingerprint they were
written for; :func:`current_fingerprints` gives today's, so a reminder whose due date, pilot
or state changed before it went out is recognised as stale and never sent. A deadline that no
longer applies (action closed, milestone done, funding decided) has no fingerprint at all.

Only open actions count (``models.lifecycle.OPEN_STATES``): nothing is ever reminded for a
completed, abandoned or rejected action.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from models import figures
from models.db import one_of
from models.lifecycle import OPEN_STATES, State
from models.money import ZERO, format_eur
from models.tables import (
    ActionSheet,
    CopilMeeting,
    FollowUpNote,
    Funding,
    Milestone,
    Organisation,
)

PARIS = ZoneInfo("Europe/Paris")

MILESTONE = "milestone"
ACTION_END = "action_end"
FUNDING_DOSSIER = "funding_dossier"
FUNDING_DECISION = "funding_decision"
FUNDING_PAYMENT = "funding_payment"
NUDGE = "nudge"
COPIL = "copil"
COPIL_MINUTES = "copil_minutes"  # a held COPIL whose minutes are not recorded yet
DEADLINE_KINDS = (MILESTONE, ACTION_END, FUNDING_DOSSIER, FUNDING_DECISION, FUNDING_PAYMENT)
FUNDING_KINDS = (FUNDING_DOSSIER, FUNDING_DECISION, FUNDING_PAYMENT)
REF_KINDS = (*DEADLINE_KINDS, NUDGE, COPIL, COPIL_MINUTES)

# "Où en êtes-vous ?" only makes sense once the action is being carried out.
EXECUTION_STATES = frozenset({State.VALIDATED, State.FUNDED, State.IN_PROGRESS})
ANY = "*"  # a fingerprint part that is not checked

Reader = Session | Connection  # the queries below run on either

_CHUNK = 2000  # ids per IN (...) list: far below SQLite's and PostgreSQL's parameter limits


def paris_date(instant: datetime) -> date:
    """The calendar day of an instant in Europe/Paris (naive datetimes are refused)."""
    if instant.tzinfo is None:
        raise ValueError(f"naive datetime {instant.isoformat()} has no time zone")
    return instant.astimezone(PARIS).date()


def is_late(due: date, as_of: date, done_on: date | None = None) -> bool:
    """« En retard »: past its due day (the due day itself is not late) and not done. The one
    rule the reminders, the digest, the budget report and `tiflow actions --en-retard` read."""
    return done_on is None and due < as_of


@dataclass(frozen=True, slots=True)
class ActionFacts:
    id: int
    territory_id: int
    number: str
    title: str
    state: State
    pilot_id: int | None
    start_date: date | None
    end_date: date | None
    created_on: date


@dataclass(frozen=True, slots=True)
class Deadline:
    ref_kind: str
    ref_id: int
    action: ActionFacts
    what: str  # French, e.g. « jalon « Choix du site » », « fin prévue de l'action »
    due: date

    @property
    def key(self) -> tuple[str, int]:
        return (self.ref_kind, self.ref_id)

    @property
    def pilot_id(self) -> int | None:
        return self.action.pilot_id

    def fingerprint(self, *, with_pilot: bool = True) -> str:
        pilot = (str(self.pilot_id) if self.pilot_id else "-") if with_pilot else ANY
        return f"{self.due.isoformat()}|{pilot}"


@dataclass(frozen=True, slots=True)
class Silence:
    """No follow-up note by the pilot since ``since`` (the last note, or the action's start)."""

    action: ActionFacts
    since: date
    last_note: date | None

    ref_kind = NUDGE

    @property
    def key(self) -> tuple[str, int]:
        return (NUDGE, self.action.id)

    @property
    def ref_id(self) -> int:
        return self.action.id

    def fingerprint(self) -> str:
        pilot = str(self.action.pilot_id) if self.action.pilot_id else "-"
        return f"{self.since.isoformat()}|{pilot}"


@dataclass
class Snapshot:
    """Open actions with their active deadlines and silences."""

    actions: dict[int, ActionFacts] = field(default_factory=dict)
    deadlines: list[Deadline] = field(default_factory=list)
    silences: list[Silence] = field(default_factory=list)

    def fingerprints(self) -> dict[tuple[str, int], Deadline | Silence]:
        found: dict[tuple[str, int], Deadline | Silence] = {d.key: d for d in self.deadlines}
        found.update((s.key, s) for s in self.silences)
        return found


def _chunks(ids: Collection[int]) -> Iterable[list[int]]:
    items = sorted(ids)
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _funder(short: str | None, name: str) -> str:
    return short or name


def load_snapshot(
    session: Reader,
    *,
    territory_ids: Collection[int] | None = None,
    action_ids: Collection[int] | None = None,
    funding: bool = True,
    silences: bool = True,
) -> Snapshot:
    """Open actions (all, or those of ``territory_ids`` / ``action_ids``) with their deadlines.

    Four queries whatever the size of the plan: actions, milestones, funding, last notes.
    """
    if action_ids is not None:
        snap = Snapshot()
        for chunk in _chunks(action_ids):
            part = _load(session, _queries("action"), {"ids": chunk}, funding, silences)
            snap.actions.update(part.actions)
            snap.deadlines.extend(part.deadlines)
            snap.silences.extend(part.silences)
        return snap
    if territory_ids is not None:
        ids = {"ids": sorted(territory_ids)}
        return _load(session, _queries("territory"), ids, funding, silences)
    return _load(session, _queries("all"), {}, funding, silences)


@dataclass(frozen=True)
class _Queries:
    actions: sa.Select[Any]
    milestones: sa.Select[Any]
    funding: sa.Select[Any]
    notes: sa.Select[Any]


@cache
def _queries(scope: str) -> _Queries:
    """The four statements of one scope ("all", "territory", "action"), built once per
    process: a page or a sweep pays for binding its ids, not for building and keying the
    statements again (the ids are an expanding parameter, ``IN (...)`` as before)."""
    a = ActionSheet.__table__.c  # type: ignore[attr-defined]
    m = Milestone.__table__.c  # type: ignore[attr-defined]
    f = Funding.__table__.c  # type: ignore[attr-defined]
    o = Organisation.__table__.c  # type: ignore[attr-defined]
    n = FollowUpNote.__table__.c  # type: ignore[attr-defined]
    ids: sa.BindParameter[Any] = sa.bindparam("ids", expanding=True)
    where: sa.ColumnElement[bool] = {
        "all": sa.true(),
        "territory": a.territory_id.in_(ids),
        "action": a.id.in_(ids),
    }[scope]
    open_scope = sa.and_(a.state.in_([s.value for s in OPEN_STATES]), where)
    carried_out = [s.value for s in EXECUTION_STATES]
    return _Queries(
        actions=sa.select(
            a.id,
            a.territory_id,
            a.number,
            a.title,
            a.state,
            a.pilot_id,
            a.start_date,
            a.end_date,
            a.created_at,
        ).where(open_scope),
        milestones=sa.select(m.id, m.action_id, m.title, m.due_date)
        .join(ActionSheet, a.id == m.action_id)
        .where(open_scope, m.done_on.is_(None)),
        funding=sa.select(
            f.id,
            f.action_id,
            o.short_name,
            o.name,
            f.dossier_due,
            f.decision_expected,
            f.payment_expected,
            f.decision_date,
            f.dossier_filed_on,
            f.granted,
            f.paid,
        )
        .join(ActionSheet, a.id == f.action_id)
        .join(Organisation, o.id == f.funder_id)
        .where(open_scope),
        notes=sa.select(n.action_id, n.author_id, sa.func.max(n.written_on).label("last"))
        .join(ActionSheet, a.id == n.action_id)
        .where(a.state.in_(carried_out), where)
        .group_by(n.action_id, n.author_id),
    )


def _load(
    session: Reader, queries: _Queries, ids: dict[str, Any], funding: bool, silences: bool
) -> Snapshot:
    snap = Snapshot()
    # Rows unpacked as tuples, in the statements' column order: a national plan reads tens of
    # thousands of rows, and a Row's attribute by name costs more than its position.
    actions = snap.actions
    for id_, territory, number, title, state, pilot, start, end, created in session.execute(
        queries.actions, ids
    ):
        actions[id_] = ActionFacts(
            id_, territory, number, title, State(state), pilot, start, end, paris_date(created)
        )
    if not actions:
        return snap
    deadlines = snap.deadlines
    for facts in actions.values():
        if facts.end_date is not None:
            deadlines.append(
                Deadline(ACTION_END, facts.id, facts, "fin prévue de l'action", facts.end_date)
            )
    deadlines.extend(
        Deadline(MILESTONE, id_, actions[action_id], f"jalon « {title} »", due)
        for id_, action_id, title, due in session.execute(queries.milestones, ids)
    )
    if funding:
        _load_funding(session.execute(queries.funding, ids), snap)
    if silences:
        _load_silences(session.execute(queries.notes, ids), snap)
    return snap


def _load_funding(rows: Iterable[Any], snap: Snapshot) -> None:
    for row in rows:
        action = snap.actions[row.action_id]
        funder = _funder(row.short_name, row.name)
        granted, paid = row.granted or ZERO, row.paid or ZERO
        undecided = row.decision_date is None
        # Each date stops its own reminder: the dossier once filed (or decided), the decision
        # once taken, the payment once paid in full.
        if row.dossier_due and undecided and row.dossier_filed_on is None and granted == ZERO:
            what = f"dépôt du dossier de financement ({funder})"
            snap.deadlines.append(Deadline(FUNDING_DOSSIER, row.id, action, what, row.dossier_due))
        if row.decision_expected and undecided:
            what = f"décision de financement attendue ({funder})"
            snap.deadlines.append(
                Deadline(FUNDING_DECISION, row.id, action, what, row.decision_expected)
            )
        if row.payment_expected and granted > ZERO and paid < granted:
            snap.deadlines.append(
                Deadline(
                    FUNDING_PAYMENT,
                    row.id,
                    action,
                    _payment_what(funder, granted, paid),
                    row.payment_expected,
                )
            )


def _payment_what(funder: str, granted: Decimal, paid: Decimal) -> str:
    """« versement attendu (Région), reste à verser 42 000,00 € sur 60 000,00 € accordés »."""
    left = figures.left_to_pay(granted, paid)
    return (
        f"versement attendu ({funder}), {figures.Figure.LEFT_TO_PAY.label.lower()}"
        f" {format_eur(left)} sur {format_eur(granted)} accordés"
    )


def _load_silences(rows: Iterable[Any], snap: Snapshot) -> None:
    last: dict[int, date] = {}
    for row in rows:
        action = snap.actions.get(row.action_id)
        # The pilot's own notes count, and notes without an author (imported, or written by
        # the coordinator on the pilot's behalf before authors were recorded).
        if action is None or row.author_id not in (None, action.pilot_id):
            continue
        if row.action_id not in last or row.last > last[row.action_id]:
            last[row.action_id] = row.last
    for action in snap.actions.values():
        if action.state not in EXECUTION_STATES or action.pilot_id is None:
            continue
        note = last.get(action.id)
        since = note or action.start_date or action.created_on
        snap.silences.append(Silence(action, since, note))


def current_fingerprints(
    session: Reader, refs: Mapping[str, Collection[int]]
) -> dict[tuple[str, int], str]:
    """Today's fingerprint of each reference still in force (absent: no longer applies).

    ``refs`` maps a ref_kind to ids. Escalations compare with ``fingerprint(with_pilot=False)``
    through the ``*`` wildcard (:func:`matches`), so both forms are served by the same value.
    """
    found: dict[tuple[str, int], str] = {}
    action_ids: set[int] = set()
    action_ids.update(refs.get(ACTION_END, ()), refs.get(NUDGE, ()))
    milestone_ids = set(refs.get(MILESTONE, ()))
    funding_ids = set().union(*(refs.get(k, ()) for k in FUNDING_KINDS))
    m = Milestone.__table__.c  # type: ignore[attr-defined]
    f = Funding.__table__.c  # type: ignore[attr-defined]
    for ids, table in ((milestone_ids, m), (funding_ids, f)):
        for chunk in _chunks(ids):
            action_ids.update(
                session.execute(sa.select(table.action_id).where(one_of(table.id, chunk))).scalars()
            )
    if action_ids:
        snap = load_snapshot(
            session,
            action_ids=action_ids,
            funding=bool(funding_ids),
            silences=bool(refs.get(NUDGE)),
        )
        for key, item in snap.fingerprints().items():
            if item.ref_id in refs.get(key[0], ()):
                found[key] = item.fingerprint()
    copil_ids = set(refs.get(COPIL, ()))
    c = CopilMeeting.__table__.c  # type: ignore[attr-defined]
    for chunk in _chunks(copil_ids):
        for row in session.execute(sa.select(c.id, c.held_at, c.status).where(one_of(c.id, chunk))):
            found[(COPIL, row.id)] = copil_fingerprint(row.held_at, row.status)
    for chunk in _chunks(set(refs.get(COPIL_MINUTES, ()))):
        for row in session.execute(
            sa.select(c.id, c.held_at, c.status).where(
                one_of(c.id, chunk), c.minutes_recorded_at.is_(None)
            )
        ):
            found[(COPIL_MINUTES, row.id)] = copil_fingerprint(row.held_at, row.status)
    return found


def copil_fingerprint(held_at: datetime, status: str) -> str:
    """A digest is written for one date and one status: moved or cancelled means stale."""
    return f"{held_at.astimezone(PARIS).isoformat(timespec='minutes')}|{status}"


def matches(expected: str, current: str | None) -> bool:
    """Does today's fingerprint still match the one a message was written for?"""
    if current is None:
        return False
    want, have = expected.split("|"), current.split("|")
    return len(want) == len(have) and all(w in (ANY, h) for w, h in zip(want, have, strict=True))
