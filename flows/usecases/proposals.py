"""Proposing an action to the COPIL: a new sheet, or a draft / revised sheet submitted again.

    with unit_of_work(engine) as uow:
        result = propose(uow, "grand-est-touraine", "FA-09", recorded_by="Claire Moreau")
        uow.commit()

The sheet moves to *proposée* and joins the agenda of the next scheduled COPIL, if any.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import col, select

from flows.usecases import service
from models.errors import InvalidInput
from models.events import ActionTransitioned
from models.lifecycle import GuardFacts, LifecycleError, State, check_transition
from models.money import to_money
from models.tables import (
    ActionPartner,
    ActionSheet,
    BudgetLine,
    CopilAgendaItem,
    CopilMeeting,
    Indicator,
    Milestone,
    Organisation,
    Person,
    Territory,
)
from models.transitions import transition_action
from models.uow import UnitOfWork
from models.vocabulary import Axis, BudgetKind, CopilStatus, Priority


@dataclass(frozen=True)
class BudgetLineInput:
    year: int
    kind: BudgetKind
    amount: Decimal


@dataclass(frozen=True)
class MilestoneInput:
    title: str
    due_date: date


@dataclass(frozen=True)
class IndicatorInput:
    name: str
    target: Decimal
    unit: str = ""


@dataclass(frozen=True)
class SheetDetails:
    """What a new sheet needs, or what changes on a draft / revised one (None: unchanged).

    Non-empty lists *replace* the sheet's budget lines, milestones, indicators or partners.
    """

    title: str | None = None
    description: str | None = None
    axis: Axis | None = None
    pilot_email: str | None = None
    firm_commitment: bool | None = None
    priority: Priority | None = None
    start_date: date | None = None
    end_date: date | None = None
    budget: Sequence[BudgetLineInput] = ()
    milestones: Sequence[MilestoneInput] = ()
    indicators: Sequence[IndicatorInput] = ()
    partners: Sequence[str] = ()  # organisation names or short names


@dataclass(frozen=True)
class ProposalResult:
    number: str
    title: str
    created: bool
    from_state: State
    budget_total: Decimal
    next_copil_id: int | None
    next_copil_at: datetime | None
    event: ActionTransitioned


def propose(
    uow: UnitOfWork,
    territory_code: str | None,
    number: str | None,
    details: SheetDetails | None = None,
    *,
    recorded_by: str | None = None,
    correlation_id: str | None = None,
    at: datetime | None = None,
) -> ProposalResult:
    """Create the sheet (when `number` is unknown or None) or update a draft / revised one with
    `details`, then move it to *proposée* and put it on the next scheduled COPIL's agenda."""
    details = details or SheetDetails()
    when = service.aware(at) if at else service.now()
    territory = service.resolve_territory(uow, territory_code)
    assert territory.id is not None
    actor = service.actor_name(uow, territory, recorded_by)

    number, existing = _sheet(uow, territory, number)
    problems: list[str] = []
    if existing is None:
        if not (details.title and details.title.strip()):
            problems.append(f"Intitulé : obligatoire pour créer la fiche {number}.")
        if details.axis is None:
            problems.append(f"Axe : obligatoire pour créer la fiche {number}.")
        source = State.DRAFT
    else:
        source = State(existing.state)
    try:
        check_transition(number, source, State.PROPOSED, GuardFacts())
    except LifecycleError as error:
        problems.append(str(error))
    pilot, partners, lines = _check_details(uow, territory, details, problems)
    if problems:
        raise InvalidInput(problems)

    service.entering_write_phase()
    created = existing is None
    action = existing or _new_sheet(uow, territory, number, details, when)
    _apply_details(uow, action, details, pilot, partners, lines)
    event = transition_action(
        uow,
        action,
        State.PROPOSED,
        actor=actor,
        reason="nouvelle fiche" if created else None,
        correlation_id=correlation_id,
        at=when,
    )
    copil = _add_to_next_copil(uow, territory, action, when)
    assert action.id is not None
    return ProposalResult(
        number=action.number,
        title=action.title,
        created=created,
        from_state=source,
        budget_total=uow.repo.budget_total(action.id),
        next_copil_id=copil.id if copil else None,
        next_copil_at=copil.held_at if copil else None,
        event=event,
    )


def _sheet(
    uow: UnitOfWork, territory: Territory, number: str | None
) -> tuple[str, ActionSheet | None]:
    """The sheet's number and the sheet if it exists (no number: the next free one)."""
    if not (number and number.strip()):
        return _next_number(uow, territory), None
    number = service.normalise_number(number)
    existing = uow.session.exec(
        select(ActionSheet).where(
            ActionSheet.territory_id == territory.id, ActionSheet.number == number
        )
    ).first()
    return number, existing


def _new_sheet(
    uow: UnitOfWork, territory: Territory, number: str, details: SheetDetails, when: datetime
) -> ActionSheet:
    assert details.title and details.axis and territory.id is not None
    action = ActionSheet(
        territory_id=territory.id,
        number=number,
        title=details.title.strip(),
        axis=details.axis,
        state=State.DRAFT,
        created_at=when,
        updated_at=when,
    )
    uow.session.add(action)
    uow.flush()
    return action


def _next_number(uow: UnitOfWork, territory: Territory) -> str:
    numbers = uow.session.exec(
        select(ActionSheet.number).where(ActionSheet.territory_id == territory.id)
    ).all()
    used = [int(n[3:]) for n in numbers if n.startswith("FA-") and n[3:].isdigit()]
    return f"FA-{max(used, default=0) + 1:02d}"


