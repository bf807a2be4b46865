"""Consolidate one year's budget for one territory (or all): exact figures, one SQL statement.

Amounts are integer cents in the database, so SQL sums them exactly; they come back through
the Money type as 2-place Decimals. One statement (`_consolidation_query`) does every sum:

1. the facts of the year — budget lines of that year ∪ funding rows of that year — grouped per
   action, with the action's first proposal, COPIL validation and funding instants (history)
   and its unfinished milestones due before the date of situation: a CTE computed once;
2. that per-action set grouped again per axis, state, firm commitment and territory;
3. the funding rows of the year grouped per funder.

Python then makes one pass over the result (one row per action or per coarser line, never per
fact) for what SQL cannot say portably: the late actions and their reasons, and the median
delays in Paris calendar days. Multi-year actions count in each year their budget lines and
funding rows name; investissement and fonctionnement stay apart.
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from flows.usecases.budget.calendar import PARIS, paris_today
from models import figures
from models.collector import collector_paused
from models.deadlines import is_late
from models.lifecycle import OPEN_STATES, State
from models.money import ZERO, Money, format_eur
from models.repository import Repository
from models.tables import (
    ActionSheet,
    BudgetLine,
    CopilMeeting,
    Funding,
    Milestone,
    Organisation,
    Territory,
    TransitionRecord,
)
from models.uow import UnitOfWork
from models.vocabulary import Axis, BudgetKind, CopilStatus

ALL_TERRITORIES = "*"  # the scope of a consolidation over every territory
ALL_TERRITORIES_LABEL = "Tous les territoires"
OVER_GRANTED_SHOWN = 20  # over-granted actions a summary lists (`Consolidation.over_granted_shown`)


class View(StrEnum):
    """A way of cutting the year's figures; each is one sheet of the workbook."""

    AXIS = "axis"
    FUNDER = "funder"
    ACTION = "action"
    STATE = "state"
    COMMITMENT = "commitment"
    TERRITORY = "territory"
    LATE = "late"
    DROPPED = "dropped"

    @property
    def label(self) -> str:
        return {
            View.AXIS: "Par axe",
            View.FUNDER: "Par financeur",
            View.ACTION: "Par action",
            View.STATE: "Par état",
            View.COMMITMENT: "Engagements fermes",
            View.TERRITORY: "Par territoire",
            View.LATE: "Actions en retard",
            View.DROPPED: "Rejetées ou abandonnées",
        }[self]


# Views that split the year's plan once: the sum of their lines is the year's total. Actions
# rejected or abandoned are out of the plan (models.figures): only in View.DROPPED.
PARTITION_VIEWS = (View.AXIS, View.ACTION, View.STATE, View.COMMITMENT, View.TERRITORY)
FIRM, NOT_FIRM = "ferme", "non-ferme"


@dataclass(frozen=True, slots=True)
class Figures:
    """Amounts of one line, all exact 2-place Decimals. Planned is split investissement /
    fonctionnement; requested, granted and paid come from the funding rows of the year;
    `over_granted` sums, per action, what is granted above its plan (`models.figures`)."""

    planned_investment: Decimal = ZERO
    planned_operating: Decimal = ZERO
    requested: Decimal = ZERO
    granted: Decimal = ZERO
    paid: Decimal = ZERO
    over_granted: Decimal = ZERO

    @property
    def planned(self) -> Decimal:
        return self.planned_investment + self.planned_operating

    @property
    def left_to_fund(self) -> Decimal:
        """Sum over the line's actions of `models.figures.left_to_fund`: an over-grant on one
        action never hides another's shortfall (max(p - g, 0) = p - g + max(g - p, 0))."""
        return self.planned - self.granted + self.over_granted

    @property
    def left_to_pay(self) -> Decimal:
        return figures.left_to_pay(self.granted, self.paid)

    def __add__(self, other: Figures) -> Figures:
        return Figures(*(a + b for a, b in zip(self.amounts(), other.amounts(), strict=True)))

    def __sub__(self, other: Figures) -> Figures:
        return Figures(*(a - b for a, b in zip(self.amounts(), other.amounts(), strict=True)))

    def amounts(self) -> tuple[Decimal, ...]:
        return (
            self.planned_investment,
            self.planned_operating,
            self.requested,
            self.granted,
            self.paid,
            self.over_granted,
        )

    @staticmethod
    def total(items: Iterable[Figures]) -> Figures:
        sums = [ZERO] * 6
        for item in items:
            for i, amount in enumerate(item.amounts()):
                sums[i] += amount
        return Figures(*sums)


