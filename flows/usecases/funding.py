"""Funding: one funder's part of an action for one year (requested, granted, paid).

When the granted amounts (all funders, all years) cover the action's budget, a *validée* action
becomes *financée* at once; otherwise it stays *validée* and the result says what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal

from sqlmodel import col, select

from flows.usecases import service
from models.errors import InvalidInput
from models.events import ActionTransitioned, FundingRecorded
from models.lifecycle import State
from models.money import ZERO, format_eur, to_money
from models.tables import ActionSheet, Funding, Organisation, Territory
from models.transitions import transition_action
from models.uow import UnitOfWork


@dataclass(frozen=True)
class PendingRequest:
    funder: str
    year: int
    still_expected: Decimal  # requested - granted


@dataclass(frozen=True)
class FundingResult:
    number: str
    title: str
    funder: str
    year: int
    requested: Decimal
    granted: Decimal
    paid: Decimal
    created: bool  # a new funding line (else an update of the funder's line for that year)
    budget_total: Decimal
    granted_total: Decimal
    state: State  # after this record
    transition: ActionTransitioned | None  # validated -> funded, when it happened
    pending: tuple[PendingRequest, ...]  # requests not (fully) granted yet

    @property
    def missing(self) -> Decimal:
        return max(self.budget_total - self.granted_total, ZERO)

    def summary(self) -> str:
        """One French sentence a coordinator reads in the logs."""
        head = (
            f"{self.number} : financement {self.funder} {self.year} enregistré"
            f" (demandé {format_eur(self.requested)}, accordé {format_eur(self.granted)},"
            f" versé {format_eur(self.paid)})."
        )
        if self.transition is not None:
            return head + (
                f" Les financements accordés ({format_eur(self.granted_total)}) couvrent le"
                f" budget ({format_eur(self.budget_total)}) : l'action passe à « financée »."
            )
        if self.missing > 0:
            waiting = "; ".join(
                f"{p.funder} {p.year} : {format_eur(p.still_expected)}" for p in self.pending
            )
            return head + (
                f" Il manque {format_eur(self.missing)} sur un budget de"
                f" {format_eur(self.budget_total)}"
                + (f" (demandes en attente : {waiting})." if waiting else ".")
                + f" L'action reste « {self.state.label} »."
            )
        return head + f" L'action est « {self.state.label} »."


@dataclass(frozen=True)
class FundingDates:
    """The funder's calendar for one line (None: unchanged)."""

    decision_date: date | None = None  # the funder decided on this day
    dossier_due: date | None = None  # the application must be filed before
    dossier_filed_on: date | None = None  # filed on this day: stops the « dépôt » reminder
    decision_expected: date | None = None
    payment_expected: date | None = None


