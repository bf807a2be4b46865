"""Funding: one funder's part of an action for one year (requested, granted, paid).

When the granted amounts (all funders, all years) cover the action's budget, a *validée* action
becomes *financée* at once; otherwise it stays *validée* and the result says what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlmodel import col, select

from flows.usecases import service
from models.errors import InvalidInput
from models.events import ActionTransitioned, FundingRecorded
from models.lifecycle import State
from models.money import ZERO, format_eur, to_money
from models.tables import ActionSheet, Funding, Organisation
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
) -> FundingResult:
    """Create or update the funder's line for `year` (None amounts: unchanged, 0 for a new
    line); then, if the action is *validée* and the granted amounts cover its budget (or
    `force_reason` is given), move it to *financée*."""
    when = service.aware(at) if at else service.now()
    territory = service.resolve_territory(uow, territory_code)
    action = service.find_action(uow, territory, number)
    assert action.id is not None
    actor = service.actor_name(uow, territory, recorded_by)
    problems: list[str] = []
    if (dead := service.require_alive(action, "de financement")) is not None:
        problems.append(dead)
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
    amounts: dict[str, Decimal | None] = {}
    for field, label, value in (
        ("requested", "Montant demandé", requested),
        ("granted", "Montant accordé", granted),
        ("paid", "Montant versé", paid),
    ):
        if value is None:
            amounts[field] = None
            continue
        try:
            amounts[field] = to_money(value, label)
        except (TypeError, ValueError) as error:
            problems.append(f"{error}.")
            amounts[field] = None
            continue
        if amounts[field] < ZERO:  # type: ignore[operator]
            problems.append(f"{label} : le montant ne peut pas être négatif.")
    if convention_ref is not None and len(convention_ref.strip()) > 100:
        problems.append("Référence de convention : 100 caractères au plus.")
    line: Funding | None = None
    if organisation is not None:
        year, line, problem = _line(uow, action, organisation, year, decision_date, when)
        if problem:
            problems.append(problem)
    if problems:
        raise InvalidInput(problems)
    assert organisation is not None and organisation.id is not None and year is not None

    new_requested = _pick(amounts["requested"], line.requested if line else ZERO)
    new_granted = _pick(amounts["granted"], line.granted if line else ZERO)
    new_paid = _pick(amounts["paid"], line.paid if line else ZERO)
    funder_name = organisation.short_name or organisation.name
    if new_paid > new_granted:
        problems.append(
            f"Montant versé : {format_eur(new_paid)} dépasse le montant accordé par"
            f" {funder_name} ({format_eur(new_granted)})."
        )
    if problems:
        raise InvalidInput(problems)

    service.entering_write_phase()
    created = line is None
    if line is None:
        line = Funding(action_id=action.id, funder_id=organisation.id, year=year)
    line.requested, line.granted, line.paid = new_requested, new_granted, new_paid
    if decision_date is not None:
        line.decision_date = decision_date
    if dossier_filed_on is not None:  # stops the « dépôt du dossier » reminder
        line.dossier_filed_on = dossier_filed_on
    if convention_ref is not None and convention_ref.strip():
        line.convention_ref = convention_ref.strip()
    line.updated_at = when
    uow.session.add(line)
    # The action's version goes up with each funding record: a run deciding on the action at
    # the same time (COPIL, abandon) and this one cannot both win.
    action.updated_at = when
    uow.session.add(action)
    uow.flush()

    budget_total = uow.repo.budget_total(action.id)
    granted_total = uow.repo.granted_total(action.id)
    transition = None
    reason = (force_reason or "").strip()
    if action.state is State.VALIDATED and (granted_total >= budget_total or reason):
        transition = transition_action(
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
    pilot = uow.repo.person(action.pilot_id)
    uow.events.append(
        FundingRecorded(
            territory_code=territory.code,
            number=action.number,
            action_id=action.id,
            title=action.title,
            funder=funder_name,
            year=year,
            requested=new_requested,
            granted=new_granted,
            paid=new_paid,
            decision_date=line.decision_date,
            convention_ref=line.convention_ref,
            budget_total=budget_total,
            granted_total=granted_total,
            at=when,
            actor=actor,
            correlation_id=correlation_id,
            pilot_email=pilot.email if pilot else None,
        )
    )
    return FundingResult(
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