def _check_details(
    uow: UnitOfWork, territory: Territory, details: SheetDetails, problems: list[str]
) -> tuple[Person | None, list[Organisation], list[BudgetLineInput]]:
    assert territory.id is not None
    pilot = None
    if details.pilot_email and details.pilot_email.strip():
        pilot = uow.repo.person_by_email(territory.id, details.pilot_email)
        if pilot is None:
            problems.append(
                f"Pilote : « {details.pilot_email.strip()} » n'est pas une personne connue du"
                f" territoire « {territory.code} »."
            )
    if details.title is not None and len(details.title.strip()) > 300:
        problems.append("Intitulé : 300 caractères au plus.")
    if details.start_date and details.end_date and details.start_date > details.end_date:
        problems.append(
            f"Dates : le début ({service.short_date(details.start_date)}) est après la fin"
            f" ({service.short_date(details.end_date)})."
        )
    lines: list[BudgetLineInput] = []
    seen: set[tuple[int, BudgetKind]] = set()
    for position, line in enumerate(details.budget, start=1):
        label = f"Budget, ligne {position} ({line.year}, {line.kind.label.lower()})"
        try:
            amount = to_money(line.amount, "montant")
        except (TypeError, ValueError) as error:
            problems.append(f"{label} : {error}.")
            continue
        if amount < 0:
            problems.append(f"{label} : le montant ne peut pas être négatif.")
        if not 2000 <= line.year <= 2100:
            problems.append(f"{label} : année invalide.")
        if (line.year, line.kind) in seen:
            problems.append(f"{label} : cette année et cette nature figurent déjà plus haut.")
        seen.add((line.year, line.kind))
        lines.append(BudgetLineInput(line.year, line.kind, amount))
    for position, milestone in enumerate(details.milestones, start=1):
        if not milestone.title.strip():
            problems.append(f"Jalon {position} : l'intitulé est vide.")
    for position, indicator in enumerate(details.indicators, start=1):
        if not indicator.name.strip():
            problems.append(f"Indicateur {position} : le nom est vide.")
    partners: list[Organisation] = []
    for name in details.partners:
        organisation = service.find_organisation(uow, territory, name)
        if organisation is None:
            problems.append(
                f"Partenaires : « {name} » n'est pas une organisation connue du territoire."
            )
        else:
            partners.append(organisation)
    return pilot, partners, lines


def _apply_details(
    uow: UnitOfWork,
    action: ActionSheet,
    details: SheetDetails,
    pilot: Person | None,
    partners: list[Organisation],
    lines: list[BudgetLineInput],
) -> None:
    assert action.id is not None
    session = uow.session
    if details.title and details.title.strip():
        action.title = details.title.strip()
    for name in ("description", "axis", "firm_commitment", "priority", "start_date", "end_date"):
        value = getattr(details, name)
        if value is not None:
            setattr(action, name, value)
    if pilot is not None:
        action.pilot_id = pilot.id
    session.add(action)
    if lines:
        session.execute(sa.delete(BudgetLine).where(col(BudgetLine.action_id) == action.id))
        for line in lines:
            session.add(
                BudgetLine(action_id=action.id, year=line.year, kind=line.kind, amount=line.amount)
            )
    if details.milestones:
        session.execute(sa.delete(Milestone).where(col(Milestone.action_id) == action.id))
        for milestone in details.milestones:
            session.add(
                Milestone(
                    action_id=action.id, title=milestone.title.strip(), due_date=milestone.due_date
                )
            )
    if details.indicators:
        session.execute(sa.delete(Indicator).where(col(Indicator.action_id) == action.id))
        for indicator in details.indicators:
            session.add(
                Indicator(
                    action_id=action.id,
                    name=indicator.name.strip(),
                    unit=indicator.unit.strip(),
                    target=Decimal(indicator.target),
                )
            )
    if partners:
        session.execute(sa.delete(ActionPartner).where(col(ActionPartner.action_id) == action.id))
        for organisation in {o.id: o for o in partners}.values():
            assert organisation.id is not None
            session.add(ActionPartner(action_id=action.id, organisation_id=organisation.id))


def next_scheduled_copil(
    uow: UnitOfWork, territory: Territory, after: datetime
) -> CopilMeeting | None:
    return uow.session.exec(
        select(CopilMeeting)
        .where(
            CopilMeeting.territory_id == territory.id,
            CopilMeeting.status == CopilStatus.SCHEDULED,
            col(CopilMeeting.held_at) >= after,
        )
        .order_by(col(CopilMeeting.held_at))
    ).first()


def add_to_agenda(uow: UnitOfWork, copil: CopilMeeting, action: ActionSheet) -> bool:
    """Put the action at the end of the COPIL's agenda; False if it was already there."""
    assert copil.id is not None and action.id is not None
    if uow.session.get(CopilAgendaItem, (copil.id, action.id)) is not None:
        return False
    last = uow.session.exec(
        select(sa.func.max(CopilAgendaItem.position)).where(CopilAgendaItem.copil_id == copil.id)
    ).one()
    uow.session.add(
        CopilAgendaItem(copil_id=copil.id, action_id=action.id, position=(last or 0) + 1)
    )
    return True


def _add_to_next_copil(
    uow: UnitOfWork, territory: Territory, action: ActionSheet, when: datetime
) -> CopilMeeting | None:
    copil = next_scheduled_copil(uow, territory, when)
    if copil is not None:
        add_to_agenda(uow, copil, action)
    return copil
