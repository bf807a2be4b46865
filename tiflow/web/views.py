"""What the pages show, read in a few queries per page (no write here)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from models.deadlines import (
    ACTION_END,
    FUNDING_DECISION,
    FUNDING_DOSSIER,
    FUNDING_PAYMENT,
    MILESTONE,
    NUDGE,
    Deadline,
    load_snapshot,
)
from models.lifecycle import State
from models.money import ZERO
from models.outbox import OutboxItem, OutboxMessage, OutboxStatus
from models.tables import (
    ActionChange,
    ActionSheet,
    BudgetLine,
    CopilDecision,
    CopilMeeting,
    FollowUpNote,
    Funding,
    Indicator,
    Milestone,
    Organisation,
    Person,
    PersonRole,
    Territory,
    TransitionRecord,
)
from models.uow import UnitOfWork
from models.vocabulary import Axis, CopilStatus, Priority, Role
from tiflow.web.access import Principal

NEXT_DEADLINES = 3


@dataclass(frozen=True)
class Place:
    territory: Territory
    roles: tuple[str, ...]  # French labels


def territories_of(uow: UnitOfWork, principal: Principal) -> list[Place]:
    """The territories the person may open, with their roles there."""
    rows = uow.repo.territories()
    places = []
    for territory in rows:
        assert territory.id is not None
        roles = principal.roles_in(territory.id)
        if roles:
            places.append(Place(territory, tuple(r.label for r in sorted(roles))))
    return places


@dataclass(frozen=True)
class ActionLine:
    """What a row of the plan shows of its action (read as columns, not as an ORM object)."""

    id: int
    number: str
    title: str
    axis: Axis
    state: State
    pilot_id: int | None


@dataclass
class PlanRow:
    action: ActionLine
    pilot: str
    late: list[Deadline] = field(default_factory=list)
    upcoming: list[Deadline] = field(default_factory=list)
    budget: Decimal = ZERO

    @property
    def is_late(self) -> bool:
        return bool(self.late)


@dataclass(frozen=True)
class PlanFilters:
    axis: Axis | None = None
    state: State | None = None
    pilot_id: int | None = None
    late_only: bool = False

    @classmethod
    def parse(cls, axe: str, etat: str, pilote: str, retard: str) -> PlanFilters:
        """Unknown values are ignored (a filter link that went stale shows everything)."""
        return cls(
            axis=Axis(axe) if axe in Axis._value2member_map_ else None,
            state=State(etat) if etat in State._value2member_map_ else None,
            pilot_id=int(pilote) if pilote.isdigit() else None,
            late_only=retard == "1",
        )


def plan_rows(
    uow: UnitOfWork,
    territory: Territory,
    today: date,
    filters: PlanFilters | None = None,
    pilot_id: int | None = None,
) -> list[PlanRow]:
    """The territory's actions (or one pilot's), with what is late and what comes next."""
    filters = filters or PlanFilters()
    assert territory.id is not None
    wanted_pilot = pilot_id if pilot_id is not None else filters.pilot_id
    values = {
        "territory_id": territory.id,
        "pilot_id": wanted_pilot,
        "axis": filters.axis,
        "state": filters.state,
    }
    query = _plan_query(
        wanted_pilot is not None, filters.axis is not None, filters.state is not None
    )
    actions = [ActionLine(*row) for row in uow.session.execute(query, values)]
    narrowed = wanted_pilot is not None or filters.axis is not None or filters.state is not None
    people = pilots_of(uow, territory)
    budgets = dict(uow.session.exec(_BUDGET_BY_ACTION, params={"territory_id": territory.id}).all())
    # The deadlines of the actions shown: a pilot's page reads those of their own actions,
    # not the whole territory's.
    snapshot = (
        load_snapshot(uow.session, action_ids=[a.id for a in actions], silences=False)
        if narrowed
        else load_snapshot(uow.session, territory_ids=[territory.id], silences=False)
    )
    by_action: dict[int, list[Deadline]] = defaultdict(list)
    for deadline in snapshot.deadlines:
        by_action[deadline.action.id].append(deadline)
    rows = []
    for action in actions:
        # Ties of a day in a fixed order (the queries have none): every page lists them alike.
        deadlines = sorted(by_action.get(action.id, []), key=lambda d: (d.due, *d.key))
        row = PlanRow(
            action=action,
            pilot=people.get(action.pilot_id or 0, "—"),
            late=[d for d in deadlines if d.due < today],
            upcoming=[d for d in deadlines if d.due >= today][:NEXT_DEADLINES],
            budget=budgets.get(action.id) or ZERO,
        )
        if not filters.late_only or row.is_late:
            rows.append(row)
    return rows


# The pages' statements are built once per process (bound parameters, no values inside):
# a request pays for binding its values, not for building and keying the statement again.


@cache
def _plan_query(by_pilot: bool, by_axis: bool, by_state: bool) -> sa.Select[Any]:
    """The plan's actions (the columns of `ActionLine`, in its order), narrowed by the filters
    given (one statement per combination)."""
    a = ActionSheet.__table__.c  # type: ignore[attr-defined]
    query = sa.select(a.id, a.number, a.title, a.axis, a.state, a.pilot_id).where(
        a.territory_id == sa.bindparam("territory_id")
    )
    if by_pilot:
        query = query.where(a.pilot_id == sa.bindparam("pilot_id"))
    if by_axis:
        query = query.where(a.axis == sa.bindparam("axis"))
    if by_state:
        query = query.where(a.state == sa.bindparam("state"))
    return query.order_by(a.number)


_BUDGET_BY_ACTION = (
    select(BudgetLine.action_id, sa.func.sum(BudgetLine.amount))
    .join(ActionSheet, col(ActionSheet.id) == col(BudgetLine.action_id))
    .where(ActionSheet.territory_id == sa.bindparam("territory_id"))
    .group_by(col(BudgetLine.action_id))
)
_PEOPLE = Person.__table__.c  # type: ignore[attr-defined]
_NAMES = (
    sa.select(_PEOPLE.id, _PEOPLE.full_name)
    .where(_PEOPLE.territory_id == sa.bindparam("territory_id"))
    .order_by(_PEOPLE.full_name)
)


def pilots_of(uow: UnitOfWork, territory: Territory) -> dict[int, str]:
    """Names of the territory's people by id (two columns, no Person objects to build)."""
    rows = uow.session.execute(_NAMES, {"territory_id": territory.id})
    return {row.id: row.full_name for row in rows}


