"""COPIL meetings: scheduling one with its agenda, and recording its decisions all at once.

    with unit_of_work(engine) as uow:
        outcome = hold_copil(uow, copil_id, [DecisionInput("FA-07", State.VALIDATED)], ...)
        uow.commit()

`hold_copil` checks every decision before writing anything: one bad decision raises an
`InvalidInput` naming it (« Décision n° 2 (FA-09) : … ») and the meeting stays as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select

from flows.usecases import service
from flows.usecases.proposals import add_to_agenda
from models.errors import ConcurrencyConflict, InvalidInput, NotFound
from models.events import CopilHeld, CopilScheduled
from models.lifecycle import (
    AWAITING_DECISION,
    COPIL_OUTCOMES,
    GuardFacts,
    LifecycleError,
    State,
    check_transition,
)
from models.money import ZERO, format_eur, to_money
from models.tables import (
    ActionSheet,
    BudgetLine,
    CopilAgendaItem,
    CopilDecision,
    CopilMeeting,
    CopilMember,
    Person,
    Territory,
)
from models.transitions import transition_action
from models.uow import UnitOfWork
from models.vocabulary import CopilStatus, Role


@dataclass(frozen=True)
class AgendaItem:
    number: str
    title: str
    state: State
    budget_total: Decimal
    pilot: str  # full name, or "" if none
    firm_commitment: bool


@dataclass(frozen=True)
class CopilInfo:
    """A meeting and its agenda, as the forms and summaries show it."""

    copil_id: int
    territory_code: str
    territory_name: str
    held_at: datetime
    place: str
    status: CopilStatus
    members: tuple[str, ...]  # "Full Name <email>"
    agenda: tuple[AgendaItem, ...]

    @property
    def label(self) -> str:
        return copil_label(self.held_at)


def copil_label(held_at: datetime) -> str:
    """« COPIL du 14/10/2030 »: how pages name a meeting."""
    return f"COPIL du {service.short_date(held_at)}"


@dataclass(frozen=True)
class DecisionInput:
    number: str
    outcome: State | None  # None: on the agenda but not examined (stays awaiting a decision)
    conditions: str = ""
    comment: str = ""


@dataclass(frozen=True)
class DecisionApplied:
    number: str
    title: str
    from_state: State
    outcome: State
    conditions: str
    comment: str
    budget_total: Decimal


@dataclass(frozen=True)
class CopilOutcome:
    copil: CopilInfo
    decisions: tuple[DecisionApplied, ...]  # in input order
    undecided: tuple[AgendaItem, ...]  # agenda items left awaiting a decision
    budget_year: int | None
    validated_budget: Decimal | None
    actor: str


def schedule_copil(
    uow: UnitOfWork,
    territory_code: str | None,
    *,
    held_at: datetime,
    place: str = "",
    member_emails: Sequence[str] = (),
    recorded_by: str | None = None,
    correlation_id: str | None = None,
) -> CopilInfo:
    """Plan a meeting (naive `held_at`: Europe/Paris) with its members (default: everyone with
    the COPIL member role) and an agenda of every action awaiting a decision."""
    territory = service.resolve_territory(uow, territory_code)
    assert territory.id is not None
    when = service.aware(held_at)
    actor = service.actor_name(uow, territory, recorded_by)
    problems: list[str] = []
    members = _members(uow, territory, member_emails, problems)
    if len(place) > 200:
        problems.append("Lieu : 200 caractères au plus.")
    problems += _date_clash(uow, territory, when)
    if problems:
        raise InvalidInput(problems)

    service.entering_write_phase()
    meeting = CopilMeeting(territory_id=territory.id, held_at=when, place=place.strip())
    uow.session.add(meeting)
    uow.flush()
    assert meeting.id is not None
    for person in members:
        assert person.id is not None
        uow.session.add(CopilMember(copil_id=meeting.id, person_id=person.id))
    pending = uow.session.exec(
        select(ActionSheet)
        .where(
            ActionSheet.territory_id == territory.id,
            col(ActionSheet.state).in_(AWAITING_DECISION),
        )
        .order_by(col(ActionSheet.priority), col(ActionSheet.number))
    ).all()
    for position, action in enumerate(pending, start=1):
        assert action.id is not None
        uow.session.add(
            CopilAgendaItem(copil_id=meeting.id, action_id=action.id, position=position)
        )
    uow.flush()
    info = copil_info(uow, meeting.id)
    uow.events.append(
        CopilScheduled(
            territory_code=territory.code,
            copil_id=meeting.id,
            held_at=when,
            agenda=tuple(item.number for item in info.agenda),
            place=meeting.place,
            members=tuple(p.email for p in members),
            actor=actor,
            correlation_id=correlation_id,
        )
    )
    return info


def _members(
    uow: UnitOfWork, territory: Territory, emails: Sequence[str], problems: list[str]
) -> list[Person]:
    """The people invited (default: everyone with the COPIL member role)."""
    assert territory.id is not None
    members: list[Person] = []
    for email in emails:
        if not email.strip():
            continue
        person = uow.repo.person_by_email(territory.id, email)
        if person is None:
            problems.append(
                f"Membres : « {email.strip()} » n'est pas une personne connue du territoire"
                f" « {territory.code} »."
            )
        elif person not in members:
            members.append(person)
    if not emails:
        members = list(uow.repo.people_with_role(territory.id, Role.COPIL_MEMBER))
    if not members and not problems:
        problems.append("Membres : indiquez au moins un membre du COPIL.")
    return members


def _date_clash(uow: UnitOfWork, territory: Territory, when: datetime) -> list[str]:
    clash = uow.session.exec(
        select(CopilMeeting).where(
            CopilMeeting.territory_id == territory.id,
            CopilMeeting.held_at == when,
            CopilMeeting.status != CopilStatus.CANCELLED,
        )
    ).first()
    if clash is None:
        return []
    return [
        f"Date : un COPIL (n° {clash.id}) est déjà prévu le"
        f" {service.short_datetime(when)} pour ce territoire."
    ]


def copil_info(uow: UnitOfWork, copil_id: int) -> CopilInfo:
    """The meeting with its members and agenda (actions in agenda order, current state)."""
    meeting = uow.repo.copil(copil_id)
    territory = uow.session.get_one(Territory, meeting.territory_id)
    people = uow.session.exec(
        select(Person)
        .join(CopilMember, col(CopilMember.person_id) == col(Person.id))
        .where(CopilMember.copil_id == copil_id)
        .order_by(col(Person.full_name))
    ).all()
    actions = uow.session.exec(
        select(ActionSheet)
        .join(CopilAgendaItem, col(CopilAgendaItem.action_id) == col(ActionSheet.id))
        .where(CopilAgendaItem.copil_id == copil_id)
        .order_by(col(CopilAgendaItem.position), col(ActionSheet.number))
    ).all()
    return CopilInfo(
        copil_id=copil_id,
        territory_code=territory.code,
        territory_name=territory.name,
        held_at=meeting.held_at,
        place=meeting.place,
        status=CopilStatus(meeting.status),
        members=tuple(f"{p.full_name} <{p.email}>" for p in people),
        agenda=_agenda_items(uow, actions),
    )


def _agenda_items(uow: UnitOfWork, actions: Sequence[ActionSheet]) -> tuple[AgendaItem, ...]:
    """The agenda's lines: pilots and budget totals read once for all (two queries)."""
    ids = [a.id for a in actions]
    pilots = {
        p.id: p.full_name
        for p in uow.session.exec(
            select(Person).where(col(Person.id).in_({a.pilot_id for a in actions if a.pilot_id}))
        ).all()
    }
    totals = dict(
        uow.session.exec(
            select(BudgetLine.action_id, sa.func.sum(BudgetLine.amount))
            .where(col(BudgetLine.action_id).in_(ids))
            .group_by(col(BudgetLine.action_id))
        ).all()
    )
    return tuple(
        AgendaItem(
            number=action.number,
            title=action.title,
            state=State(action.state),
            budget_total=totals.get(action.id or 0) or ZERO,
            pilot=pilots.get(action.pilot_id, "") if action.pilot_id else "",
            firm_commitment=action.firm_commitment,
        )
        for action in actions
    )


