"""The message bus: which handlers each domain event gets, inside the unit of work that
recorded it (after cosmicpython's `messagebus.py`).

    with unit_of_work(engine) as uow:      # the one way to open a unit of work
        hold_copil(uow, copil_id, decisions)
        uow.commit()                        # handlers run here, then the session commits

Whoever made the decision — `tiflow run copil`, the Prefect form, a served deployment, a
worker, the demo, later the web — the notices it calls for are in the outbox when the
decision is, and only then: a unit of work that rolls back leaves no message behind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from sqlalchemy.engine import Engine

from flows.events import publish_pending_events, to_prefect
from flows.usecases.notices import decision_notice, kickoff_notice, next_steps_notice
from models.events import (
    ActionTransitioned,
    CopilHeld,
    CopilScheduled,
    DomainEvent,
    FundingRecorded,
    ProgressReported,
)
from models.lifecycle import State
from models.settings import Settings
from models.uow import HandlerTable, UnitOfWork
from notifications import event_outbox
from notifications.event_outbox import PublishReport
from notifications.outbox import (
    DeliveryReport,
    DeliverySettings,
    NewMessage,
    deliver_pending,
    enqueue,
    open_deliverer,
)

NoticeBuilder = Callable[[UnitOfWork, str, str], list[NewMessage]]

# The transitions a person must hear about, and the notice each calls for.
NOTICES: dict[State, NoticeBuilder] = {
    State.VALIDATED: next_steps_notice,
    State.REVISION_REQUESTED: partial(decision_notice, outcome=State.REVISION_REQUESTED),
    State.REJECTED: partial(decision_notice, outcome=State.REJECTED),
    State.DEFERRED: partial(decision_notice, outcome=State.DEFERRED),
    State.FUNDED: kickoff_notice,
}

# The outbox kinds of the notices (their French names: notifications/kinds.py).
NOTICE_KINDS = ("next-steps", "revision", "rejection", "deferral", "kickoff")


def enqueue_notice(event: ActionTransitioned, uow: UnitOfWork) -> None:
    """Put the notice of this transition in the outbox, in the transition's transaction."""
    build = NOTICES.get(event.to_state)
    if build is None:
        return
    uow.flush()  # the notice is keyed by the history row the transition just added
    enqueue(
        uow,
        build(uow, event.territory_code, event.number),
        correlation_id=event.correlation_id,
    )


def store_for_prefect(event: DomainEvent, uow: UnitOfWork) -> None:
    """Keep the event for Prefect (deployment triggers, automations), published after commit."""
    event_outbox.store(uow, [to_prefect(event)], correlation_id=event.correlation_id)


HANDLERS: HandlerTable = {
    ActionTransitioned: [enqueue_notice, store_for_prefect],
    CopilScheduled: [store_for_prefect],
    CopilHeld: [store_for_prefect],
    FundingRecorded: [store_for_prefect],
    ProgressReported: [store_for_prefect],
}


def unit_of_work(engine: Engine) -> UnitOfWork:
    """A unit of work on `engine` whose commit runs the handlers above: the one factory
    (tests/architecture checks that nothing else constructs a UnitOfWork)."""
    return UnitOfWork(engine, handlers=HANDLERS)


@dataclass(frozen=True)
class Sent:
    events: PublishReport
    notices: DeliveryReport | None  # None: no decision called for a notice


def send_consequences(
    engine: Engine,
    events: Sequence[DomainEvent],
    settings: Settings,
    correlation_id: str | None,
    *,
    ephemeral: bool = True,
) -> Sent:
    """After commit, whatever the entrance: publish the waiting Prefect events, then deliver
    the notices the committed decisions called for (a failure leaves them in their outbox
    for the next round)."""
    published = publish_pending_events(engine, ephemeral=ephemeral)
    if not any(isinstance(e, ActionTransitioned) and e.to_state in NOTICES for e in events):
        return Sent(published, None)
    with open_deliverer(settings) as deliverer:
        report = deliver_pending(
            engine,
            deliverer,
            policy=DeliverySettings().policy(),
            kinds=list(NOTICE_KINDS),
            correlation_id=correlation_id,
        )
    return Sent(published, report)