_F = figures.Figure
MEASURES: tuple[tuple[str, str], ...] = (  # the labels are models.figures' own
    ("planned_investment", f"{_F.PLANNED.label} investissement"),
    ("planned_operating", f"{_F.PLANNED.label} fonctionnement"),
    ("planned", f"{_F.PLANNED.label} total"),
    ("requested", _F.REQUESTED.label),
    ("granted", _F.GRANTED.label),
    ("paid", _F.PAID.label),
    ("left_to_fund", _F.LEFT_TO_FUND.label),
    ("left_to_pay", _F.LEFT_TO_PAY.label),
    ("over_granted", _F.OVER_GRANTED.label),
)
# What a new version's change lists: the stored amounts (and the planned total), not the
# remainders derived from them, which would repeat each change.
CHANGE_MEASURES = tuple(m for m in MEASURES if m[0] not in ("left_to_fund", "left_to_pay"))


@dataclass(frozen=True, slots=True)
class Line:
    """One row of a view. `territory` + `key` identify it within its view across versions."""

    view: View
    key: str
    label: str
    figures: Figures
    action_count: int = 0
    territory: str = ""
    axis: Axis | None = None
    state: State | None = None
    firm_commitment: bool | None = None
    note: str = ""

    @property
    def identity(self) -> tuple[View, str, str]:
        return (self.view, self.territory, self.key)


@dataclass(frozen=True)
class Governance:
    """The figures evaluators ask for, over the actions of the year."""

    action_count: int = 0
    firm_count: int = 0
    late_count: int = 0
    median_days_to_validation: Decimal | None = None  # first proposal -> COPIL validation
    median_days_to_funding: Decimal | None = None  # validation -> funded
    validation_sample: int = 0  # actions measured for each median
    funding_sample: int = 0

    @property
    def firm_share(self) -> Decimal | None:
        """Share of the year's actions with a firm commitment, 0–1 to 4 places (None if none)."""
        if not self.action_count:
            return None
        return (Decimal(self.firm_count) / Decimal(self.action_count)).quantize(Decimal("0.0001"))


@dataclass(frozen=True)
class ValidatedBudget:
    """The year's budget as the COPIL validated it (per territory: its latest such COPIL)."""

    amount: Decimal
    on: date | None  # the COPIL's day; None when several territories' COPILs are summed

    def gap(self, planned: Decimal) -> Decimal:
        return figures.gap_to_validated(planned, self.amount)