def hold_copil(
    uow: UnitOfWork,
    copil_id: int,
    decisions: Sequence[DecisionInput],
    *,
    budget_year: int | None = None,
    validated_budget: Decimal | None = None,
    recorded_by: str | None = None,
    correlation_id: str | None = None,
    at: datetime | None = None,
) -> CopilOutcome:
    """Record every decision of the meeting and the annual budget it validates, all or nothing.

    Each decision moves its action through `transition_action` (history row, domain event) and
    adds a `copil_decision` row; the meeting becomes *tenu*. Decisions with no outcome leave
    their action awaiting a decision (it goes on the next agenda).
    """
    when = service.aware(at) if at else service.now()
    try:
        meeting = uow.repo.copil(copil_id)
    except NotFound:
        raise InvalidInput([f"COPIL : aucune réunion n° {copil_id}."]) from None
    territory = uow.session.get_one(Territory, meeting.territory_id)
    info = copil_info(uow, copil_id)
    problems = [closed] if (closed := _closed(info)) is not None else []
    planned = _planned_decisions(uow, territory, copil_id, decisions, problems)
    budget = _checked_budget(meeting, budget_year, validated_budget, problems)
    if not planned and budget.amount is None and not problems:
        problems.append(f"{info.label} : aucune décision ni budget à enregistrer.")
    if problems:
        raise InvalidInput(problems)

    service.entering_write_phase()
    actor = f"{info.label}"
    if recorded_by and recorded_by.strip():
        actor += f" (saisie : {recorded_by.strip()})"
    actor = actor[: service.ACTOR_MAX]
    _claim_meeting(uow, meeting, info, budget)
    applied = {
        action.number: _apply_decision(uow, meeting, decision, action, actor, correlation_id, when)
        # Write in number order: two runs touching the same actions lock them in the same order.
        for decision, action in sorted(planned, key=lambda p: p[1].number)
    }
    in_order = tuple(applied[a.number] for _, a in planned)
    after = copil_info(uow, copil_id)
    undecided = tuple(item for item in after.agenda if item.state in AWAITING_DECISION)
    uow.events.append(
        CopilHeld(
            territory_code=territory.code,
            copil_id=copil_id,
            held_at=meeting.held_at,
            decisions=tuple((d.number, d.outcome) for d in in_order),
            undecided=tuple(item.number for item in undecided),
            budget_year=budget.year,
            validated_budget=budget.amount,
            actor=actor,
            correlation_id=correlation_id,
        )
    )
    return CopilOutcome(
        copil=after,
        decisions=in_order,
        undecided=undecided,
        budget_year=budget.year,
        validated_budget=budget.amount,
        actor=actor,
    )


