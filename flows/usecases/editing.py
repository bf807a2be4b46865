"""Writing the plan: create a draft sheet, edit it, record its funding, propose it — each
guarded by the sheet's version (optimistic locking).

Every form that changes a sheet carries the version it was read at. If the sheet changed
since (another person saved it first), the change is refused with a French
`ConcurrencyConflict` and nothing is written; the database's own version check
(`ActionSheet.version`, the ORM's `version_id_col`) catches the same race between the read and
the write. Each change appends one history row (`ActionChange`).

    with unit_of_work(engine) as uow:
        action = create_draft(uow, "grand-est-touraine", SheetEdit(title=…, axis=Axis.INNOVATION))
        uow.commit()
    with unit_of_work(engine) as uow:
        edit_sheet(uow, "grand-est-touraine", "FA-09", edit, expected_version=1, recorded_by="…")
        uow.commit()
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import col, select

from flows.usecases import service
from flows.usecases.funding import FundingDates, FundingResult, record_funding
from flows.usecases.proposals import (
    BudgetLineInput,
    IndicatorInput,
    MilestoneInput,
    ProposalResult,
    SheetDetails,
    _check_details,
    _new_sheet,
    _next_number,
    propose,
)
from models.errors import ConcurrencyConflict, InvalidInput
from models.lifecycle import EDITABLE, State
from models.tables import ActionChange, ActionSheet, BudgetLine, Indicator, Milestone, Territory
from models.uow import UnitOfWork
from models.vocabulary import Axis, Priority


@dataclass(frozen=True)
class MilestoneRow:
    """A milestone of the form: `id` None for a new one; a known one keeps its « fait le »."""

    title: str
    due_date: date
    id: int | None = None


@dataclass(frozen=True)
class IndicatorRow:
    name: str
    target: Decimal
    unit: str = ""
    id: int | None = None  # a known indicator keeps its measured value


@dataclass(frozen=True)
class SheetEdit:
    """The whole sheet as the form shows it: lists replace the sheet's own (empty: none)."""

    title: str
    axis: Axis
    description: str = ""
    pilot_email: str = ""
    firm_commitment: bool = False
    priority: Priority = Priority.MEDIUM
    start_date: date | None = None
    end_date: date | None = None
    budget: Sequence[BudgetLineInput] = ()
    milestones: Sequence[MilestoneRow] = ()
    indicators: Sequence[IndicatorRow] = ()


@dataclass(frozen=True)
class EditResult:
    number: str
    version: int
    changed: list[str] = field(default_factory=list)  # French names of what changed


FIELD_LABELS = {
    "title": "intitulé",
    "description": "description",
    "axis": "axe",
    "pilot_id": "pilote",
    "firm_commitment": "engagement ferme",
    "priority": "priorité",
    "start_date": "date de début",
    "end_date": "date de fin",
}


def check_version(action: ActionSheet, expected_version: int | None) -> None:
    """Refuse a form read at another version of the sheet (someone saved in between)."""
    if expected_version is not None and action.version != expected_version:
        raise ConcurrencyConflict(
            f"Conflit de mise à jour sur l'action {action.number} : elle a été modifiée par"
            " quelqu'un d'autre depuis que vous avez ouvert le formulaire. Rien n'a été"
            " enregistré ; voici ses valeurs actuelles, reportez-y vos changements."
        )


def create_draft(
    uow: UnitOfWork,
    territory_code: str | None,
    edit: SheetEdit,
    *,
    recorded_by: str | None = None,
    at: datetime | None = None,
) -> ActionSheet:
    """A new sheet in *brouillon*, numbered after the territory's last one."""
    when = service.aware(at) if at else service.now()
    territory = service.resolve_territory(uow, territory_code)
    assert territory.id is not None
    actor = service.actor_name(uow, territory, recorded_by)
    problems = _check(uow, territory, edit)
    if problems:
        raise InvalidInput(problems)
    service.entering_write_phase()
    number = _next_number(uow, territory)
    action = _new_sheet(
        uow, territory, number, SheetDetails(title=edit.title, axis=edit.axis), when
    )
    _apply(uow, territory, action, edit, when)
    uow.session.add(_change(action, actor, when, "Fiche créée (brouillon)."))
    uow.flush()
    return action