@dataclass(frozen=True)
class Consolidation:
    year: int
    scope: str  # territory code, or ALL_TERRITORIES
    scope_label: str
    territory_id: int | None
    as_of: date
    lines: tuple[Line, ...]
    governance: Governance = field(default_factory=Governance)
    validated: ValidatedBudget | None = None

    def view(self, view: View) -> list[Line]:
        return list(self._views[view])

    def total(self, view: View = View.ACTION) -> Figures:
        totals = self._totals
        if view not in totals:
            totals[view] = Figures.total(line.figures for line in self._views[view])
        return totals[view]

    # The lines never change: each view is picked, and each total summed, once. A national
    # run reads them a dozen times (workbook, CSV, e-mail, artifacts, the run's log).
    @functools.cached_property
    def _views(self) -> dict[View, tuple[Line, ...]]:
        views: dict[View, list[Line]] = {view: [] for view in View}
        for line in self.lines:
            views[line.view].append(line)
        return {view: tuple(lines) for view, lines in views.items()}

    @functools.cached_property
    def _totals(self) -> dict[View, Figures]:
        return {}

    @property
    def is_empty(self) -> bool:
        return not self.lines

    def against_validated(self) -> list[tuple[str, Decimal | None]]:
        """The consolidated plan against the budget the COPIL validated, and what is out of
        the plan: (French label, amount) rows, shown alike by the e-mail and the workbook.
        The amount is None for a validated budget that no COPIL recorded."""
        planned = self.total().planned
        v = self.validated
        when = f" du {v.on:%d/%m/%Y}" if v and v.on else ""
        rows: list[tuple[str, Decimal | None]] = [
            (f"{figures.Figure.VALIDATED.label}{when}", v.amount if v else None),
            (f"{figures.Figure.PLANNED.label} consolidé (actions du plan)", planned),
            ("Écart (prévu consolidé − validé en COPIL)", v.gap(planned) if v else None),
        ]
        dropped = self.view(View.DROPPED)
        if dropped:
            numbers = ", ".join(line.key for line in dropped)
            rows.append(
                (
                    f"{figures.OUT_OF_PLAN_LABEL}, prévu non compté ({numbers})",
                    Figures.total(line.figures for line in dropped).planned,
                )
            )
        return rows

    def over_granted(self) -> list[Line]:
        """The actions granted more than they plan this year (flagged, never hidden)."""
        return [line for line in self.view(View.ACTION) if line.figures.over_granted > ZERO]

    def over_granted_shown(self) -> tuple[list[Line], int]:
        """What a summary (the run's artifact, the e-mail) lists of `over_granted`: every one
        up to `OVER_GRANTED_SHOWN`, beyond that the largest excesses; and how many it leaves
        out (the workbook lists them all). A national consolidation flags thousands: listed
        whole, its e-mail ran to 1.3 MB (text and HTML) and its artifact to 560 KB."""
        lines = self.over_granted()
        if len(lines) <= OVER_GRANTED_SHOWN:
            return lines, 0
        largest = sorted(lines, key=lambda line: line.figures.over_granted, reverse=True)
        return largest[:OVER_GRANTED_SHOWN], len(lines) - OVER_GRANTED_SHOWN


def consolidate(
    uow: UnitOfWork, year: int, territory: str | None = None, as_of: date | None = None
) -> Consolidation:
    """The year's figures for the territory with this code, or for all territories if None.

    `as_of` (default: today in Europe/Paris) is the date against which actions are late.
    An unknown territory raises NotFound; a year without budget lines or funding gives an
    empty consolidation.
    """
    return consolidate_with(uow.session, year, territory, as_of)


def consolidate_with(
    session: Session,
    year: int,
    territory: str | Territory | None = None,
    as_of: date | None = None,
) -> Consolidation:
    """`consolidate` on an open session (the digest reads the year's figures in its own).

    ``territory``: its code, or the territory itself when the caller has it (a page's): not
    looked up again."""
    with collector_paused():  # 12 000 lines of Decimals at national scale (models.collector)
        return _consolidate(session, year, territory, as_of)


def _consolidate(
    session: Session, year: int, territory: str | Territory | None, as_of: date | None
) -> Consolidation:
    as_of = as_of or paris_today()
    territory_id: int | None = None
    scope, scope_label = ALL_TERRITORIES, ALL_TERRITORIES_LABEL
    if territory is not None:
        found = (
            territory
            if isinstance(territory, Territory)
            else Repository(session).territory(territory)
        )
        territory_id, scope, scope_label = found.id, found.code, found.name

    parameters: dict[str, Any] = {"year": year, "as_of": as_of}
    if territory_id is not None:
        parameters["territory_id"] = territory_id
    result = session.execute(_statement(territory_id is not None), parameters)
    assert tuple(result.keys()) == _ROW, "columns of _consolidation_query changed"
    rows = result.all()
    by_view: dict[View, list[Line]] = {view: [] for view in View}
    to_validation: list[int] = []
    to_funding: list[int] = []
    # One pass over the statement's rows (one per action and one per coarser line), unpacked
    # by position: the columns of `_consolidation_query`, in its order.
    for (
        view_name,
        territory_code,
        key,
        label,
        axis,
        state,
        firm,
        count,
        *amounts,
        end_date,
        proposed_at,
        validated_at,
        funded_at,
        overdue,
        oldest_due,
    ) in rows:
        view = View(view_name)
        amounts_of = Figures(*amounts)
        if view not in (View.ACTION, View.DROPPED):
            by_view[view].append(_rollup_line(view, territory_code, key, label, amounts_of, count))
            continue
        note = _over_granted_note(amounts_of)
        line = Line(view, key, label, amounts_of, 1, territory_code, axis, state, firm, note)
        by_view[view].append(line)
        if view is View.DROPPED:
            continue
        if state in OPEN_STATES and ((end_date and is_late(end_date, as_of)) or overdue):
            by_view[View.LATE].append(_late_line(line, end_date, as_of, overdue, oldest_due))
        if proposed_at and validated_at:
            to_validation.append(_days_between(proposed_at, validated_at))
        if validated_at and funded_at:
            to_funding.append(_days_between(validated_at, funded_at))
    actions = by_view[View.ACTION]
    governance = Governance(
        action_count=len(actions),
        firm_count=sum(1 for action in actions if action.firm_commitment),
        late_count=len(by_view[View.LATE]),
        median_days_to_validation=_median(to_validation),
        validation_sample=len(to_validation),
        median_days_to_funding=_median(to_funding),
        funding_sample=len(to_funding),
    )
    lines = [line for view in View for line in sorted(by_view[view], key=_ORDER[view])]
    return Consolidation(
        year=year,
        scope=scope,
        scope_label=scope_label,
        territory_id=territory_id,
        as_of=as_of,
        lines=tuple(lines),
        governance=governance,
        validated=validated_budget(session, year, territory_id),
    )