_ROLE = PersonRole.__table__.c  # type: ignore[attr-defined]
_PILOTS = (
    sa.select(_PEOPLE.id, _PEOPLE.full_name, _PEOPLE.email)
    .join(PersonRole, _ROLE.person_id == _PEOPLE.id)
    .where(_PEOPLE.territory_id == sa.bindparam("territory_id"), _ROLE.role == Role.PILOT)
    .order_by(_PEOPLE.full_name)
)


def pilot_choices(uow: UnitOfWork, territory: Territory) -> list[sa.Row[Any]]:
    """The territory's pilots for a choice list: id, full_name, email (no Person objects)."""
    return list(uow.session.execute(_PILOTS, {"territory_id": territory.id}))


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    actor: str
    text: str


@dataclass(frozen=True)
class FundingRow:
    funder: str
    line: Funding


@dataclass(frozen=True)
class SentMessage:
    created_at: datetime
    sent_at: datetime | None
    subject: str
    recipient: str
    status: str


@dataclass(frozen=True)
class Named:
    id: int
    full_name: str


@dataclass
class ActionPage:
    action: ActionSheet
    pilot: Named | None
    milestones: Sequence[sa.Row[Any]]  # id, title, due_date, done_on
    indicators: Sequence[Indicator]
    budget: Sequence[sa.Row[Any]]  # year, kind, amount
    budget_total: Decimal
    funding: list[FundingRow]
    granted_total: Decimal
    notes: list[tuple[sa.Row[Any], str]]  # (written_on, text, author_id), author's name
    history: list[HistoryEntry]
    messages: list[SentMessage]

    @property
    def priority(self) -> str:
        return Priority(self.action.priority).label


