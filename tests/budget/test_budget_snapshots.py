"""Snapshots: numbered per scope, immutable, compared with the previous version."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import select

from flows.usecases.budget.consolidation import View, consolidate
from flows.usecases.budget.snapshots import changes, load_snapshot, record_snapshot, store_snapshot
from models.errors import NotFound, TiflowError
from models.tables import BudgetSnapshot, BudgetSnapshotLine, Funding
from models.uow import UnitOfWork

UowFactory = Callable[[], UnitOfWork]
AS_OF = date(2024, 6, 1)


def _run(uow: UowFactory, territory: str | None, run_id: str) -> int:
    with uow() as u:
        figures = consolidate(u, 2024, territory, as_of=AS_OF)
    return store_snapshot(uow, figures, run_id).version


def test_rerunning_gives_version_2_with_identical_figures(
    uow: UowFactory, example_plan: str
) -> None:
    assert _run(uow, example_plan, "run-1") == 1
    assert _run(uow, example_plan, "run-2") == 2
    with uow() as u:
        second = load_snapshot(u, 2024, example_plan)
        first = load_snapshot(u, 2024, example_plan, version=1)
        line_count = u.session.exec(select(sa.func.count()).select_from(BudgetSnapshotLine)).one()
    assert second.version == 2 and second.flow_run_id == "run-2"
    assert second.previous is not None and second.previous.version == 1
    assert second.figures.lines == first.figures.lines
    assert second.figures.governance == first.figures.governance
    assert changes(second) == []
    # two complete copies, nothing overwritten
    assert line_count == 2 * len(first.figures.lines)
    assert first.figures.total().planned > 0


def test_versions_are_counted_per_year_and_scope(uow: UowFactory, example_plan: str) -> None:
    assert [_run(uow, example_plan, "a"), _run(uow, None, "b"), _run(uow, None, "c")] == [1, 1, 2]
    with uow() as u:
        other_year = consolidate(u, 2025, example_plan, as_of=AS_OF)
        assert record_snapshot(u, other_year).version == 1
        u.commit()


def test_the_new_version_shows_what_changed_since_the_previous(
    uow: UowFactory, example_plan: str
) -> None:
    _run(uow, example_plan, "run-1")
    with uow() as u:
        funding = u.session.exec(select(Funding).where(Funding.year == 2024)).first()
        assert funding is not None
        funding.granted = funding.requested - Decimal("0.10")
        u.session.add(funding)
        u.commit()
    _run(uow, example_plan, "run-2")
    with uow() as u:
        snapshot = load_snapshot(u, 2024, example_plan)
    found = {(c.view, c.measure): c.delta for c in changes(snapshot)}
    expected = funding.requested - Decimal("0.10")
    for view in (View.AXIS, View.ACTION, View.STATE, View.COMMITMENT, View.TERRITORY):
        assert found[(view, "granted")] == expected
    assert found[(View.FUNDER, "granted")] == expected
    assert snapshot.figures.total().granted - snapshot.previous.figures.total().granted == expected  # type: ignore[union-attr]


def test_stored_snapshots_refuse_updates_and_deletes(uow: UowFactory, example_plan: str) -> None:
    _run(uow, example_plan, "run-1")
    with uow() as u:
        header = u.session.exec(select(BudgetSnapshot)).one()
        header.version = 7
        u.session.add(header)
        with pytest.raises(TiflowError, match="ne se modifie ni ne se supprime"):
            u.flush()
    with uow() as u:
        line = u.session.exec(select(BudgetSnapshotLine)).first()
        u.session.delete(line)
        with pytest.raises(TiflowError, match="ne se modifie ni ne se supprime"):
            u.flush()
    with uow() as u:
        assert load_snapshot(u, 2024, example_plan).version == 1


def test_a_missing_snapshot_is_reported_in_french(uow: UowFactory, example_plan: str) -> None:
    with uow() as u, pytest.raises(NotFound, match="Instantané du budget 2024 introuvable"):
        load_snapshot(u, 2024, example_plan)


def test_an_empty_year_is_stored_as_a_snapshot_without_lines(
    uow: UowFactory, example_plan: str
) -> None:
    with uow() as u:
        figures = consolidate(u, 2031, example_plan)
    snapshot = store_snapshot(uow, figures, "run-empty")
    with uow() as u:
        loaded = load_snapshot(u, 2031, example_plan)
    assert snapshot.version == loaded.version == 1
    assert loaded.figures.lines == () and loaded.figures.governance.action_count == 0


def test_a_run_racing_another_of_the_same_scope_takes_the_next_version(
    engine: Engine, example_plan: str
) -> None:
    with UnitOfWork(engine) as u:
        figures = consolidate(u, 2024, example_plan, as_of=AS_OF)
    raced: list[int] = []

    def other_run_commits_first(*_: object) -> None:
        with UnitOfWork(engine) as other:
            raced.append(record_snapshot(other, figures, "other-run").version)
            other.commit()

    class RacedUnitOfWork(UnitOfWork):
        def __enter__(self) -> UnitOfWork:
            unit = super().__enter__()
            if not raced:  # the first attempt is overtaken just before it writes its header
                sa.event.listen(unit.session, "before_flush", other_run_commits_first, once=True)
            return unit

    snapshot = store_snapshot(lambda: RacedUnitOfWork(engine), figures, "this-run")
    assert raced == [1] and snapshot.version == 2
    with UnitOfWork(engine) as u:
        runs = [load_snapshot(u, 2024, example_plan, v).flow_run_id for v in (1, 2)]
    assert runs == ["other-run", "this-run"]