def validated_budget(
    session: Session, year: int, territory_id: int | None
) -> ValidatedBudget | None:
    """What the COPIL validated for `year`: per territory the latest meeting (not cancelled)
    that recorded a budget for that year; summed over territories for an all-territories
    scope. None when no COPIL validated one."""
    c = CopilMeeting.__table__.c  # type: ignore[attr-defined]
    query = (
        sa.select(c.territory_id, c.held_at, c.validated_budget)
        .where(
            c.budget_year == year,
            c.validated_budget.is_not(None),
            c.status != CopilStatus.CANCELLED.value,
        )
        .order_by(c.held_at)
    )
    if territory_id is not None:
        query = query.where(c.territory_id == territory_id)
    latest: dict[int, tuple[datetime, Decimal]] = {}
    for row in session.execute(query):
        latest[row.territory_id] = (row.held_at, row.validated_budget)  # ordered: last wins
    if not latest:
        return None
    amount = sum((value for _, value in latest.values()), ZERO)
    days = {held.astimezone(PARIS).date() for held, _ in latest.values()}
    return ValidatedBudget(amount, days.pop() if len(latest) == 1 else None)


# --- the statement ---------------------------------------------------------------------------

_bl = BudgetLine.__table__  # type: ignore[attr-defined]
_fd = Funding.__table__  # type: ignore[attr-defined]
_act = ActionSheet.__table__  # type: ignore[attr-defined]
_ter = Territory.__table__  # type: ignore[attr-defined]
_org = Organisation.__table__  # type: ignore[attr-defined]
_tr = TransitionRecord.__table__  # type: ignore[attr-defined]
_ms = Milestone.__table__  # type: ignore[attr-defined]

_FACTS = ("planned_investment", "planned_operating", "requested", "granted", "paid")
_AMOUNTS = (*_FACTS, "over_granted")
_OUT_OF_PLAN = sorted(state.value for state in figures.OUT_OF_PLAN)
_STEPS = (State.PROPOSED, State.VALIDATED, State.FUNDED)
_ROW = (  # the columns of _consolidation_query, unpacked by position in consolidate()
    "view",
    "territory",
    "key",
    "label",
    "axis",
    "state",
    "firm_commitment",
    "action_count",
    *_AMOUNTS,
    "end_date",
    *(f"{step.value}_at" for step in _STEPS),
    "overdue_milestones",
    "oldest_due",
)


def _cents(column: Any) -> Any:
    """The raw integer cents of a Money column (no per-row conversion inside SQL)."""
    return sa.type_coerce(column, sa.BigInteger)


