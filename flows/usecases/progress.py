"""Carrying an action out: progress reports (milestones, indicators, follow-up notes), then
start, completion or abandonment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from sqlmodel import col, select

from flows.usecases import service
from models.errors import InvalidInput
from models.events import ActionTransitioned, ProgressReported
from models.lifecycle import GuardFacts, LifecycleError, State, check_transition
from models.tables import (
    ActionChange,
    ActionSheet,
    FollowUpNote,
    Indicator,
    Milestone,
    Person,
    Territory,
)
from models.transitions import transition_action
from models.uow import UnitOfWork


@dataclass(frozen=True)
class MilestoneDone:
    title: str
    done_on: date | None = None  # default: the report's day


@dataclass(frozen=True)
class IndicatorValue:
    name: str
    value: Decimal
    measured_on: date | None = None  # default: the report's day


@dataclass(frozen=True)
class OpenMilestone:
    title: str
    due_date: date


@dataclass(frozen=True)
class IndicatorStatus:
    name: str
    unit: str
    target: Decimal
    actual: Decimal | None


@dataclass(frozen=True)
class ProgressResult:
    number: str
    title: str
    state: State
    milestones_done: tuple[str, ...]
    open_milestones: tuple[OpenMilestone, ...]
    indicators: tuple[IndicatorStatus, ...]
    note_written: bool


@dataclass(frozen=True)
class StepResult:
    number: str
    title: str
    from_state: State
    to_state: State
    event: ActionTransitioned
    open_milestones: tuple[OpenMilestone, ...]  # milestones not done (shown at completion)


def report_progress(
    uow: UnitOfWork,
    territory_code: str | None,
    number: str,
    *,
    milestones_done: Sequence[MilestoneDone] = (),
    indicator_values: Sequence[IndicatorValue] = (),
    note: str | None = None,
    author_email: str | None = None,
    on: date | None = None,
    recorded_by: str | None = None,
    correlation_id: str | None = None,
    at: datetime | None = None,
) -> ProgressResult:
    """Mark milestones done, record indicator values and write a follow-up note (by the pilot
    unless `author_email` names someone else). No state change."""
    when = service.aware(at) if at else service.now()
    day = on or service.paris_date(when)
    territory = service.resolve_territory(uow, territory_code)
    action = service.find_action(uow, territory, number)
    assert action.id is not None and territory.id is not None
    actor = service.actor_name(uow, territory, recorded_by)
    problems: list[str] = []
    if (dead := service.require_alive(action, "d'avancement")) is not None:
        problems.append(dead)
    to_mark = _milestones_to_mark(uow, action, milestones_done, day, problems)
    to_measure = _values_to_record(uow, action, indicator_values, day, problems)
    author = _author(uow, action, territory, author_email, problems)
    text = (note or "").strip()
    if not (to_mark or to_measure or text) and not problems:
        problems.append(
            f"Avancement de {action.number} : rien à enregistrer (jalon, indicateur ou note)."
        )
    if problems:
        raise InvalidInput(problems)

    service.entering_write_phase()
    _write_progress(uow, action, to_mark, to_measure, text, author, day, when)
    uow.session.add(_change(action, actor, to_mark, to_measure, text, when, correlation_id))
    uow.flush()
    pilot = uow.repo.person(action.pilot_id)
    uow.events.append(
        ProgressReported(
            territory_code=territory.code,
            number=action.number,
            action_id=action.id,
            title=action.title,
            milestones_done=tuple(m.title for m, _ in to_mark),
            indicators=tuple((i.name, v) for i, v, _ in to_measure),
            note=bool(text),
            at=when,
            actor=actor,
            correlation_id=correlation_id,
            pilot_email=pilot.email if pilot else None,
        )
    )
    return ProgressResult(
        number=action.number,
        title=action.title,
        state=State(action.state),
        milestones_done=tuple(m.title for m, _ in to_mark),
        open_milestones=_open_milestones(uow, action),
        indicators=tuple(
            IndicatorStatus(i.name, i.unit, i.target, i.actual) for i in _indicators(uow, action)
        ),
        note_written=bool(text),
    )


def _write_progress(
    uow: UnitOfWork,
    action: ActionSheet,
    to_mark: list[tuple[Milestone, date]],
    to_measure: list[tuple[Indicator, Decimal, date]],
    text: str,
    author: Person | None,
    day: date,
    when: datetime,
) -> None:
    assert action.id is not None
    for milestone, done_on in to_mark:
        milestone.done_on = done_on
        uow.session.add(milestone)
    for indicator, measured, measured_on in to_measure:
        indicator.actual, indicator.measured_on = measured, measured_on
        uow.session.add(indicator)
    if text:
        uow.session.add(
            FollowUpNote(
                action_id=action.id,
                author_id=author.id if author else None,
                written_on=day,
                text=text,
            )
        )
    action.updated_at = when  # bumps the version: concurrent edits of one action conflict
    uow.session.add(action)
    uow.flush()


def _milestones_to_mark(
    uow: UnitOfWork,
    action: ActionSheet,
    done: Sequence[MilestoneDone],
    day: date,
    problems: list[str],
) -> list[tuple[Milestone, date]]:
    milestones = {m.title.strip().lower(): m for m in _milestones(uow, action)}
    to_mark: list[tuple[Milestone, date]] = []
    for position, item in enumerate(done, start=1):
        milestone = milestones.get(item.title.strip().lower())
        if milestone is None:
            known = "; ".join(f"« {m.title} »" for m in milestones.values()) or "aucun"
            problems.append(
                f"Jalon {position} : « {item.title.strip()} » n'est pas un jalon de"
                f" l'action {action.number} (jalons : {known})."
            )
        else:
            to_mark.append((milestone, item.done_on or day))
    return to_mark


def _values_to_record(
    uow: UnitOfWork,
    action: ActionSheet,
    values: Sequence[IndicatorValue],
    day: date,
    problems: list[str],
) -> list[tuple[Indicator, Decimal, date]]:
    indicators = {i.name.strip().lower(): i for i in _indicators(uow, action)}
    to_measure: list[tuple[Indicator, Decimal, date]] = []
    for position, value in enumerate(values, start=1):
        indicator = indicators.get(value.name.strip().lower())
        if indicator is None:
            known = "; ".join(f"« {i.name} »" for i in indicators.values()) or "aucun"
            problems.append(
                f"Indicateur {position} : « {value.name.strip()} » n'est pas un indicateur de"
                f" l'action {action.number} (indicateurs : {known})."
            )
            continue
        try:
            if isinstance(value.value, float):
                raise TypeError
            measured = Decimal(value.value)
            if not measured.is_finite():
                raise InvalidOperation
        except (TypeError, ValueError, InvalidOperation):
            problems.append(f"Indicateur {position} ({indicator.name}) : valeur invalide.")
            continue
        to_measure.append((indicator, measured, value.measured_on or day))
    return to_measure


def _author(
    uow: UnitOfWork,
    action: ActionSheet,
    territory: Territory,
    email: str | None,
    problems: list[str],
) -> Person | None:
    """Who wrote the note: the person named, else the action's pilot."""
    if not (email and email.strip()):
        return uow.repo.person(action.pilot_id)
    assert territory.id is not None
    author = uow.repo.person_by_email(territory.id, email)
    if author is None:
        problems.append(
            f"Auteur : « {email.strip()} » n'est pas une personne connue du territoire."
        )
    return author


