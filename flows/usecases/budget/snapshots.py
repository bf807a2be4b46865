"""Immutable, numbered snapshots of a consolidation, and the change since the previous one.

A scope is a year and a territory (or all territories). Each run adds version 1, 2, … of its
scope — a header row (``budget_snapshot``, with the governance figures and the flow run id)
and one row per figure line (``budget_snapshot_line``) — and never updates or deletes
anything: the ORM refuses it (models/tables.py), and the unique (year, scope, version)
constraint turns two simultaneous runs into two versions, never one mixed one.
"""

from __future__ import annotations

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
from models.errors import ConcurrencyConflict, NotFound
from models.money import ZERO
from models.tables import BudgetSnapshot, BudgetSnapshotLine
from models.uow import UnitOfWork

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
    if c.lines:  # one Core executemany (no ORM bookkeeping): 12 000 lines at national scale
        table = BudgetSnapshotLine.__table__  # type: ignore[attr-defined]
        uow.session.execute(table.insert(), [_line_row(header.id, line) for line in c.lines])
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
        with new_uow() as uow:
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
        snapshot = Snapshot(**{**snapshot.__dict__, "previous": previous})
    return snapshot


def changes(snapshot: Snapshot) -> list[Change]:
    """Every amount that differs from the previous version, in the snapshot's line order
    (then lines that disappeared). Empty for a first version or identical figures."""
    if snapshot.previous is None:
        return []
    before = {line.identity: line for line in snapshot.previous.figures.lines}
    after = {line.identity: line for line in snapshot.figures.lines}
    result: list[Change] = []
    for identity in [*after, *(i for i in before if i not in after)]:
        old, new = before.get(identity), after.get(identity)
        label = (new or old).label  # type: ignore[union-attr]
        for measure, _ in CHANGE_MEASURES:
            a = getattr(old.figures, measure) if old else ZERO
            b = getattr(new.figures, measure) if new else ZERO
            if a != b:
                result.append(Change(*identity, label, measure, a, b))
    return result


def _line_row(snapshot_id: int, line: Line) -> dict[str, Any]:
    return {
        "snapshot_id": snapshot_id,
        "view": line.view.value,
        "territory": line.territory,
        "key": line.key,
        "label": line.label,
        "axis": line.axis,
        "state": line.state,
        "firm_commitment": line.firm_commitment,
        "note": line.note,
        "action_count": line.action_count,
        **{name: getattr(line.figures, name) for name in _AMOUNTS},
    }


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
    table = BudgetSnapshotLine.__table__  # type: ignore[attr-defined]
    # a Core select (typed columns, no ORM objects): thousands of lines load in milliseconds
    rows = uow.session.execute(
        sa.select(table).where(table.c.snapshot_id == header.id).order_by(table.c.id)
    ).all()
    lines = tuple(
        Line(
            view=View(row.view),
            key=row.key,
            label=row.label,
            figures=Figures(*(getattr(row, name) for name in _AMOUNTS)),
            action_count=row.action_count,
            territory=row.territory,
            axis=row.axis,
            state=row.state,
            firm_commitment=row.firm_commitment,
            note=row.note,
        )
        for row in rows
    )
    assert header.id is not None
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
