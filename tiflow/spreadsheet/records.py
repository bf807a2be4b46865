"""An action plan as plain rows, between the file and the database.

Export builds a `PlanFile` from the database and writes it; import reads a `PlanFile` from a
file, checks it, and applies it. Each record remembers where it came from (`row`) and which
columns its sheet had (`present`): a column missing from a sheet leaves that field of existing
rows unchanged, while an empty cell means an empty value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from models.lifecycle import State
from models.money import ZERO
from models.preferences import Category, Frequency
from models.vocabulary import Axis, BudgetKind, OrganisationKind, Priority, Role

EVERY_COLUMN: frozenset[str] = frozenset({"*"})


@dataclass
class Record:
    row: int = 0  # row of the sheet (or CSV line) it was read from; 0 when built from the database
    present: frozenset[str] = EVERY_COLUMN
    invalid: set[str] = field(default_factory=set)  # columns whose cell could not be read

    def has(self, key: str) -> bool:
        return "*" in self.present or key in self.present

    def ok(self, *keys: str) -> bool:
        """True if these cells were read (so checks across cells and rows can use them)."""
        return not self.invalid.intersection(keys)


@dataclass
class TerritoryRecord(Record):
    code: str = ""
    name: str = ""
    department: str = ""
    region: str = ""
    is_example: bool = False


@dataclass
class OrganisationRecord(Record):
    name: str = ""
    short_name: str = ""
    kind: OrganisationKind = OrganisationKind.AUTRE
    is_funder: bool = False


@dataclass
class PersonRecord(Record):
    full_name: str = ""
    email: str = ""
    organisation: str = ""  # organisation name or short name; "" for none
    position: str = ""
    roles: frozenset[Role] = frozenset()


@dataclass
class ActionRecord(Record):
    number: str = ""
    title: str = ""
    description: str = ""
    axis: Axis = Axis.COMPETENCES
    pilot: str = ""  # e-mail; "" for none
    partners: tuple[str, ...] = ()  # organisation names or short names
    firm_commitment: bool = False
    priority: Priority = Priority.MEDIUM
    start_date: date | None = None
    end_date: date | None = None
    state: State | None = (
        None  # None: a new action starts as a draft, an existing one keeps its state
    )


@dataclass
class MilestoneRecord(Record):
    action: str = ""
    title: str = ""
    due_date: date = date.min
    done_on: date | None = None


@dataclass
class IndicatorRecord(Record):
    action: str = ""
    name: str = ""
    unit: str = ""
    target: Decimal = Decimal(0)
    actual: Decimal | None = None
    measured_on: date | None = None


@dataclass
class BudgetRecord(Record):
    action: str = ""
    year: int = 0
    kind: BudgetKind = BudgetKind.FONCTIONNEMENT
    amount: Decimal = ZERO


@dataclass
class FundingRecord(Record):
    action: str = ""
    funder: str = ""
    year: int = 0
    requested: Decimal = ZERO
    granted: Decimal = ZERO
    paid: Decimal = ZERO
    dossier_due: date | None = None
    dossier_filed_on: date | None = None
    decision_expected: date | None = None
    payment_expected: date | None = None
    decision_date: date | None = None
    convention_ref: str = ""


@dataclass
class PreferenceRecord(Record):
    email: str = ""
    category: Category = Category.DEADLINES
    frequency: Frequency = Frequency.IMMEDIATELY
    weekday: int | None = None  # 0 = lundi
    hour: int | None = None  # None: the default hour
    channel: str | None = None  # None (empty cell, or no column): the stored channel stays


@dataclass
class PlanFile:
    """What a file holds, sheet by sheet. A sheet absent from the file is `None`: its rows in
    the database are left alone (an empty sheet, by contrast, says "none")."""

    territory: list[TerritoryRecord] | None = None
    organisations: list[OrganisationRecord] | None = None
    people: list[PersonRecord] | None = None
    actions: list[ActionRecord] = field(default_factory=list)
    milestones: list[MilestoneRecord] | None = None
    indicators: list[IndicatorRecord] | None = None
    budget: list[BudgetRecord] | None = None
    funding: list[FundingRecord] | None = None
    preferences: list[PreferenceRecord] | None = None
    warnings: list[str] = field(default_factory=list)

    def row_count(self) -> int:
        sheets = (
            self.territory,
            self.organisations,
            self.people,
            self.actions,
            self.milestones,
            self.indicators,
            self.budget,
            self.funding,
            self.preferences,
        )
        return sum(len(rows) for rows in sheets if rows)