def _money_sum(column: Any, name: str) -> Any:
    """SUM of cents, read back through the Money type: an exact Decimal.

    The CAST keeps the sum an integer on PostgreSQL (SUM of BIGINT is NUMERIC there, which
    the driver would first turn into a slower Decimal)."""
    total = sa.cast(sa.func.coalesce(sa.func.sum(column), 0), sa.BigInteger)
    return sa.type_coerce(total, Money).label(name)


# The statement's parameters: it is built once per shape (`_statement`) and run with values.
_YEAR = sa.bindparam("year", type_=sa.Integer)
_TERRITORY = sa.bindparam("territory_id", type_=sa.Integer)
_AS_OF = sa.bindparam("as_of", type_=sa.Date)


@functools.cache
def _statement(one_territory: bool) -> Any:
    """The consolidation statement, national or for one territory, built once per process:
    building it is most of the cost of a one-territory consolidation (7 of 12 ms), and the
    same object each time also hits SQLAlchemy's compiled cache."""
    return _consolidation_query(_YEAR, _TERRITORY if one_territory else None, _AS_OF)


def _in_territory(territory_id: Any) -> sa.Select[Any]:
    return sa.select(_act.c.id).where(_act.c.territory_id == territory_id)


def _facts(year: Any, territory_id: Any | None) -> sa.Subquery:
    """Budget lines and funding rows of the year as one set of (action, 5 amounts) facts."""
    zero = sa.literal(0, sa.BigInteger)
    planned = sa.select(
        _bl.c.action_id,
        sa.case(
            (_bl.c.kind == BudgetKind.INVESTISSEMENT.value, _cents(_bl.c.amount)), else_=zero
        ).label("planned_investment"),
        sa.case(
            (_bl.c.kind == BudgetKind.FONCTIONNEMENT.value, _cents(_bl.c.amount)), else_=zero
        ).label("planned_operating"),
        zero.label("requested"),
        zero.label("granted"),
        zero.label("paid"),
    ).where(_bl.c.year == year)
    funded = sa.select(
        _fd.c.action_id,
        zero,
        zero,
        _cents(_fd.c.requested),
        _cents(_fd.c.granted),
        _cents(_fd.c.paid),
    ).where(_fd.c.year == year)
    if territory_id is not None:
        planned = planned.where(_bl.c.action_id.in_(_in_territory(territory_id)))
        funded = funded.where(_fd.c.action_id.in_(_in_territory(territory_id)))
    return sa.union_all(planned, funded).subquery("facts")


def _per_action(year: Any, territory_id: Any | None, as_of: Any) -> sa.CTE:
    """One row per action of the year: its summed facts (cents), what it is, its first
    proposal, validation and funding instants, and its unfinished milestones due before
    `as_of` — the history and milestones grouped over the year's actions only."""
    facts = _facts(year, territory_id)
    sums = (
        sa.select(
            facts.c.action_id,
            *(sa.cast(sa.func.sum(facts.c[name]), sa.BigInteger).label(name) for name in _FACTS),
        )
        .group_by(facts.c.action_id)
        .cte("sums")
    )
    of_the_year = sa.select(sums.c.action_id)
    history = (
        sa.select(
            _tr.c.action_id,
            # MIN over a CASE keeps the column type (UTCDateTime): values come back aware
            *(
                sa.func.min(sa.case((_tr.c.to_state == step.value, _tr.c.at))).label(
                    f"{step.value}_at"
                )
                for step in _STEPS
            ),
        )
        .where(
            _tr.c.to_state.in_([step.value for step in _STEPS]),
            _tr.c.action_id.in_(of_the_year),
        )
        .group_by(_tr.c.action_id)
        .subquery("history")
    )
    overdue = (
        sa.select(
            _ms.c.action_id,
            sa.func.count().label("overdue_milestones"),
            sa.func.min(_ms.c.due_date).label("oldest_due"),
        )
        .where(_ms.c.done_on.is_(None), _ms.c.due_date < as_of, _ms.c.action_id.in_(of_the_year))
        .group_by(_ms.c.action_id)
        .subquery("overdue")
    )
    planned = sums.c.planned_investment + sums.c.planned_operating
    over = sa.case((sums.c.granted > planned, sums.c.granted - planned), else_=0)
    return (
        sa.select(
            *(sums.c[name] for name in _FACTS),
            sa.cast(over, sa.BigInteger).label("over_granted"),  # models.figures.over_granted
            _ter.c.code.label("territory"),
            _ter.c.name.label("territory_name"),
            _act.c.number,
            _act.c.title,
            _act.c.axis,
            _act.c.state,
            _act.c.firm_commitment,
            _act.c.end_date,
            *(history.c[f"{step.value}_at"] for step in _STEPS),
            sa.func.coalesce(overdue.c.overdue_milestones, 0).label("overdue_milestones"),
            overdue.c.oldest_due,
        )
        .join(_act, _act.c.id == sums.c.action_id)
        .join(_ter, _ter.c.id == _act.c.territory_id)
        .outerjoin(history, history.c.action_id == _act.c.id)
        .outerjoin(overdue, overdue.c.action_id == _act.c.id)
        .cte("per_action")
    )


