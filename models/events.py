"""Domain events: facts the domain records; flows publish them (Prefect events, notifications)
only after the unit of work has committed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from models.lifecycle import State


@dataclass(frozen=True)
class ActionTransitioned:
    territory_code: str
    number: str
    action_id: int
    title: str
    from_state: State
    to_state: State
    at: datetime
    actor: str
    reason: str | None = None
    correlation_id: str | None = None
    copil_id: int | None = None
    pilot_email: str | None = None
    override: bool = False

    @property
    def name(self) -> str:
        return f"tiflow.action.{self.to_state.value}"


@dataclass(frozen=True)
class CopilScheduled:
    territory_code: str
    copil_id: int
    held_at: datetime
    agenda: tuple[str, ...] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        return "tiflow.copil.scheduled"


DomainEvent = ActionTransitioned | CopilScheduled