# The action's milestones, budget lines and notes as the columns the page shows (rows, not
# ORM objects: nothing on the page changes them).
_M = Milestone.__table__.c  # type: ignore[attr-defined]
_MILESTONES = (
    sa.select(_M.id, _M.title, _M.due_date, _M.done_on)
    .where(_M.action_id == sa.bindparam("action_id"))
    .order_by(_M.due_date, _M.id)
)
_INDICATORS = (
    select(Indicator)
    .where(Indicator.action_id == sa.bindparam("action_id"))
    .order_by(col(Indicator.id))
)
_B = BudgetLine.__table__.c  # type: ignore[attr-defined]
_BUDGET = (
    sa.select(_B.year, _B.kind, _B.amount)
    .where(_B.action_id == sa.bindparam("action_id"))
    .order_by(_B.year, _B.kind)
)
_FUNDING = (
    select(Funding, Organisation)
    .join(Organisation, col(Organisation.id) == col(Funding.funder_id))
    .where(Funding.action_id == sa.bindparam("action_id"))
    .order_by(col(Funding.year), col(Organisation.short_name))
)
_N = FollowUpNote.__table__.c  # type: ignore[attr-defined]
_NOTES = (
    sa.select(_N.written_on, _N.text, _N.author_id)
    .where(_N.action_id == sa.bindparam("action_id"))
    .order_by(_N.written_on.desc(), _N.id.desc())
)


def action_page(uow: UnitOfWork, territory: Territory, action: ActionSheet) -> ActionPage:
    assert action.id is not None and territory.id is not None
    s = uow.session
    ids = {"action_id": action.id}
    milestones = s.execute(_MILESTONES, ids).all()
    indicators = s.exec(_INDICATORS, params=ids).all()
    budget = s.execute(_BUDGET, ids).all()
    funding = [
        FundingRow(org.short_name or org.name, line)
        for line, org in s.exec(_FUNDING, params=ids).all()
    ]
    people = pilots_of(uow, territory)
    notes = [(note, people.get(note.author_id or 0, "—")) for note in s.execute(_NOTES, ids)]
    return ActionPage(
        action=action,
        pilot=_pilot(uow, action, people),
        milestones=milestones,
        indicators=indicators,
        budget=budget,
        budget_total=sum((b.amount for b in budget), ZERO),
        funding=funding,
        granted_total=sum((f.line.granted for f in funding), ZERO),
        notes=notes,
        history=history(uow, action),
        messages=messages_about(uow, territory, action, milestones, [f.line for f in funding]),
    )


_T = TransitionRecord.__table__.c  # type: ignore[attr-defined]
_TRANSITIONS = (
    sa.select(_T.at, _T.actor, _T.from_state, _T.to_state, _T.reason)
    .where(_T.action_id == sa.bindparam("action_id"))
    .order_by(_T.id)
)
_C = ActionChange.__table__.c  # type: ignore[attr-defined]
_CHANGES = sa.select(_C.at, _C.actor, _C.summary).where(_C.action_id == sa.bindparam("action_id"))


def _pilot(uow: UnitOfWork, action: ActionSheet, people: dict[int, str]) -> Named | None:
    """The pilot's name among the territory's people already read (no query of its own),
    else read (a pilot of another territory)."""
    if action.pilot_id is None:
        return None
    if action.pilot_id in people:
        return Named(action.pilot_id, people[action.pilot_id])
    found = uow.repo.person(action.pilot_id)
    return None if found is None or found.id is None else Named(found.id, found.full_name)