def _consolidation_query(year: Any, territory_id: Any | None, as_of: Any) -> Any:
    """Every line of every view in ONE statement: the per-action rows, then a GROUP BY of them
    per axis, state, commitment and territory, and the funding grouped per funder.

    The per-action set is a CTE the database computes once; all views are summed from the
    same integer cents, so they add up to the same totals. Result columns, per view:
    view, territory, key, label, axis, state, firm_commitment, action_count, 5 amounts,
    end_date, 3 history instants, overdue_milestones, oldest_due."""
    pa = _per_action(year, territory_id, as_of)
    firm_key = sa.case((pa.c.firm_commitment, FIRM), else_=NOT_FIRM)
    in_plan = pa.c.state.not_in(_OUT_OF_PLAN)
    actions = sa.select(
        sa.case((in_plan, View.ACTION.value), else_=View.DROPPED.value).label("view"),
        pa.c.territory,
        pa.c.number.label("key"),
        pa.c.title.label("label"),
        pa.c.axis,
        pa.c.state,
        pa.c.firm_commitment,
        sa.literal(1, sa.Integer).label("action_count"),
        *(sa.type_coerce(pa.c[name], Money).label(name) for name in _AMOUNTS),
        pa.c.end_date,
        *(pa.c[f"{step.value}_at"] for step in _STEPS),
        pa.c.overdue_milestones,
        pa.c.oldest_due,
    )
    none = sa.null()
    # columns: territory, key, label, axis, state, firm_commitment; then the GROUP BY
    per_axis = _grouped(pa, View.AXIS, (sa.literal(""), pa.c.axis, none, pa.c.axis, none, none))
    per_state = _grouped(pa, View.STATE, (sa.literal(""), pa.c.state, none, none, pa.c.state, none))
    per_commitment = _grouped(
        pa,
        View.COMMITMENT,
        (sa.literal(""), firm_key, none, none, none, pa.c.firm_commitment),
        pa.c.firm_commitment,
    )
    per_territory = _grouped(
        pa,
        View.TERRITORY,
        (pa.c.territory, pa.c.territory, pa.c.territory_name, none, none, none),
        pa.c.territory,
        pa.c.territory_name,
    )
    per_funder = _per_funder(year, territory_id)
    return sa.union_all(actions, per_axis, per_funder, per_state, per_commitment, per_territory)


def _view(name: str) -> Any:
    return sa.literal_column(f"'{name}'", sa.String).label("view")


def _blanks() -> list[Any]:
    # typed NULLs: PostgreSQL must know each UNION column's type
    return [
        sa.null().label("end_date"),
        *(sa.null().label(f"{step.value}_at") for step in _STEPS),
        sa.literal(0, sa.Integer).label("overdue_milestones"),
        sa.null().label("oldest_due"),
    ]


def _grouped(pa: Any, name: str, columns: tuple[Any, ...], *group_by: Any) -> Any:
    """One summary view of the plan's per-action rows (those out of the plan are View.DROPPED
    lines, never summed in): `columns` (territory, key, label, axis, state, firm_commitment),
    the count and sums, grouped by `group_by` (default: the key)."""
    return (
        sa.select(
            _view(name),
            *columns,
            sa.func.count().label("action_count"),
            *(_money_sum(pa.c[amount], amount) for amount in _AMOUNTS),
            *_blanks(),
        )
        .where(pa.c.state.not_in(_OUT_OF_PLAN))
        .group_by(*(group_by or (columns[1],)))
    )