def record_funding(
    uow: UnitOfWork,
    territory_code: str | None,
    number: str,
    *,
    funder: str,
    year: int | None = None,
    requested: Decimal | None = None,
    granted: Decimal | None = None,
    paid: Decimal | None = None,
    decision_date: date | None = None,
    dossier_filed_on: date | None = None,
    convention_ref: str | None = None,
    force_reason: str | None = None,
    recorded_by: str | None = None,
    correlation_id: str | None = None,
    at: datetime | None = None,
    dates: FundingDates | None = None,
) -> FundingResult:
    """Create or update the funder's line for `year` (None amounts: unchanged, 0 for a new
    line); then, if the action is *validée* and the granted amounts cover its budget (or
    `force_reason` is given), move it to *financée*."""
    dates = dates or FundingDates()
    if decision_date is not None:
        dates = replace(dates, decision_date=decision_date)
    if dossier_filed_on is not None:
        dates = replace(dates, dossier_filed_on=dossier_filed_on)
    when = service.aware(at) if at else service.now()
    territory = service.resolve_territory(uow, territory_code)
    action = service.find_action(uow, territory, number)
    assert action.id is not None
    actor = service.actor_name(uow, territory, recorded_by)
    problems: list[str] = []
    if (dead := service.require_alive(action, "de financement")) is not None:
        problems.append(dead)
    organisation = _funder(uow, territory, funder, problems)
    amounts = _amounts(requested, granted, paid, problems)
    if convention_ref is not None and len(convention_ref.strip()) > 100:
        problems.append("Référence de convention : 100 caractères au plus.")
    line: Funding | None = None
    if organisation is not None:
        year, line, problem = _line(uow, action, organisation, year, dates.decision_date, when)
        if problem:
            problems.append(problem)
    if problems:
        raise InvalidInput(problems)
    assert organisation is not None and organisation.id is not None and year is not None

    funder_name = organisation.short_name or organisation.name
    new_requested, new_granted, new_paid = _new_amounts(amounts, line, funder_name)

    service.entering_write_phase()
    created = line is None
    if line is None:
        line = Funding(action_id=action.id, funder_id=organisation.id, year=year)
    line.requested, line.granted, line.paid = new_requested, new_granted, new_paid
    _write_line(uow, action, line, dates, convention_ref, when)
    budget_total = uow.repo.budget_total(action.id)
    granted_total = uow.repo.granted_total(action.id)
    transition = _funded_if_covered(
        uow, action, budget_total, granted_total, force_reason, actor, correlation_id, when
    )
    result = FundingResult(
        number=action.number,
        title=action.title,
        funder=funder_name,
        year=year,
        requested=new_requested,
        granted=new_granted,
        paid=new_paid,
        created=created,
        budget_total=budget_total,
        granted_total=granted_total,
        state=State(action.state),
        transition=transition,
        pending=_pending(uow, action),
    )
    uow.events.append(_recorded(uow, territory, action, line, result, actor, correlation_id, when))
    return result


def _new_amounts(
    amounts: dict[str, Decimal | None], line: Funding | None, funder_name: str
) -> tuple[Decimal, Decimal, Decimal]:
    """Requested, granted, paid after this record (an amount not given stays as it was)."""
    requested = _pick(amounts["requested"], line.requested if line else ZERO)
    granted = _pick(amounts["granted"], line.granted if line else ZERO)
    paid = _pick(amounts["paid"], line.paid if line else ZERO)
    if paid > granted:
        raise InvalidInput(
            [
                f"Montant versé : {format_eur(paid)} dépasse le montant accordé par"
                f" {funder_name} ({format_eur(granted)})."
            ]
        )
    return requested, granted, paid


def _recorded(
    uow: UnitOfWork,
    territory: Territory,
    action: ActionSheet,
    line: Funding,
    result: FundingResult,
    actor: str,
    correlation_id: str | None,
    when: datetime,
) -> FundingRecorded:
    assert action.id is not None
    pilot = uow.repo.person(action.pilot_id)
    return FundingRecorded(
        territory_code=territory.code,
        number=action.number,
        action_id=action.id,
        title=action.title,
        funder=result.funder,
        year=result.year,
        requested=result.requested,
        granted=result.granted,
        paid=result.paid,
        decision_date=line.decision_date,
        convention_ref=line.convention_ref,
        budget_total=result.budget_total,
        granted_total=result.granted_total,
        at=when,
        actor=actor,
        correlation_id=correlation_id,
        pilot_email=pilot.email if pilot else None,
    )


def _funder(
    uow: UnitOfWork, territory: Territory, funder: str, problems: list[str]
) -> Organisation | None:
    organisation = service.find_organisation(uow, territory, funder)
    if organisation is None:
        known = uow.session.exec(
            select(Organisation.short_name)
            .where(Organisation.territory_id == territory.id, col(Organisation.is_funder))
            .order_by(col(Organisation.short_name))
        ).all()
        problems.append(
            f"Financeur : « {funder.strip()} » n'est pas une organisation connue du territoire"
            f" (financeurs connus : {', '.join(n for n in known if n)})."
        )
    return organisation


