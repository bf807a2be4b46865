"""The one way an action changes state: check table and guards, write history, record the event."""

from __future__ import annotations

from datetime import datetime

from models import clock
from models.events import ActionTransitioned
from models.lifecycle import GuardFacts, State, check_transition
from models.tables import ActionSheet, Territory, TransitionRecord
from models.uow import UnitOfWork


def transition_action(
    uow: UnitOfWork,
    action: ActionSheet,
    target: State,
    *,
    actor: str,
    reason: str | None = None,
    correlation_id: str | None = None,
    copil_id: int | None = None,
    override: bool = False,
    at: datetime | None = None,
) -> ActionTransitioned:
    """Move `action` to `target` inside the caller's unit of work (which commits or not).

    Raises a LifecycleError (French message) and changes nothing if the move is not allowed.
    """
    assert action.id is not None
    uow.flush()  # the guards below must see what the caller already changed (funding, budget)
    source = State(action.state)
    copil_matches = True
    if copil_id is not None:
        copil_matches = uow.repo.copil(copil_id).territory_id == action.territory_id
    facts = GuardFacts(
        copil_id=copil_id,
        copil_territory_matches=copil_matches,
        budget_total=uow.repo.budget_total(action.id),
        granted_total=uow.repo.granted_total(action.id),
        override=override,
        reason=reason,
    )
    check_transition(action.number, source, target, facts)

    when = at or clock.now()
    action.state = target
    action.updated_at = when
    uow.session.add(action)
    uow.session.add(
        TransitionRecord(
            action_id=action.id,
            from_state=source,
            to_state=target,
            at=when,
            actor=actor,
            reason=reason,
            correlation_id=correlation_id,
            copil_id=copil_id,
            override=override and facts.granted_total < facts.budget_total,
        )
    )
    pilot = uow.repo.person(action.pilot_id)
    event = ActionTransitioned(
        territory_code=uow.session.get_one(Territory, action.territory_id).code,
        number=action.number,
        action_id=action.id,
        title=action.title,
        from_state=source,
        to_state=target,
        at=when,
        actor=actor,
        reason=reason,
        correlation_id=correlation_id,
        copil_id=copil_id,
        pilot_email=pilot.email if pilot else None,
        override=override,
    )
    uow.events.append(event)
    return event
