"""Immutable, numbered snapshots of a consolidation, and the change since the previous one.

A scope is a year and a territory (or all territories). Each run adds version 1, 2, … of its
scope — a header row (``budget_snapshot``, with the governance figures and the flow run id)
and one row per figure line (``budget_snapshot_line``) — and never updates or deletes
anything: the ORM refuses it (models/tables.py), and the unique (year, scope, version)
constraint turns two simultaneous runs into two versions, never one mixed one.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from flows.usecases.budget.consolidation import (
    ALL_TERRITORIES,
    CHANGE_MEASURES,
    Consolidation,
    Figures,
    Governance,
    Line,
    ValidatedBudget,
    View,
)
from models.collector import collector_paused
from models.db import copy_rows, driver_cursor
from models.errors import ConcurrencyConflict, NotFound
from models.lifecycle import State
from models.money import ZERO, from_cents, to_cents
from models.tables import BudgetSnapshot, BudgetSnapshotLine
from models.uow import UnitOfWork
from models.vocabulary import Axis

_AMOUNTS = (
    "planned_investment",
    "planned_operating",
    "requested",
    "granted",
    "paid",
    "over_granted",
)


@dataclass(frozen=True)
class Snapshot:
    """A stored consolidation, with the previous version of its scope (if any) for the change."""

    id: int
    version: int
    created_at: datetime
    flow_run_id: str | None
    figures: Consolidation
    previous: Snapshot | None = None

    @property
    def year(self) -> int:
        return self.figures.year

    @property
    def scope(self) -> str:
        return self.figures.scope

    @functools.cached_property
    def changes(self) -> tuple[Change, ...]:
        """See `changes`: computed once per snapshot (the workbook and the summary both list
        them; a national snapshot has 12 000 lines to compare)."""
        return tuple(_changes(self))


@dataclass(frozen=True)
class Change:
    """One amount of one line that differs from the previous version (new lines count from 0)."""

    view: View
    territory: str
    key: str
    label: str
    measure: str  # a Figures attribute, see MEASURES
    before: Decimal
    after: Decimal

    @property
    def delta(self) -> Decimal:
        return self.after - self.before


def record_snapshot(
    uow: UnitOfWork, consolidation: Consolidation, flow_run_id: str | None = None
) -> Snapshot:
    """Add the next version of the consolidation's scope to the unit of work (caller commits).

    Two runs of one scope at once: the loser's flush violates the unique version and raises
    IntegrityError; `store_snapshot` retries with the next number.
    """
    c = consolidation
    last = uow.session.exec(
        select(sa.func.max(BudgetSnapshot.version)).where(
            BudgetSnapshot.year == c.year, BudgetSnapshot.scope == c.scope
        )
    ).one()
    previous = _load(uow, c.year, c.scope, last) if last else None
    g = c.governance
    header = BudgetSnapshot(
        year=c.year,
        scope=c.scope,
        scope_label=c.scope_label,
        territory_id=c.territory_id,
        version=(last or 0) + 1,
        as_of=c.as_of,
        flow_run_id=flow_run_id,
        action_count=g.action_count,
        firm_count=g.firm_count,
        late_count=g.late_count,
        median_days_to_validation=g.median_days_to_validation,
        median_days_to_funding=g.median_days_to_funding,
        validation_sample=g.validation_sample,
        funding_sample=g.funding_sample,
        validated_budget=c.validated.amount if c.validated else None,
        validated_on=c.validated.on if c.validated else None,
    )
    uow.session.add(header)
    uow.flush()
    assert header.id is not None
    if c.lines:  # one bulk insert of plain values: 12 000 lines at national scale
        _insert_lines(uow, header.id, c.lines)
    return Snapshot(
        id=header.id,
        version=header.version,
        created_at=header.created_at,
        flow_run_id=flow_run_id,
        figures=c,
        previous=previous,
    )


def store_snapshot(
    new_uow: Callable[[], UnitOfWork],
    consolidation: Consolidation,
    flow_run_id: str | None = None,
    attempts: int = 3,
) -> Snapshot:
    """Record and commit the next version, in its own transaction; retry if another run of
    the same scope took the number meanwhile."""
    for attempt in range(1, attempts + 1):
        with new_uow() as uow, collector_paused():  # the lines, twice (models.collector)
            try:
                snapshot = record_snapshot(uow, consolidation, flow_run_id)
                uow.commit()
                return snapshot
            except IntegrityError:
                if attempt == attempts:
                    raise ConcurrencyConflict(
                        f"Impossible d'enregistrer l'instantané du budget {consolidation.year}"
                        f" ({consolidation.scope_label}) : d'autres consolidations du même"
                        " périmètre s'enregistrent en même temps. Relancez dans un instant."
                    ) from None
    raise AssertionError("unreachable")


def load_snapshot(
    uow: UnitOfWork, year: int, territory: str | None = None, version: int | None = None
) -> Snapshot:
    """A stored snapshot (default: the latest version of the scope), with its previous one."""
    scope = ALL_TERRITORIES if territory is None else territory
    if version is None:
        version = uow.session.exec(
            select(sa.func.max(BudgetSnapshot.version)).where(
                BudgetSnapshot.year == year, BudgetSnapshot.scope == scope
            )
        ).one()
    snapshot = _load(uow, year, scope, version) if version else None
    if snapshot is None:
        where = "tous les territoires" if territory is None else f"le territoire « {territory} »"
        which = f"version {version}" if version else "aucune version"
        raise NotFound(f"Instantané du budget {year} introuvable pour {where} ({which}).")
    if snapshot.version > 1:
        previous = _load(uow, year, scope, snapshot.version - 1)
        snapshot = dataclasses.replace(snapshot, previous=previous)
    return snapshot


def changes(snapshot: Snapshot) -> list[Change]:
    """Every amount that differs from the previous version, in the snapshot's line order
    (then lines that disappeared). Empty for a first version or identical figures."""
    return list(snapshot.changes)


def _changes(snapshot: Snapshot) -> list[Change]:
    if snapshot.previous is None:
        return []
    before = {line.identity: line for line in snapshot.previous.figures.lines}
    after = {line.identity: line for line in snapshot.figures.lines}
    result: list[Change] = []
    for identity in [*after, *(i for i in before if i not in after)]:
        old, new = before.get(identity), after.get(identity)
        if old is not None and new is not None and old.figures == new.figures:
            continue  # most lines of a new version: equal stored amounts, no change to list
        label = (new or old).label  # type: ignore[union-attr]
        for measure, _ in CHANGE_MEASURES:
            a = getattr(old.figures, measure) if old else ZERO
            b = getattr(new.figures, measure) if new else ZERO
            if a != b:
                result.append(Change(*identity, label, measure, a, b))
    return result


# budget_snapshot_line as the database stores it (amounts in integer cents, enums by value):
# the bulk insert and the load skip the per-value work of the Money and enum column types,
# with the same values (`to_cents` / `from_cents` are what Money does).
_LINE_TABLE = BudgetSnapshotLine.__table__  # type: ignore[attr-defined]
_INSERTED = (
    "snapshot_id",
    *("view", "territory", "key", "label", "axis", "state", "note"),
    *("firm_commitment", "action_count"),
    *_AMOUNTS,
)
# Every name double-quoted, as standard SQL allows: `view` and `key` are reserved words.
_COLUMNS = ", ".join(f'"{name}"' for name in _INSERTED)
_SQLITE_INSERT = (
    f'INSERT INTO "{_LINE_TABLE.name}" ({_COLUMNS}) VALUES ({", ".join("?" * len(_INSERTED))})'
)


def _insert_lines(uow: UnitOfWork, snapshot_id: int, lines: tuple[Line, ...]) -> None:
    """The rows as plain tuples, handed to the driver as they are: through SQLAlchemy,
    building each row's parameters (`construct_params`) cost as much as the insert itself."""
    connection = uow.session.connection()
    rows = [_line_row(snapshot_id, line) for line in lines]
    if connection.dialect.name == "postgresql":
        # One COPY for all the lines: an executemany is one INSERT per row on the server
        # (12 000 lines: ~1 s of wall).
        with driver_cursor(uow.session) as cursor:
            copy_rows(cursor, _LINE_TABLE.name, _INSERTED, rows)
        return
    connection.exec_driver_sql(_SQLITE_INSERT, rows)  # one executemany, in process


