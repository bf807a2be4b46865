"""Raw cells → typed records, one problem per unreadable or missing cell (nothing stops early)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from models.money import ZERO
from models.vocabulary import Priority
from tiflow.spreadsheet import cells as c
from tiflow.spreadsheet.files import RawFile, RawRow, RawSheet
from tiflow.spreadsheet.layout import Column, Kind
from tiflow.spreadsheet.progress import NO_PROGRESS, PROGRESS_STEP, Progress
from tiflow.spreadsheet.records import (
    ActionRecord,
    BudgetRecord,
    FundingRecord,
    IndicatorRecord,
    MilestoneRecord,
    OrganisationRecord,
    PersonRecord,
    PlanFile,
    PreferenceRecord,
    Record,
    TerritoryRecord,
)

RECORD_TYPES: dict[str, type[Record]] = {
    "territory": TerritoryRecord,
    "organisations": OrganisationRecord,
    "people": PersonRecord,
    "actions": ActionRecord,
    "milestones": MilestoneRecord,
    "indicators": IndicatorRecord,
    "budget": BudgetRecord,
    "funding": FundingRecord,
    "preferences": PreferenceRecord,
}

Parser = Callable[[c.CellValue, Column], Any]


def _text(value: c.CellValue, column: Column) -> str:
    text = c.parse_text(value, column.max_length)
    problem = column.text_rule(text) if column.text_rule else None
    if problem:
        raise c.CellError(f"{problem} : {c.quote(text)}")
    return text


def _number(value: c.CellValue, column: Column) -> str:
    return _text(value, column).upper()


def _refs(value: c.CellValue, column: Column) -> tuple[str, ...]:
    # Names are split for real once organisations are known (see importing.resolve_partners).
    return (c.parse_text(value),)


PARSERS: dict[Kind, Parser] = {
    Kind.TEXT: _text,
    Kind.EMAIL: lambda v, _: c.parse_email(v),
    Kind.DATE: lambda v, _: c.parse_date(v),
    Kind.MONEY: lambda v, _: c.parse_money(v),
    Kind.DECIMAL: lambda v, _: c.parse_decimal(v),
    Kind.YEAR: lambda v, _: c.parse_year(v),
    Kind.BOOL: lambda v, _: c.parse_bool(v),
    Kind.AXIS: lambda v, _: c.parse_axis(v),
    Kind.STATE: lambda v, _: c.parse_state(v),
    Kind.PRIORITY: lambda v, _: c.parse_priority(v),
    Kind.BUDGET_KIND: lambda v, _: c.parse_budget_kind(v),
    Kind.ORG_KIND: lambda v, _: c.parse_organisation_kind(v),
    Kind.ROLES: lambda v, _: c.parse_roles(v),
    Kind.ORG_REF: _text,
    Kind.ORG_REFS: _refs,
    Kind.PERSON_REF: lambda v, col: _text(v, col).lower(),
    Kind.ACTION_REF: _number,
    Kind.CATEGORY: lambda v, _: c.parse_category(v),
    Kind.FREQUENCY: lambda v, _: c.parse_frequency(v),
    Kind.WEEKDAY: lambda v, _: c.parse_weekday(v),
    Kind.HOUR: lambda v, _: c.parse_hour(v),
    Kind.CHANNEL: lambda v, _: c.parse_channel(v),
}

# What an empty cell means, for optional columns.
BLANKS: dict[Kind, object] = {
    Kind.TEXT: "",
    Kind.EMAIL: "",
    Kind.DATE: None,
    Kind.MONEY: ZERO,
    Kind.DECIMAL: None,
    Kind.BOOL: False,
    Kind.PRIORITY: Priority.MEDIUM,
    Kind.STATE: None,
    Kind.ROLES: frozenset(),
    Kind.ORG_REF: "",
    Kind.ORG_REFS: (),
    Kind.PERSON_REF: "",
    Kind.WEEKDAY: None,
    Kind.HOUR: None,
    Kind.CHANNEL: None,
}


def parse_raw(raw: RawFile, progress: Progress = NO_PROGRESS) -> PlanFile:
    """Typed records for every row; each unreadable cell adds a problem to `raw.problems`."""
    plan = PlanFile(warnings=list(raw.warnings))
    progress.phase("Vérification des lignes", sum(len(s.rows) for s in raw.sheets.values()))
    for key, sheet_rows in raw.sheets.items():
        read = _SheetReader(raw, sheet_rows)
        records = []
        for row in sheet_rows.rows:
            records.append(read(row))
            if len(records) % PROGRESS_STEP == 0:
                progress.advance(PROGRESS_STEP)
        progress.advance(len(records) % PROGRESS_STEP)
        setattr(plan, key, records)
    return plan


# Types whose equal values always read the same. Not Decimal (Decimal("1.0") == Decimal("1")
# but reads "1.0" as text), not float (-0.0 == 0.0), not an aware datetime (equal instants
# in two zones).
_SAME_WHEN_EQUAL = frozenset({str, int, bool, date, datetime})
_NO_BLANK = object()  # a required column, or a kind whose empty cell gives no value


class _ColumnReader:
    """`PARSERS` for one column, each distinct value parsed once: a plan repeats its labels,
    e-mails, dates and amounts on every row, and parsing a cell depends on nothing else."""

    def __init__(self, column: Column) -> None:
        self.column, self.key, self.required = column, column.key, column.required
        self.blank = BLANKS.get(column.kind, _NO_BLANK) if not column.required else _NO_BLANK
        self._parse = PARSERS[column.kind]
        self._texts: dict[str, tuple[Any, str | None]] = {}  # most cells are text
        self._others: dict[tuple[type, object], tuple[Any, str | None]] = {}

    def __call__(self, value: c.CellValue) -> Any:
        kind = type(value)
        if kind is str:
            seen = self._texts.get(value)  # type: ignore[arg-type]
            if seen is None:
                seen = self._texts[value] = self._parsed(value)  # type: ignore[index]
        elif kind not in _SAME_WHEN_EQUAL or (kind is datetime and value.tzinfo):  # type: ignore[union-attr]
            return self._parse(value, self.column)
        else:
            key = (kind, value)  # with its type: 1, 1.0 and True are equal keys otherwise
            seen = self._others.get(key)
            if seen is None:
                seen = self._others[key] = self._parsed(value)
        result, problem = seen
        if problem is not None:
            raise c.CellError(problem)
        return result

    def _parsed(self, value: c.CellValue) -> tuple[Any, str | None]:
        try:
            return self._parse(value, self.column), None
        except c.CellError as error:
            return None, str(error)


class _SheetReader:
    """One sheet's rows → records, through the readers of the columns the sheet has."""

    def __init__(self, raw: RawFile, sheet: RawSheet) -> None:
        self.raw, self.spec, self.present = raw, sheet.sheet, sheet.present
        self.record_type = RECORD_TYPES[self.spec.key]
        self.columns = [_ColumnReader(col) for col in self.spec.columns if col.key in self.present]

    def __call__(self, row: RawRow) -> Record:
        number, cells = row.number, row.cells
        values: dict[str, Any] = {}
        invalid: set[str] = set(row.refused)  # already reported by the file reader
        for column in self.columns:
            key = column.key
            if key in invalid:
                continue
            value = cells.get(key)
            if value is None:  # the file readers leave empty cells out (`RawRow.cells`)
                if column.required:
                    self.raw.problems.add(self.spec, number, key, "valeur obligatoire manquante")
                    invalid.add(key)
                elif column.blank is not _NO_BLANK:
                    values[key] = column.blank
                continue
            try:
                values[key] = column(value)
            except c.CellError as error:
                self.raw.problems.add(self.spec, number, key, str(error))
                invalid.add(key)
        record = self.record_type(row=number, present=self.present, **values)
        record.invalid = invalid
        return record