def history(uow: UnitOfWork, action: ActionSheet) -> list[HistoryEntry]:
    """Changes of state and other changes (progress reported), newest first (the columns
    shown only: rows, not history objects)."""
    ids = {"action_id": action.id}
    entries = [
        HistoryEntry(
            t.at,
            t.actor,
            f"{State(t.from_state).label} → {State(t.to_state).label}"
            + (f" : {t.reason}" if t.reason else ""),
        )
        for t in uow.session.execute(_TRANSITIONS, ids)
    ]
    entries += [HistoryEntry(c.at, c.actor, c.summary) for c in uow.session.execute(_CHANGES, ids)]
    return sorted(entries, key=lambda e: e.at, reverse=True)


def _messages_query() -> sa.Select[Any]:
    m, i = OutboxMessage.__table__.c, OutboxItem.__table__.c  # type: ignore[attr-defined]
    refs = [
        sa.and_(i.ref_kind.in_([ACTION_END, NUDGE]), i.ref_id == sa.bindparam("action_id")),
        sa.and_(
            i.ref_kind == MILESTONE,
            i.ref_id.in_(sa.bindparam("milestone_ids", expanding=True)),
        ),
        sa.and_(
            i.ref_kind.in_([FUNDING_DOSSIER, FUNDING_DECISION, FUNDING_PAYMENT]),
            i.ref_id.in_(sa.bindparam("funding_ids", expanding=True)),
        ),
    ]
    about = sa.select(i.message_id).where(sa.or_(*refs))
    named = m.key.like(sa.bindparam("key_pattern"))
    return (
        sa.select(m.created_at, m.sent_at, m.subject, m.recipient, m.status)
        .where(sa.or_(m.id.in_(about), named), m.kind != "sign_in")
        .order_by(m.created_at.desc(), m.id.desc())
        .limit(50)
    )


_MESSAGES = _messages_query()


def messages_about(
    uow: UnitOfWork,
    territory: Territory,
    action: ActionSheet,
    milestones: Sequence[sa.Row[Any]],
    funding: Sequence[Funding],
) -> list[SentMessage]:
    """Messages of the outbox about this action: reminders of its deadlines, nudges, notices
    (whose keys name the territory and the number)."""
    rows = uow.session.execute(
        _MESSAGES,
        {
            "action_id": action.id,
            "milestone_ids": [x.id for x in milestones],
            "funding_ids": [f.id for f in funding],
            "key_pattern": f"%:{territory.code}:{action.number}:%",
        },
    ).all()
    return [
        SentMessage(r.created_at, r.sent_at, r.subject, r.recipient, OutboxStatus(r.status).label)
        for r in rows
    ]


@dataclass(frozen=True)
class CopilRow:
    copil: CopilMeeting
    decisions: list[tuple[CopilDecision, ActionSheet]]


def copils(uow: UnitOfWork, territory: Territory) -> tuple[list[CopilMeeting], list[CopilRow]]:
    """Scheduled meetings (soonest first) and held ones with their decisions (latest first)."""
    meetings = uow.session.exec(
        select(CopilMeeting)
        .where(CopilMeeting.territory_id == territory.id)
        .order_by(col(CopilMeeting.held_at))
    ).all()
    upcoming = [c for c in meetings if c.status == CopilStatus.SCHEDULED]
    held = [c for c in reversed(meetings) if c.status == CopilStatus.HELD]
    return upcoming, [CopilRow(c, decisions_of(uow, c)) for c in held]


_DECISIONS = (
    select(CopilDecision, ActionSheet)
    .join(ActionSheet, col(ActionSheet.id) == col(CopilDecision.action_id))
    .where(CopilDecision.copil_id == sa.bindparam("copil_id"))
    .order_by(col(ActionSheet.number))
)


def decisions_of(uow: UnitOfWork, copil: CopilMeeting) -> list[tuple[CopilDecision, ActionSheet]]:
    return [
        (decision, action)
        for decision, action in uow.session.exec(_DECISIONS, params={"copil_id": copil.id}).all()
    ]
