"""Domain events: facts the domain records; flows publish them (Prefect events, notifications)
only after the unit of work has committed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

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
    place: str = ""
    members: tuple[str, ...] = field(default_factory=tuple)  # e-mail addresses
    actor: str = ""
    correlation_id: str | None = None

    @property
    def name(self) -> str:
        return "tiflow.copil.scheduled"


@dataclass(frozen=True)
class CopilHeld:
    """A COPIL's decisions were recorded (each decision also has its ActionTransitioned)."""

    territory_code: str
    copil_id: int
    held_at: datetime
    decisions: tuple[tuple[str, State], ...]  # (action number, outcome), in input order
    undecided: tuple[str, ...] = ()  # agenda items left without a decision
    budget_year: int | None = None
    validated_budget: Decimal | None = None
    actor: str = ""
    correlation_id: str | None = None

    @property
    def name(self) -> str:
        return "tiflow.copil.held"


@dataclass(frozen=True)
class FundingRecorded:
    territory_code: str
    number: str
    action_id: int
    title: str
    funder: str  # organisation short name (or name)
    year: int
    requested: Decimal
    granted: Decimal
    paid: Decimal
    decision_date: date | None
    convention_ref: str | None
    budget_total: Decimal  # the action's, all years
    granted_total: Decimal  # the action's, all funders and years, after this record
    at: datetime
    actor: str
    correlation_id: str | None = None
    pilot_email: str | None = None

    @property
    def name(self) -> str:
        return "tiflow.funding.recorded"


@dataclass(frozen=True)
class ProgressReported:
    territory_code: str
    number: str
    action_id: int
    title: str
    milestones_done: tuple[str, ...]
    indicators: tuple[tuple[str, Decimal], ...]
    note: bool  # a follow-up note was written
    at: datetime
    actor: str
    correlation_id: str | None = None
    pilot_email: str | None = None

    @property
    def name(self) -> str:
        return "tiflow.progress.reported"


DomainEvent = ActionTransitioned | CopilScheduled | CopilHeld | FundingRecorded | ProgressReported