def _amounts(
    requested: Decimal | None, granted: Decimal | None, paid: Decimal | None, problems: list[str]
) -> dict[str, Decimal | None]:
    """The amounts given, as exact money (None: unchanged); French problems for the others."""
    amounts: dict[str, Decimal | None] = {}
    for field, label, value in (
        ("requested", "Montant demandé", requested),
        ("granted", "Montant accordé", granted),
        ("paid", "Montant versé", paid),
    ):
        amounts[field] = None
        if value is None:
            continue
        try:
            amount = to_money(value, label)
        except (TypeError, ValueError) as error:
            problems.append(f"{error}.")
            continue
        amounts[field] = amount
        if amount < ZERO:
            problems.append(f"{label} : le montant ne peut pas être négatif.")
    return amounts


def _write_line(
    uow: UnitOfWork,
    action: ActionSheet,
    line: Funding,
    dates: FundingDates,
    convention_ref: str | None,
    when: datetime,
) -> None:
    for name in (
        "decision_date",
        "dossier_due",
        "dossier_filed_on",
        "decision_expected",
        "payment_expected",
    ):
        if (value := getattr(dates, name)) is not None:
            setattr(line, name, value)
    if convention_ref is not None and convention_ref.strip():
        line.convention_ref = convention_ref.strip()
    line.updated_at = when
    uow.session.add(line)
    # The action's version goes up with each funding record: a run deciding on the action at
    # the same time (COPIL, abandon) and this one cannot both win.
    action.updated_at = when
    uow.session.add(action)
    uow.flush()


def _funded_if_covered(
    uow: UnitOfWork,
    action: ActionSheet,
    budget_total: Decimal,
    granted_total: Decimal,
    force_reason: str | None,
    actor: str,
    correlation_id: str | None,
    when: datetime,
) -> ActionTransitioned | None:
    """A validated action whose granted amounts cover the budget (or forced) becomes funded."""
    reason = (force_reason or "").strip()
    if action.state is not State.VALIDATED or (granted_total < budget_total and not reason):
        return None
    return transition_action(
        uow,
        action,
        State.FUNDED,
        actor=actor,
        reason=reason
        or (
            f"Financements accordés {format_eur(granted_total)} pour un budget de"
            f" {format_eur(budget_total)}"
        ),
        correlation_id=correlation_id,
        override=bool(reason) and granted_total < budget_total,
        at=when,
    )


def _pick(new: Decimal | None, old: Decimal) -> Decimal:
    return old if new is None else new


def _line(
    uow: UnitOfWork,
    action: ActionSheet,
    organisation: Organisation,
    year: int | None,
    decision_date: date | None,
    when: datetime,
) -> tuple[int | None, Funding | None, str | None]:
    """The funder's line to update (or None for a new one) and its year; or a problem.

    Without a year: the funder's only line for this action, else the decision's year, else
    the current year."""
    lines = uow.session.exec(
        select(Funding)
        .where(Funding.action_id == action.id, Funding.funder_id == organisation.id)
        .order_by(col(Funding.year))
    ).all()
    name = organisation.short_name or organisation.name
    if year is None:
        if len(lines) == 1:
            return lines[0].year, lines[0], None
        if len(lines) > 1:
            years = ", ".join(str(line.year) for line in lines)
            return None, None, f"Année : précisez-la, {name} a plusieurs lignes ({years})."
        year = decision_date.year if decision_date else service.paris_date(when).year
    if not 2000 <= year <= 2100:
        return None, None, f"Année : {year} n'est pas une année valide."
    for line in lines:
        if line.year == year:
            return year, line, None
    return year, None, None


def _pending(uow: UnitOfWork, action: ActionSheet) -> tuple[PendingRequest, ...]:
    rows = uow.session.exec(
        select(Funding, Organisation)
        .join(Organisation, col(Organisation.id) == col(Funding.funder_id))
        .where(Funding.action_id == action.id, col(Funding.requested) > col(Funding.granted))
        .order_by(col(Funding.year), col(Organisation.short_name))
    ).all()
    return tuple(
        PendingRequest(org.short_name or org.name, line.year, line.requested - line.granted)
        for line, org in rows
    )
