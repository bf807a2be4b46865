"""Domain events → Prefect events, through the event outbox (notifications/event_outbox.py).

The message bus stores each domain event's Prefect event (:func:`to_prefect`) in the unit of
work that recorded it; after commit, :func:`publish_pending_events` sends what is waiting.
Importing this module does not import Prefect (the bus runs without it).

Names and resources (deployment triggers match on them):

    ActionTransitioned  tiflow.action.<to_state>   tiflow.action.<territory>.<number>
    CopilScheduled      tiflow.copil.scheduled     tiflow.copil.<id>
    CopilHeld           tiflow.copil.held          tiflow.copil.<id>
    FundingRecorded     tiflow.funding.recorded    tiflow.action.<territory>.<number>
    ProgressReported    tiflow.progress.reported   tiflow.action.<territory>.<number>

(`<to_state>` is a lifecycle state value: `tiflow.action.validated`, `tiflow.action.funded`…)

Related resources, by role: `territory` (`tiflow.territory.<code>`), `pilot`
(`tiflow.person.<email>`), `copil` (`tiflow.copil.<id>`), `funder`
(`tiflow.organisation.<territory>.<name>`), `agenda-item` (actions on a COPIL's agenda) and
`flow-run` (`prefect.flow-run.<id>`, the run that made the change, also the history row's
correlation id). Amounts in payloads are strings (exact decimals, e.g. ``"12500.00"``).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.engine import Engine

from flows.usecases.service import short_date, short_datetime
from models.events import (
    ActionTransitioned,
    CopilHeld,
    CopilScheduled,
    DomainEvent,
    FundingRecorded,
    ProgressReported,
)
from models.money import ZERO
from notifications.event_outbox import PublishReport, publish_pending

# Prefect refuses events with more than 100 related resources (and emit_event drops them
# silently); the full agenda is always in the payload.
AGENDA_RELATED_MAX = 50


def action_resource_id(territory_code: str, number: str) -> str:
    return f"tiflow.action.{territory_code}.{number}"


def copil_resource_id(copil_id: int) -> str:
    return f"tiflow.copil.{copil_id}"


def send_to_prefect(batch: list[dict[str, Any]]) -> None:
    """Post a batch of events to the Prefect API and wait for its answer (raises if the server
    is unreachable or refuses them): unlike `emit_event`, which queues them in a background
    worker and drops them if the server is down."""
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.events import Event

    events = [Event.model_validate(spec).model_dump(mode="json") for spec in batch]
    with get_client(sync_client=True) as client:
        response = client.request("POST", "/events", json=events)
        response.raise_for_status()


def prefect_events_on() -> bool:
    """False when this process has no Prefect API (then events wait in the outbox)."""
    from prefect.events.worker import should_emit_events

    return should_emit_events()


def publish_pending_events(engine: Engine, *, ephemeral: bool = True) -> PublishReport:
    """Publish the event outbox's waiting events, oldest first (nothing without a Prefect API).

    `ephemeral=False`: only to a configured server (PREFECT_API_URL), never by starting
    Prefect's temporary one (8 to 12 s): what the command line wants for one short step."""
    from prefect.settings import PREFECT_API_URL

    if not prefect_events_on() or (not ephemeral and not PREFECT_API_URL.value()):
        from notifications.event_outbox import pending_count

        return PublishReport(pending=pending_count(engine), error="pas d'API Prefect")
    return publish_pending(engine, send_to_prefect)


def to_prefect(event: DomainEvent) -> dict[str, Any]:
    """The `emit_event` arguments for a domain event (pure: testable without Prefect)."""
    if isinstance(event, ActionTransitioned):
        return _action_transitioned(event)
    if isinstance(event, CopilScheduled):
        return _copil_scheduled(event)
    if isinstance(event, CopilHeld):
        return _copil_held(event)
    if isinstance(event, FundingRecorded):
        return _funding_recorded(event)
    if isinstance(event, ProgressReported):
        return _progress_reported(event)
    raise TypeError(f"unknown domain event {event!r}")


def _action(territory_code: str, number: str, title: str) -> dict[str, str]:
    return {
        "prefect.resource.id": action_resource_id(territory_code, number),
        "prefect.resource.name": f"{number} — {title}"[:200],
        "tiflow.territory": territory_code,
        "tiflow.action.number": number,
    }