def edit_sheet(
    uow: UnitOfWork,
    territory_code: str | None,
    number: str,
    edit: SheetEdit,
    *,
    expected_version: int | None,
    recorded_by: str | None = None,
    at: datetime | None = None,
) -> EditResult:
    """Replace the sheet's fields, budget lines, milestones and indicators (draft or
    revision requested only); one history row naming what changed, none if nothing did."""
    when = service.aware(at) if at else service.now()
    territory = service.resolve_territory(uow, territory_code)
    action = service.find_action(uow, territory, number)
    assert action.id is not None
    check_version(action, expected_version)
    actor = service.actor_name(uow, territory, recorded_by)
    problems = _check(uow, territory, edit)
    if State(action.state) not in EDITABLE:
        allowed = " ou ".join(f"« {s.label} »" for s in EDITABLE)
        problems.insert(
            0,
            f"L'action {action.number} est « {State(action.state).label} » : sa fiche ne se"
            f" modifie qu'à l'état {allowed}.",
        )
    if problems:
        raise InvalidInput(problems)
    before = _state_of(uow, action)
    service.entering_write_phase()
    _apply(uow, territory, action, edit, when)
    uow.flush()
    changed = [label for key, label in _labels(before, _state_of(uow, action))]
    if not changed:
        uow.session.rollback()
        return EditResult(action.number, action.version)
    uow.session.add(_change(action, actor, when, "Fiche modifiée : " + ", ".join(changed) + "."))
    uow.flush()
    return EditResult(action.number, action.version, changed)


def record_funding_row(
    uow: UnitOfWork,
    territory_code: str | None,
    number: str,
    *,
    expected_version: int | None,
    funder: str,
    year: int,
    requested: Decimal | None,
    granted: Decimal | None,
    paid: Decimal | None,
    dates: FundingDates | None = None,
    recorded_by: str | None = None,
) -> FundingResult:
    """The funding use case, refused on a stale form; the sheet's version moves on (the next
    stale form about this action is refused too) and the history says what was recorded."""
    territory = service.resolve_territory(uow, territory_code)
    action = service.find_action(uow, territory, number)
    check_version(action, expected_version)
    result = record_funding(
        uow,
        territory.code,
        action.number,
        funder=funder,
        year=year,
        requested=requested,
        granted=granted,
        paid=paid,
        dates=dates,
        recorded_by=recorded_by,
    )
    when = service.now()
    action.updated_at = when
    uow.session.add(action)
    actor = service.actor_name(uow, territory, recorded_by)
    uow.session.add(_change(action, actor, when, result.summary()))
    uow.flush()
    return result


def propose_sheet(
    uow: UnitOfWork,
    territory_code: str | None,
    number: str,
    *,
    expected_version: int | None,
    recorded_by: str | None = None,
) -> ProposalResult:
    """Propose the draft (or revised) sheet to the next COPIL, as it was read."""
    territory = service.resolve_territory(uow, territory_code)
    action = service.find_action(uow, territory, number)
    check_version(action, expected_version)
    return propose(uow, territory.code, action.number, None, recorded_by=recorded_by)


# ---------------------------------------------------------------------------------------------


def _check(uow: UnitOfWork, territory: Territory, edit: SheetEdit) -> list[str]:
    """The proposals' own checks of a sheet's details, plus what a draft needs."""
    problems: list[str] = []
    if not edit.title.strip():
        problems.append("Intitulé : obligatoire.")
    details = SheetDetails(
        title=edit.title,
        pilot_email=edit.pilot_email,
        start_date=edit.start_date,
        end_date=edit.end_date,
        budget=edit.budget,
        milestones=[MilestoneInput(m.title, m.due_date) for m in edit.milestones],
        indicators=[IndicatorInput(i.name, i.target, i.unit) for i in edit.indicators],
    )
    _check_details(uow, territory, details, problems)
    return problems