def start_action(
    uow: UnitOfWork,
    territory_code: str | None,
    number: str,
    *,
    reason: str | None = None,
    recorded_by: str | None = None,
    correlation_id: str | None = None,
    at: datetime | None = None,
) -> StepResult:
    """*financée* → *en cours*."""
    return _step(
        uow, territory_code, number, State.IN_PROGRESS, reason, recorded_by, correlation_id, at
    )


def complete_action(
    uow: UnitOfWork,
    territory_code: str | None,
    number: str,
    *,
    reason: str | None = None,
    recorded_by: str | None = None,
    correlation_id: str | None = None,
    at: datetime | None = None,
) -> StepResult:
    """*en cours* → *terminée*; the result lists milestones never marked done."""
    return _step(
        uow, territory_code, number, State.COMPLETED, reason, recorded_by, correlation_id, at
    )


def abandon_action(
    uow: UnitOfWork,
    territory_code: str | None,
    number: str,
    *,
    reason: str,
    recorded_by: str | None = None,
    correlation_id: str | None = None,
    at: datetime | None = None,
) -> StepResult:
    """Any open state → *abandonnée*; the reason is required."""
    return _step(
        uow, territory_code, number, State.ABANDONED, reason, recorded_by, correlation_id, at
    )


def _step(
    uow: UnitOfWork,
    territory_code: str | None,
    number: str,
    target: State,
    reason: str | None,
    recorded_by: str | None,
    correlation_id: str | None,
    at: datetime | None,
) -> StepResult:
    when = service.aware(at) if at else service.now()
    territory = service.resolve_territory(uow, territory_code)
    action = service.find_action(uow, territory, number)
    actor = service.actor_name(uow, territory, recorded_by)
    source = State(action.state)
    try:
        check_transition(action.number, source, target, GuardFacts(reason=reason))
    except LifecycleError as error:
        raise InvalidInput([str(error)]) from None
    service.entering_write_phase()
    event = transition_action(
        uow,
        action,
        target,
        actor=actor,
        reason=(reason or "").strip() or None,
        correlation_id=correlation_id,
        at=when,
    )
    return StepResult(
        number=action.number,
        title=action.title,
        from_state=source,
        to_state=target,
        event=event,
        open_milestones=_open_milestones(uow, action),
    )


def _change(
    action: ActionSheet,
    actor: str,
    marked: Sequence[tuple[Milestone, date]],
    measured: Sequence[tuple[Indicator, Decimal, date]],
    note: str,
    when: datetime,
    correlation_id: str | None,
) -> ActionChange:
    """The history row of a progress report (who reported what), in French."""
    parts = [f"jalon « {m.title} » fait le {service.short_date(day)}" for m, day in marked]
    parts += [f"indicateur « {i.name} » : {value} {i.unit}".rstrip() for i, value, _ in measured]
    if note:
        parts.append("note de suivi ajoutée")
    assert action.id is not None
    return ActionChange(
        action_id=action.id,
        at=when,
        actor=actor,
        summary="Avancement : " + " ; ".join(parts) + ".",
        correlation_id=correlation_id,
    )


def _milestones(uow: UnitOfWork, action: ActionSheet) -> list[Milestone]:
    return list(
        uow.session.exec(
            select(Milestone)
            .where(Milestone.action_id == action.id)
            .order_by(col(Milestone.due_date), col(Milestone.id))
        ).all()
    )


def _indicators(uow: UnitOfWork, action: ActionSheet) -> list[Indicator]:
    return list(
        uow.session.exec(
            select(Indicator).where(Indicator.action_id == action.id).order_by(col(Indicator.id))
        ).all()
    )


def _open_milestones(uow: UnitOfWork, action: ActionSheet) -> tuple[OpenMilestone, ...]:
    return tuple(
        OpenMilestone(m.title, m.due_date) for m in _milestones(uow, action) if m.done_on is None
    )
