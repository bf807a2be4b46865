"""Rows read and written a table at a time, for the import of large plans.

The import compares a whole plan with the database and then changes only what differs. Going
through ORM objects for that costs more than the data: building one SQLModel instance is
~0.3 ms, and the session's bookkeeping for tens of thousands of them made the import of 10 000
actions take minutes. Here rows are plain dicts, read with one query per table and written
with one `executemany` per table and kind of statement, in the unit of work's transaction
(so a dry run or an error still writes nothing).

Optimistic locking is kept: an action is updated only where its `version` is still the one
read at the start of the import, exactly as the ORM's `version_id_col` does (see
`models/tables.py`), and a lost race is the unit of work's `ConcurrencyConflict`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import NullType
from sqlmodel import SQLModel

from models.uow import UnitOfWork

Values = dict[str, Any]


def table_of(model: type[SQLModel]) -> sa.Table:
    return model.__table__  # type: ignore[attr-defined]


def defaults(model: type[SQLModel]) -> Values:
    """The values a new row gets for the fields its constructor would not be given."""
    return {
        name: info.get_default(call_default_factory=True)
        for name, info in model.model_fields.items()
        if name != "id" and not info.is_required()
    }


def read_rows(uow: UnitOfWork, query: sa.Select[Any]) -> list[Values]:
    """Every row of `query` as a dict (column name -> value, through the column types).

    The driver's values are fetched as they are and converted by each column's own type once
    per distinct stored value: a plan repeats its dates, amounts and labels on thousands of
    rows, and on SQLite converting them (a date parsed from its text, an amount to Decimal)
    cost more than the fetch itself."""
    session = uow.session
    dialect = session.get_bind().dialect
    columns = list(query.selected_columns)
    names = [column.name for column in columns]
    raw = query.with_only_columns(
        *(sa.type_coerce(c, NullType()).label(n) for c, n in zip(columns, names, strict=True)),
        maintain_column_froms=True,
    )
    # All rows fetched at once: one driver call, not one per row (a plan has 100 000 rows).
    rows = session.execute(raw).all()
    if not rows:
        return []
    by_column = [
        _converted(values, column.type, dialect)
        for values, column in zip(zip(*rows, strict=True), columns, strict=True)
    ]
    return [dict(zip(names, row, strict=True)) for row in zip(*by_column, strict=True)]


# What a column type converts to and may share between rows: values nobody can change.
_IMMUTABLE = frozenset({int, float, str, bool, bytes, Decimal, date, datetime, time, type(None)})


class _Conversions(dict[Any, Any]):
    """A column type's conversion of stored values, each distinct one converted once (and kept
    only when the result is immutable: a JSON document, say, is converted for every row)."""

    def __init__(self, convert: Callable[[Any], Any]) -> None:
        super().__init__()
        self.convert = convert

    def __missing__(self, stored: Any) -> Any:
        value = self.convert(stored)
        if value.__class__ in _IMMUTABLE or isinstance(value, Enum):
            self[stored] = value
        return value


def _converted(
    values: Sequence[Any], type_: sa.types.TypeEngine[Any], dialect: Any
) -> Sequence[Any]:
    convert = type_.dialect_impl(dialect).result_processor(dialect, None)
    if convert is None:  # the driver's value is the column's (most columns on PostgreSQL)
        return values
    try:
        return list(map(_Conversions(convert).__getitem__, values))
    except TypeError:  # a stored value that cannot be a key (a list, a dict): one by one
        return [convert(value) for value in values]


@dataclass
class TableWrites:
    """What one table needs: rows to delete (by key), to update (by id), to insert."""

    table: sa.Table
    deletes: list[Values] = field(default_factory=list)
    updates: list[Values] = field(default_factory=list)
    inserts: list[Values] = field(default_factory=list)

    def apply(self, uow: UnitOfWork) -> None:
        execute = uow.session.execute
        if self.deletes:
            delete = self.table.delete().where(*_matching(self.table, self.deletes[0]))
            execute(delete, [_prefixed(key) for key in self.deletes])
        if self.updates:
            # Every row of one executemany binds the same columns: updates carry them all.
            columns = [name for name in self.updates[0] if name != "id"]
            statement = (
                self.table.update()
                .where(self.table.c.id == sa.bindparam("b_id"))
                .values({name: sa.bindparam(f"b_{name}") for name in columns})
            )
            execute(statement, [_prefixed(values) for values in self.updates])
        if self.inserts:
            execute(self.table.insert(), self.inserts)


def _matching(table: sa.Table, example: Mapping[str, Any]) -> list[sa.ColumnElement[bool]]:
    return [table.c[name] == sa.bindparam(f"b_{name}") for name in example]


def _prefixed(values: Mapping[str, Any]) -> Values:
    # Bind names may not be column names in an UPDATE's SET clause; hence the prefix.
    return {f"b_{name}": value for name, value in values.items()}


class Writes:
    """Writes gathered per table during the comparison, applied in one go at the end."""

    def __init__(self) -> None:
        self._tables: dict[str, TableWrites] = {}

    def of(self, model: type[SQLModel]) -> TableWrites:
        table = table_of(model)
        if table.name not in self._tables:
            self._tables[table.name] = TableWrites(table)
        return self._tables[table.name]

    def apply(self, uow: UnitOfWork) -> None:
        for writes in self._tables.values():
            writes.apply(uow)


def versioned_update(
    uow: UnitOfWork, model: type[SQLModel], changes: Iterable[tuple[str, Values]]
) -> None:
    """Update rows by id where their `version` is still the one read, bumping it; a row that
    changed meanwhile makes the whole unit of work a `ConcurrencyConflict`.

    `changes` gives each row's label (for the message) and its new values, including `id`
    and `version` as read."""
    by_columns: dict[tuple[str, ...], list[tuple[str, Values]]] = defaultdict(list)
    for label, values in changes:
        by_columns[tuple(sorted(values))].append((label, values))
    table = table_of(model)
    labels = sorted(label for batch in by_columns.values() for label, _ in batch)
    for columns, batch in by_columns.items():
        names = [c for c in columns if c not in ("id", "version")]
        statement = (
            table.update()
            .where(table.c.id == sa.bindparam("b_id"))
            .where(table.c.version == sa.bindparam("b_version"))
            .values(
                {name: sa.bindparam(f"b_{name}") for name in names}
                | {"version": table.c.version + 1}
            )
        )
        result = uow.session.execute(statement, [_prefixed(v) for _, v in batch])
        if result.rowcount != len(batch):  # type: ignore[attr-defined]
            raise uow.conflict(labels)