def _related(
    territory_code: str,
    *,
    correlation_id: str | None = None,
    pilot_email: str | None = None,
    copil_id: int | None = None,
) -> list[dict[str, str]]:
    related = [
        {
            "prefect.resource.id": f"tiflow.territory.{territory_code}",
            "prefect.resource.role": "territory",
        }
    ]
    if pilot_email:
        related.append(
            {
                "prefect.resource.id": f"tiflow.person.{pilot_email}",
                "prefect.resource.role": "pilot",
                "prefect.resource.name": pilot_email,
            }
        )
    if copil_id is not None:
        related.append(
            {"prefect.resource.id": copil_resource_id(copil_id), "prefect.resource.role": "copil"}
        )
    if correlation_id and _is_uuid(correlation_id):
        related.append(
            {
                "prefect.resource.id": f"prefect.flow-run.{correlation_id}",
                "prefect.resource.role": "flow-run",
            }
        )
    return related


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _action_transitioned(e: ActionTransitioned) -> dict[str, Any]:
    return {
        "event": e.name,
        "resource": {
            **_action(e.territory_code, e.number, e.title),
            "tiflow.state": e.to_state.value,
        },
        "related": _related(
            e.territory_code,
            correlation_id=e.correlation_id,
            pilot_email=e.pilot_email,
            copil_id=e.copil_id,
        ),
        "payload": {
            "action_id": e.action_id,
            "from_state": e.from_state.value,
            "to_state": e.to_state.value,
            "from_label": e.from_state.label,
            "to_label": e.to_state.label,
            "reason": e.reason,
            "actor": e.actor,
            "at": e.at.isoformat(),
            "copil_id": e.copil_id,
            "override": e.override,
            "correlation_id": e.correlation_id,
        },
    }


def _copil(copil_id: int, territory_code: str, held_at: Any) -> dict[str, str]:
    return {
        "prefect.resource.id": copil_resource_id(copil_id),
        "prefect.resource.name": f"COPIL du {short_date(held_at)}",
        "tiflow.territory": territory_code,
    }


def _copil_scheduled(e: CopilScheduled) -> dict[str, Any]:
    related = _related(e.territory_code, correlation_id=e.correlation_id)
    related += [
        {
            "prefect.resource.id": action_resource_id(e.territory_code, number),
            "prefect.resource.role": "agenda-item",
        }
        for number in e.agenda[:AGENDA_RELATED_MAX]
    ]
    return {
        "event": e.name,
        "resource": _copil(e.copil_id, e.territory_code, e.held_at),
        "related": related,
        "payload": {
            "copil_id": e.copil_id,
            "held_at": e.held_at.isoformat(),
            "held_at_paris": short_datetime(e.held_at),
            "place": e.place,
            "agenda": list(e.agenda),
            "members": list(e.members),
            "actor": e.actor,
            "correlation_id": e.correlation_id,
        },
    }


def _copil_held(e: CopilHeld) -> dict[str, Any]:
    return {
        "event": e.name,
        "resource": _copil(e.copil_id, e.territory_code, e.held_at),
        "related": _related(e.territory_code, correlation_id=e.correlation_id),
        "payload": {
            "copil_id": e.copil_id,
            "held_at": e.held_at.isoformat(),
            "decisions": {number: outcome.value for number, outcome in e.decisions},
            "undecided": list(e.undecided),
            "budget_year": e.budget_year,
            "validated_budget": None if e.validated_budget is None else str(e.validated_budget),
            "actor": e.actor,
            "correlation_id": e.correlation_id,
        },
    }


def _funding_recorded(e: FundingRecorded) -> dict[str, Any]:
    related = _related(e.territory_code, correlation_id=e.correlation_id, pilot_email=e.pilot_email)
    related.append(
        {
            "prefect.resource.id": f"tiflow.organisation.{e.territory_code}.{e.funder}",
            "prefect.resource.role": "funder",
            "prefect.resource.name": e.funder,
        }
    )
    return {
        "event": e.name,
        "resource": _action(e.territory_code, e.number, e.title),
        "related": related,
        "payload": {
            "action_id": e.action_id,
            "funder": e.funder,
            "year": e.year,
            "requested": str(e.requested),
            "granted": str(e.granted),
            "paid": str(e.paid),
            "decision_date": e.decision_date.isoformat() if e.decision_date else None,
            "convention_ref": e.convention_ref,
            "budget_total": str(e.budget_total),
            "granted_total": str(e.granted_total),
            "missing": str(max(e.budget_total - e.granted_total, ZERO)),
            "actor": e.actor,
            "at": e.at.isoformat(),
            "correlation_id": e.correlation_id,
        },
    }


def _progress_reported(e: ProgressReported) -> dict[str, Any]:
    return {
        "event": e.name,
        "resource": _action(e.territory_code, e.number, e.title),
        "related": _related(
            e.territory_code, correlation_id=e.correlation_id, pilot_email=e.pilot_email
        ),
        "payload": {
            "action_id": e.action_id,
            "milestones_done": list(e.milestones_done),
            "indicators": {name: str(value) for name, value in e.indicators},
            "note": e.note,
            "actor": e.actor,
            "at": e.at.isoformat(),
            "correlation_id": e.correlation_id,
        },
    }