def _planned_decisions(
    uow: UnitOfWork,
    territory: Territory,
    copil_id: int,
    decisions: Sequence[DecisionInput],
    problems: list[str],
) -> list[tuple[DecisionInput, ActionSheet]]:
    """The decisions that will move an action, checked against the lifecycle; what is wrong
    with the others goes to `problems`, one French line each, naming the decision."""
    planned: list[tuple[DecisionInput, ActionSheet]] = []
    seen: dict[str, int] = {}
    for position, decision in enumerate(decisions, start=1):
        number = service.normalise_number(decision.number)
        label = f"Décision n° {position} ({number or 'sans numéro'})"
        if not number:
            problems.append(f"{label} : indiquez le numéro de l'action.")
            continue
        if number in seen:
            problems.append(f"{label} : l'action figure déjà à la décision n° {seen[number]}.")
            continue
        seen[number] = position
        try:
            action = service.find_action(uow, territory, number)
        except NotFound as error:
            problems.append(f"{label} : {error}")
            continue
        if decision.outcome is None:
            continue
        if decision.outcome not in COPIL_OUTCOMES:
            problems.append(
                f"{label} : « {decision.outcome.label} » n'est pas une décision de COPIL"
                " (validée, rejetée, ajournée ou révision demandée)."
            )
            continue
        try:
            check_transition(
                number,
                State(action.state),
                decision.outcome,
                GuardFacts(copil_id=copil_id, copil_territory_matches=True),
            )
        except LifecycleError as error:
            problems.append(f"{label} : {error}")
            continue
        planned.append((decision, action))
    return planned