def _line_row(snapshot_id: int, line: Line) -> tuple[Any, ...]:
    """A line's values in `_INSERTED` order."""
    figures = line.figures
    return (
        snapshot_id,
        line.view.value,
        line.territory,
        line.key,
        line.label,
        None if line.axis is None else line.axis.value,
        None if line.state is None else line.state.value,
        line.note,
        line.firm_commitment,
        line.action_count,
        *(to_cents(getattr(figures, name)) for name in _AMOUNTS),
    )


_LOAD_LINES = (
    sa.select(
        *(_LINE_TABLE.c[name] for name in ("view", "key", "label")),
        *(sa.type_coerce(_LINE_TABLE.c[name], sa.BigInteger) for name in _AMOUNTS),
        *(_LINE_TABLE.c[name] for name in ("action_count", "territory", "axis", "state")),
        *(_LINE_TABLE.c[name] for name in ("firm_commitment", "note")),
    )
    .where(_LINE_TABLE.c.snapshot_id == sa.bindparam("snapshot_id"))
    .order_by(_LINE_TABLE.c.id)
)


def _lines(uow: UnitOfWork, snapshot_id: int) -> tuple[Line, ...]:
    """A snapshot's lines, in their order: one select of plain values, built once."""
    views = {view.value: view for view in View}
    axes, states = {a.value: a for a in Axis}, {s.value: s for s in State}
    rows = uow.session.execute(_LOAD_LINES, {"snapshot_id": snapshot_id})
    return tuple(
        Line(
            views[view],
            key,
            label,
            Figures(*map(from_cents, (pi, po, rq, gr, pd, og))),
            count,
            territory,
            axes.get(axis),
            states.get(state),
            firm,
            note,
        )
        for view, key, label, pi, po, rq, gr, pd, og, count, territory, axis, state, firm, note in (
            rows.all()
        )
    )


def _load(uow: UnitOfWork, year: int, scope: str, version: int) -> Snapshot | None:
    header = uow.session.exec(
        select(BudgetSnapshot).where(
            BudgetSnapshot.year == year,
            BudgetSnapshot.scope == scope,
            BudgetSnapshot.version == version,
        )
    ).first()
    if header is None:
        return None
    assert header.id is not None
    lines = _lines(uow, header.id)
    return Snapshot(
        id=header.id,
        version=header.version,
        created_at=header.created_at,
        flow_run_id=header.flow_run_id,
        figures=Consolidation(
            year=header.year,
            scope=header.scope,
            scope_label=header.scope_label,
            territory_id=header.territory_id,
            as_of=header.as_of,
            lines=lines,
            governance=Governance(
                action_count=header.action_count,
                firm_count=header.firm_count,
                late_count=header.late_count,
                median_days_to_validation=header.median_days_to_validation,
                median_days_to_funding=header.median_days_to_funding,
                validation_sample=header.validation_sample,
                funding_sample=header.funding_sample,
            ),
            validated=None
            if header.validated_budget is None
            else ValidatedBudget(header.validated_budget, header.validated_on),
        ),
    )