def _per_funder(year: int, territory_id: int | None) -> Any:
    none = sa.null()
    per_funder = (
        sa.select(
            _view(View.FUNDER),
            sa.literal(""),
            _org.c.name,
            _org.c.name,
            none,
            none,
            none,
            sa.func.count(sa.distinct(_fd.c.action_id)),
            sa.literal(0, Money),
            sa.literal(0, Money),
            *(_money_sum(_cents(_fd.c[name]), name) for name in ("requested", "granted", "paid")),
            sa.literal(0, Money),
            *_blanks(),
        )
        .join(_org, _org.c.id == _fd.c.funder_id)
        .join(_act, _act.c.id == _fd.c.action_id)
        .where(_fd.c.year == year, _act.c.state.not_in(_OUT_OF_PLAN))
        .group_by(_org.c.name)
    )
    if territory_id is not None:
        per_funder = per_funder.where(_fd.c.action_id.in_(_in_territory(territory_id)))
    return per_funder


# --- lines -----------------------------------------------------------------------------------


def _rollup_line(
    view: View, territory: str, key: str, label: str | None, figures: Figures, count: int
) -> Line:
    if view is View.AXIS:
        axis = Axis(key)
        return Line(view, key, axis.label, figures, count, axis=axis)
    if view is View.STATE:
        state = State(key)
        return Line(view, key, state.label.capitalize(), figures, count, state=state)
    if view is View.COMMITMENT:
        firm = key == FIRM
        label = "Avec engagement ferme" if firm else "Sans engagement ferme"
        return Line(view, key, label, figures, count, firm_commitment=firm)
    return Line(view, key, label or key, figures, count, territory=territory)


_AXIS_RANK = {axis.value: rank for rank, axis in enumerate(Axis)}
_STATE_RANK = {state.value: rank for rank, state in enumerate(State)}
_ORDER: dict[View, Callable[[Line], Any]] = {
    View.AXIS: lambda line: _AXIS_RANK[line.key],
    View.FUNDER: lambda line: line.key,
    View.ACTION: lambda line: (line.territory, line.key),
    View.STATE: lambda line: _STATE_RANK[line.key],
    View.COMMITMENT: lambda line: line.key != FIRM,
    View.TERRITORY: lambda line: line.key,
    View.LATE: lambda line: (line.territory, line.key),
    View.DROPPED: lambda line: (line.territory, line.key),
}


def _over_granted_note(amounts: Figures) -> str:
    if amounts.over_granted <= ZERO:
        return ""
    return (
        f"{figures.Figure.OVER_GRANTED.label} : {format_eur(amounts.over_granted)}"
        f" (accordé {format_eur(amounts.granted)}, prévu {format_eur(amounts.planned)})"
    )


def _late_line(
    action: Line, end_date: date | None, as_of: date, overdue: int, oldest_due: date | None
) -> Line:
    reasons = []
    if end_date is not None and is_late(end_date, as_of):
        reasons.append(f"date de fin dépassée ({end_date:%d/%m/%Y})")
    if overdue and oldest_due is not None:
        jalons = "1 jalon non réalisé" if overdue == 1 else f"{overdue} jalons non réalisés"
        reasons.append(f"{jalons}, le plus ancien dû le {oldest_due:%d/%m/%Y}")
    return Line(
        View.LATE,
        action.key,
        action.label,
        action.figures,
        1,
        action.territory,
        action.axis,
        action.state,
        action.firm_commitment,
        note=" ; ".join(reasons),
    )


def _days_between(start: datetime, end: datetime) -> int:
    """Calendar days in Europe/Paris: from 23:30 UTC on 10 January (the 11th in Paris) to the
    25th is 14 days."""
    return (end.astimezone(PARIS).date() - start.astimezone(PARIS).date()).days


def _median(days: list[int]) -> Decimal | None:
    """Median number of days, to one decimal (x.5 when the middle falls between two)."""
    if not days:
        return None
    return Decimal(str(statistics.median(days))).quantize(Decimal("0.1"))