@dataclass(frozen=True)
class _Budget:
    year: int | None
    amount: Decimal | None


def _checked_budget(
    meeting: CopilMeeting, year: int | None, amount: Decimal | None, problems: list[str]
) -> _Budget:
    """The annual budget the meeting validates (the year defaults to the meeting's)."""
    if amount is not None:
        try:
            amount = to_money(amount, "budget validé")
        except (TypeError, ValueError) as error:
            problems.append(f"Budget validé : {error}.")
        else:
            if amount < 0:
                problems.append("Budget validé : le montant ne peut pas être négatif.")
            if year is None:
                year = service.paris_date(meeting.held_at).year
    if year is not None and not 2000 <= year <= 2100:
        problems.append(f"Année du budget : {year} n'est pas une année valide.")
    if year is not None and amount is None:
        problems.append(f"Budget validé : indiquez le montant du budget {year}.")
    return _Budget(year, amount)


def _claim_meeting(
    uow: UnitOfWork, meeting: CopilMeeting, info: CopilInfo, budget: _Budget
) -> None:
    """Mark the meeting held first: a second run holding it at the same time finds it held."""
    claimed = uow.session.execute(
        sa.update(CopilMeeting)
        .where(
            col(CopilMeeting.id) == meeting.id, col(CopilMeeting.status) == CopilStatus.SCHEDULED
        )
        .values(status=CopilStatus.HELD, budget_year=budget.year, validated_budget=budget.amount)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        uow.session.rollback()
        raise ConcurrencyConflict(
            f"Conflit sur le {info.label} : ses décisions ont été enregistrées par une autre"
            " opération pendant la vôtre. Rien n'a été enregistré ; rechargez et vérifiez."
        )
    set_committed_value(meeting, "status", CopilStatus.HELD)
    set_committed_value(meeting, "budget_year", budget.year)
    set_committed_value(meeting, "validated_budget", budget.amount)


def _apply_decision(
    uow: UnitOfWork,
    meeting: CopilMeeting,
    decision: DecisionInput,
    action: ActionSheet,
    actor: str,
    correlation_id: str | None,
    when: datetime,
) -> DecisionApplied:
    """Move one action (history row, domain event) and record the COPIL's decision on it."""
    assert decision.outcome is not None and action.id is not None and meeting.id is not None
    source = State(action.state)
    transition_action(
        uow,
        action,
        decision.outcome,
        actor=actor,
        reason=_reason(decision),
        correlation_id=correlation_id,
        copil_id=meeting.id,
        at=when,
    )
    uow.session.add(
        CopilDecision(
            copil_id=meeting.id,
            action_id=action.id,
            outcome=decision.outcome,
            conditions=decision.conditions.strip(),
            comment=decision.comment.strip(),
        )
    )
    add_to_agenda(uow, meeting, action)
    uow.flush()
    return DecisionApplied(
        number=action.number,
        title=action.title,
        from_state=source,
        outcome=decision.outcome,
        conditions=decision.conditions.strip(),
        comment=decision.comment.strip(),
        budget_total=uow.repo.budget_total(action.id),
    )


def _closed(info: CopilInfo) -> str | None:
    if info.status is CopilStatus.HELD:
        return f"{info.label} : déjà tenu, ses décisions sont enregistrées."
    if info.status is CopilStatus.CANCELLED:
        return f"{info.label} : annulé, il ne peut pas rendre de décisions."
    return None


def copil_awaiting_decisions(uow: UnitOfWork, copil_id: int) -> CopilInfo:
    """The meeting and its agenda, if its decisions can still be recorded (else InvalidInput)."""
    try:
        info = copil_info(uow, copil_id)
    except NotFound:
        raise InvalidInput([f"COPIL : aucune réunion n° {copil_id}."]) from None
    if (closed := _closed(info)) is not None:
        raise InvalidInput([closed])
    return info


def _reason(decision: DecisionInput) -> str | None:
    parts = []
    if decision.conditions.strip():
        parts.append(f"Conditions : {decision.conditions.strip()}")
    if decision.comment.strip():
        parts.append(decision.comment.strip())
    return " — ".join(parts) or None


def decisions_markdown(outcome: CopilOutcome) -> str:
    """The COPIL's decisions as a French markdown summary (the run's artifact)."""
    copil = outcome.copil
    lines = [
        f"# {copil.label} — {copil.territory_name}",
        "",
        f"Réunion du {service.short_datetime(copil.held_at)}"
        + (f", {copil.place}" if copil.place else "")
        + f". Décisions enregistrées par : {outcome.actor}.",
        "",
    ]
    if outcome.decisions:
        lines += [
            "| N° | Action | Avant | Décision | Conditions | Commentaire | Budget |",
            "| --- | --- | --- | --- | --- | --- | ---: |",
        ]
        for d in outcome.decisions:
            lines.append(
                f"| {d.number} | {_cell(d.title)} | {d.from_state.label} | **{d.outcome.label}**"
                f" | {_cell(d.conditions) or '—'} | {_cell(d.comment) or '—'}"
                f" | {format_eur(d.budget_total)} |"
            )
        lines.append("")
        counts: dict[State, int] = {}
        for d in outcome.decisions:
            counts[d.outcome] = counts.get(d.outcome, 0) + 1
        lines.append(
            "Bilan : "
            + ", ".join(f"{n} {state.label}{'s' if n > 1 else ''}" for state, n in counts.items())
            + "."
        )
        lines.append("")
    else:
        lines += ["Aucune décision sur les actions.", ""]
    if outcome.undecided:
        lines.append("Restent en attente d'une décision (prochain COPIL) :")
        lines += [
            f"- {item.number} — {item.title} ({item.state.label})" for item in outcome.undecided
        ]
        lines.append("")
    if outcome.validated_budget is not None:
        lines.append(
            f"Budget {outcome.budget_year} validé : **{format_eur(outcome.validated_budget)}**."
        )
    return "\n".join(lines).rstrip() + "\n"


def agenda_markdown(info: CopilInfo) -> str:
    """The agenda of a scheduled COPIL as French markdown."""
    lines = [
        f"# {info.label} — {info.territory_name}",
        "",
        f"Le {service.short_datetime(info.held_at)}" + (f", {info.place}" if info.place else "."),
        "",
        f"Membres ({len(info.members)}) : " + ", ".join(m.split(" <")[0] for m in info.members),
        "",
    ]
    if info.agenda:
        lines += ["| N° | Action | État | Pilote | Budget |", "| --- | --- | --- | --- | ---: |"]
        lines += [
            f"| {i.number} | {_cell(i.title)} | {i.state.label} | {i.pilot or '—'}"
            f" | {format_eur(i.budget_total)} |"
            for i in info.agenda
        ]
    else:
        lines.append("Aucune action en attente de décision.")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