def _apply(
    uow: UnitOfWork, territory: Territory, action: ActionSheet, edit: SheetEdit, when: datetime
) -> None:
    assert action.id is not None and territory.id is not None
    s = uow.session
    pilot = (
        uow.repo.person_by_email(territory.id, edit.pilot_email)
        if edit.pilot_email.strip()
        else None
    )
    action.title = edit.title.strip()
    action.description = edit.description.strip()
    action.axis = edit.axis
    action.pilot_id = pilot.id if pilot else None
    action.firm_commitment = edit.firm_commitment
    action.priority = edit.priority
    action.start_date, action.end_date = edit.start_date, edit.end_date
    action.updated_at = when  # the row is written, so its version moves on
    s.add(action)
    s.execute(sa.delete(BudgetLine).where(col(BudgetLine.action_id) == action.id))
    for line in edit.budget:
        s.add(BudgetLine(action_id=action.id, year=line.year, kind=line.kind, amount=line.amount))
    _replace_milestones(uow, action.id, edit.milestones)
    _replace_indicators(uow, action.id, edit.indicators)


def _replace_milestones(uow: UnitOfWork, action_id: int, rows: Sequence[MilestoneRow]) -> None:
    s = uow.session
    known = {m.id: m for m in s.exec(select(Milestone).where(Milestone.action_id == action_id))}
    kept = set()
    for row in rows:
        milestone = known.get(row.id) if row.id is not None else None
        if milestone is None:
            milestone = Milestone(action_id=action_id, title="", due_date=row.due_date)
        milestone.title, milestone.due_date = row.title.strip(), row.due_date
        s.add(milestone)
        kept.add(milestone.id)
    for milestone_id, milestone in known.items():
        if milestone_id not in kept:
            s.delete(milestone)


def _replace_indicators(uow: UnitOfWork, action_id: int, rows: Sequence[IndicatorRow]) -> None:
    s = uow.session
    known = {i.id: i for i in s.exec(select(Indicator).where(Indicator.action_id == action_id))}
    kept = set()
    for row in rows:
        indicator = known.get(row.id) if row.id is not None else None
        if indicator is None:
            indicator = Indicator(action_id=action_id, name="", target=row.target)
        indicator.name, indicator.unit = row.name.strip(), row.unit.strip()
        indicator.target = Decimal(row.target)
        s.add(indicator)
        kept.add(indicator.id)
    for indicator_id, indicator in known.items():
        if indicator_id not in kept:
            s.delete(indicator)


def _state_of(uow: UnitOfWork, action: ActionSheet) -> dict[str, object]:
    """What the history compares: the fields, and each list as sorted tuples."""
    assert action.id is not None
    s = uow.session
    facts: dict[str, object] = {name: getattr(action, name) for name in FIELD_LABELS}
    facts["budget"] = sorted(
        (b.year, str(b.kind), b.amount)
        for b in s.exec(select(BudgetLine).where(BudgetLine.action_id == action.id))
    )
    facts["milestones"] = sorted(
        (m.title, m.due_date)
        for m in s.exec(select(Milestone).where(Milestone.action_id == action.id))
    )
    facts["indicators"] = sorted(
        (i.name, i.unit, i.target)
        for i in s.exec(select(Indicator).where(Indicator.action_id == action.id))
    )
    return facts


LIST_LABELS = {"budget": "lignes de budget", "milestones": "jalons", "indicators": "indicateurs"}


def _labels(before: dict[str, object], after: dict[str, object]) -> list[tuple[str, str]]:
    labels = {**FIELD_LABELS, **LIST_LABELS}
    return [(key, labels[key]) for key in labels if before[key] != after[key]]


def _change(action: ActionSheet, actor: str, when: datetime, summary: str) -> ActionChange:
    assert action.id is not None
    return ActionChange(action_id=action.id, at=when, actor=actor, summary=summary)
