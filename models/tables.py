"""Persistent entities (SQLModel tables).

Relations are plain foreign keys read through the repository, not ORM relationships: it keeps
loading explicit and the queries the flows run easy to see.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import declared_attr
from sqlmodel import Field, SQLModel

from models import clock
from models.errors import TiflowError
from models.lifecycle import State
from models.money import ZERO, Money
from models.types import ExactDecimal, UTCDateTime, enum_type
from models.vocabulary import Axis, BudgetKind, CopilStatus, OrganisationKind, Priority, Role


def utcnow() -> datetime:
    return clock.now()


def _money(**kw: object) -> object:
    return Field(default=ZERO, sa_type=Money, sa_column_kwargs={"nullable": False}, **kw)  # type: ignore[call-overload]


class Territory(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(
        max_length=64, unique=True, description="identifiant court, ex. grand-est-touraine"
    )
    name: str = Field(max_length=200)
    department: str | None = Field(default=None, max_length=100)
    region: str | None = Field(default=None, max_length=100)
    is_example: bool = Field(default=False, description="données d'exemple, pas un vrai plan")


class Organisation(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("territory_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    territory_id: int = Field(foreign_key="territory.id", index=True)
    name: str = Field(max_length=200)
    short_name: str | None = Field(default=None, max_length=40)
    kind: OrganisationKind = Field(sa_type=enum_type(OrganisationKind))
    is_funder: bool = False


class Person(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("territory_id", "email"),)
    id: int | None = Field(default=None, primary_key=True)
    territory_id: int = Field(foreign_key="territory.id", index=True)
    full_name: str = Field(max_length=200)
    email: str = Field(max_length=254)
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id")
    position: str | None = Field(default=None, max_length=200, description="fonction")


class PersonRole(SQLModel, table=True):
    person_id: int = Field(foreign_key="person.id", primary_key=True)
    role: Role = Field(sa_type=enum_type(Role), primary_key=True)


class ActionSheet(SQLModel, table=True):
    """A *fiche action*. `version` gives optimistic locking: a stale write raises a conflict."""

    __tablename__ = "action_sheet"
    __table_args__ = (sa.UniqueConstraint("territory_id", "number"),)
    id: int | None = Field(default=None, primary_key=True)
    territory_id: int = Field(foreign_key="territory.id", index=True)
    number: str = Field(max_length=20, description="numéro, ex. FA-07")
    title: str = Field(max_length=300)
    description: str = Field(default="", sa_type=sa.Text)
    axis: Axis = Field(sa_type=enum_type(Axis))
    pilot_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    firm_commitment: bool = Field(default=False, description="engagement ferme de réalisation")
    priority: Priority = Field(default=Priority.MEDIUM, sa_type=sa.Integer)
    start_date: date | None = None
    end_date: date | None = None
    state: State = Field(default=State.DRAFT, sa_type=enum_type(State), index=True)
    version: int = Field(default=1, nullable=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @declared_attr  # type: ignore[arg-type]
    def __mapper_args__(cls) -> dict[str, object]:
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


class ActionPartner(SQLModel, table=True):
    __tablename__ = "action_partner"
    action_id: int = Field(foreign_key="action_sheet.id", primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", primary_key=True)


class Milestone(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    action_id: int = Field(foreign_key="action_sheet.id", index=True)
    title: str = Field(max_length=300)
    due_date: date
    done_on: date | None = None


class Indicator(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    action_id: int = Field(foreign_key="action_sheet.id", index=True)
    name: str = Field(max_length=300)
    unit: str = Field(default="", max_length=40)
    target: Decimal = Field(sa_type=ExactDecimal)
    actual: Decimal | None = Field(default=None, sa_type=ExactDecimal)
    measured_on: date | None = None


class BudgetLine(SQLModel, table=True):
    __tablename__ = "budget_line"
    __table_args__ = (sa.UniqueConstraint("action_id", "year", "kind"),)
    id: int | None = Field(default=None, primary_key=True)
    action_id: int = Field(foreign_key="action_sheet.id", index=True)
    year: int = Field(index=True)  # budgets are read a year at a time (tiflow/budget)
    kind: BudgetKind = Field(sa_type=enum_type(BudgetKind))
    amount: Decimal = _money()  # type: ignore[assignment]


class Funding(SQLModel, table=True):
    """One funder's part of one action for one year, and the funder's deadlines."""

    __table_args__ = (sa.UniqueConstraint("action_id", "funder_id", "year"),)
    id: int | None = Field(default=None, primary_key=True)
    action_id: int = Field(foreign_key="action_sheet.id", index=True)
    funder_id: int = Field(foreign_key="organisation.id", index=True)
    year: int = Field(index=True)
    requested: Decimal = _money()  # type: ignore[assignment]
    granted: Decimal = _money()  # type: ignore[assignment]
    paid: Decimal = _money()  # type: ignore[assignment]
    decision_date: date | None = None
    dossier_filed_on: date | None = Field(
        default=None, description="dossier déposé le (arrête le rappel du dépôt)"
    )
    convention_ref: str | None = Field(default=None, max_length=100)
    dossier_due: date | None = None
    decision_expected: date | None = None
    payment_expected: date | None = None
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class FollowUpNote(SQLModel, table=True):
    __tablename__ = "follow_up_note"
    id: int | None = Field(default=None, primary_key=True)
    action_id: int = Field(foreign_key="action_sheet.id", index=True)
    author_id: int | None = Field(default=None, foreign_key="person.id")
    written_on: date
    text: str = Field(sa_type=sa.Text)


class CopilMeeting(SQLModel, table=True):
    __tablename__ = "copil_meeting"
    id: int | None = Field(default=None, primary_key=True)
    territory_id: int = Field(foreign_key="territory.id", index=True)
    held_at: datetime = Field(sa_type=UTCDateTime, description="date et heure (instant UTC)")
    place: str = Field(default="", max_length=200)
    status: CopilStatus = Field(default=CopilStatus.SCHEDULED, sa_type=enum_type(CopilStatus))
    budget_year: int | None = None
    validated_budget: Decimal | None = Field(default=None, sa_type=Money)
    minutes: str | None = Field(default=None, sa_type=sa.Text, description="compte rendu")
    minutes_recorded_at: datetime | None = Field(
        default=None, sa_type=UTCDateTime, description="compte rendu enregistré le (UTC)"
    )


class CopilMember(SQLModel, table=True):
    __tablename__ = "copil_member"
    copil_id: int = Field(foreign_key="copil_meeting.id", primary_key=True)
    person_id: int = Field(foreign_key="person.id", primary_key=True)


class CopilAgendaItem(SQLModel, table=True):
    __tablename__ = "copil_agenda_item"
    copil_id: int = Field(foreign_key="copil_meeting.id", primary_key=True)
    action_id: int = Field(foreign_key="action_sheet.id", primary_key=True)
    position: int = 0


class CopilDecision(SQLModel, table=True):
    __tablename__ = "copil_decision"
    __table_args__ = (sa.UniqueConstraint("copil_id", "action_id"),)
    id: int | None = Field(default=None, primary_key=True)
    copil_id: int = Field(foreign_key="copil_meeting.id", index=True)
    action_id: int = Field(foreign_key="action_sheet.id", index=True)
    outcome: State = Field(sa_type=enum_type(State))
    conditions: str = Field(default="", sa_type=sa.Text)
    comment: str = Field(default="", sa_type=sa.Text)


class TransitionRecord(SQLModel, table=True):
    """Append-only history of every lifecycle transition."""

    __tablename__ = "transition_record"
    id: int | None = Field(default=None, primary_key=True)
    action_id: int = Field(foreign_key="action_sheet.id", index=True)
    from_state: State = Field(sa_type=enum_type(State))
    to_state: State = Field(sa_type=enum_type(State))
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor: str = Field(max_length=200)
    reason: str | None = Field(default=None, sa_type=sa.Text)
    correlation_id: str | None = Field(default=None, max_length=64, index=True)
    copil_id: int | None = Field(default=None, foreign_key="copil_meeting.id")
    override: bool = False


class ActionChange(SQLModel, table=True):
    """Append-only history of what changed on an action without a change of state (progress
    reported, later field edits): who, when, what (a French sentence)."""

    __tablename__ = "action_change"
    id: int | None = Field(default=None, primary_key=True)
    action_id: int = Field(foreign_key="action_sheet.id", index=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor: str = Field(max_length=200)
    summary: str = Field(sa_type=sa.Text)
    correlation_id: str | None = Field(default=None, max_length=64)


class BudgetSnapshot(SQLModel, table=True):
    """One run of the annual budget consolidation: numbered per scope, never changed afterwards.

    `scope` is the territory code, or ``*`` for all territories; versions count 1, 2, … per
    (year, scope). The governance figures sit here; the money figures are the lines.
    """

    __tablename__ = "budget_snapshot"
    __table_args__ = (sa.UniqueConstraint("year", "scope", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    year: int
    scope: str = Field(max_length=64, description="code du territoire, ou * pour tous")
    scope_label: str = Field(max_length=200)
    territory_id: int | None = Field(default=None, foreign_key="territory.id", index=True)
    version: int
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    as_of: date = Field(description="date de situation des retards")
    flow_run_id: str | None = Field(default=None, max_length=64, index=True)
    action_count: int = 0
    firm_count: int = 0
    late_count: int = 0
    median_days_to_validation: Decimal | None = Field(default=None, sa_type=ExactDecimal)
    median_days_to_funding: Decimal | None = Field(default=None, sa_type=ExactDecimal)
    validation_sample: int = Field(default=0, description="actions mesurées pour le délai")
    funding_sample: int = Field(default=0, description="actions mesurées pour le délai")
    validated_budget: Decimal | None = Field(
        default=None, sa_type=Money, description="budget de l'année validé en COPIL"
    )
    validated_on: date | None = Field(default=None, description="date du COPIL qui l'a validé")


class BudgetSnapshotLine(SQLModel, table=True):
    """One figure line of a snapshot: a view (axis, funder, action…) and the key of its row."""

    __tablename__ = "budget_snapshot_line"
    __table_args__ = (sa.UniqueConstraint("snapshot_id", "view", "territory", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    snapshot_id: int = Field(foreign_key="budget_snapshot.id")  # indexed by the unique key
    view: str = Field(max_length=16)
    territory: str = Field(default="", max_length=64, description="code, pour les vues par action")
    key: str = Field(max_length=200)
    label: str = Field(max_length=400)
    axis: Axis | None = Field(default=None, sa_type=enum_type(Axis))
    state: State | None = Field(default=None, sa_type=enum_type(State))
    firm_commitment: bool | None = None
    note: str = Field(default="", sa_type=sa.Text)
    action_count: int = 0
    planned_investment: Decimal = _money()  # type: ignore[assignment]
    planned_operating: Decimal = _money()  # type: ignore[assignment]
    requested: Decimal = _money()  # type: ignore[assignment]
    granted: Decimal = _money()  # type: ignore[assignment]
    paid: Decimal = _money()  # type: ignore[assignment]
    over_granted: Decimal = _money()  # type: ignore[assignment]


def _refuse_snapshot_change(_mapper: object, _connection: object, target: object) -> None:
    raise TiflowError(
        f"Un instantané budgétaire ne se modifie ni ne se supprime ({type(target).__name__}) :"
        " relancez la consolidation pour en créer une nouvelle version."
    )


for _table in (BudgetSnapshot, BudgetSnapshotLine):
    sa.event.listen(_table, "before_update", _refuse_snapshot_change)
    sa.event.listen(_table, "before_delete", _refuse_snapshot_change)


# The outbox tables live in their own module; importing them here puts them on the metadata
# wherever the schema is used (migrations, tests' clean-up).
from models.calendar_feed import CalendarEntry, CalendarFeed  # noqa: E402, F401
from models.event_outbox import EventOutbox  # noqa: E402, F401
from models.outbox import OutboxAttachment, OutboxItem, OutboxMessage  # noqa: E402, F401
from models.preferences import (  # noqa: E402, F401
    PersonAbsence,
    PersonAbsenceChange,
    PersonPreference,
    PersonPreferenceChange,
)
from models.web_access import WebSession, WebSignInLink, WebSignInRequest  # noqa: E402, F401
