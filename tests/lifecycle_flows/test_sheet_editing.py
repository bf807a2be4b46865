"""Editing a sheet through flows.usecases.editing, without the web: optimistic locking on the
version a form was read at, and on the race between the read and the write (both databases)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from flows.usecases import service
from flows.usecases.editing import MilestoneRow, SheetEdit, create_draft, edit_sheet
from flows.usecases.proposals import BudgetLineInput
from models.errors import ConcurrencyConflict, InvalidInput
from models.lifecycle import State
from models.tables import ActionChange, ActionSheet
from models.uow import UnitOfWork
from models.vocabulary import Axis, BudgetKind

CODE = "grand-est-touraine"


def _edit(title: str) -> SheetEdit:
    return SheetEdit(
        title=title,
        axis=Axis.FONCIER,
        budget=[BudgetLineInput(2025, BudgetKind.FONCTIONNEMENT, Decimal("12500.50"))],
        milestones=[MilestoneRow("Appel d'offres", date(2025, 4, 15))],
    )


def _changes(engine: Engine, action_id: int) -> list[str]:
    with UnitOfWork(engine) as u:
        return list(
            u.session.exec(
                select(ActionChange.summary).where(ActionChange.action_id == action_id)
            ).all()
        )


def test_draft_then_edit_then_stale_version_is_refused(engine: Engine, example_plan: str) -> None:
    with UnitOfWork(engine) as u:
        action = create_draft(u, CODE, _edit("Navette des salariés"), recorded_by="Lucie Perrin")
        u.commit()
        number, action_id, version = action.number, action.id, action.version
    assert number == "FA-13" and action.state is State.DRAFT
    with UnitOfWork(engine) as u:
        result = edit_sheet(
            u, CODE, number, _edit("Navette des salariés de la zone"), expected_version=version
        )
        u.commit()
    assert result.changed == ["intitulé"] and result.version == version + 1
    with UnitOfWork(engine) as u, pytest.raises(ConcurrencyConflict, match="FA-13"):
        edit_sheet(u, CODE, number, _edit("Encore un autre"), expected_version=version)
    assert action_id is not None
    assert _changes(engine, action_id) == [
        "Fiche créée (brouillon).",
        "Fiche modifiée : intitulé.",
    ]


def test_nothing_changed_writes_no_history(engine: Engine, example_plan: str) -> None:
    with UnitOfWork(engine) as u:
        action = create_draft(u, CODE, _edit("Navette"))
        u.commit()
    with UnitOfWork(engine) as u:
        result = edit_sheet(u, CODE, action.number, _edit("Navette"), expected_version=1)
        u.commit()
    assert result.changed == [] and result.version == 1
    assert action.id is not None and len(_changes(engine, action.id)) == 1


def test_bad_rows_are_all_reported_and_nothing_is_written(
    engine: Engine, example_plan: str
) -> None:
    bad = SheetEdit(
        title=" ",
        axis=Axis.FONCIER,
        start_date=date(2025, 6, 1),
        end_date=date(2025, 1, 1),
        budget=[BudgetLineInput(2025, BudgetKind.FONCTIONNEMENT, Decimal("-1"))],
    )
    with UnitOfWork(engine) as u, pytest.raises(InvalidInput) as raised:
        create_draft(u, CODE, bad)
    problems = "\n".join(raised.value.problems)
    assert "Intitulé : obligatoire." in problems
    assert "le début (01/06/2025) est après la fin (01/01/2025)" in problems
    assert "ne peut pas être négatif" in problems
    with UnitOfWork(engine) as u:
        assert len(u.session.exec(select(ActionSheet)).all()) == 12  # the example's, no new one
        assert u.session.exec(select(ActionChange)).all() == []


def test_two_saves_read_at_the_same_version_at_once_write_one(
    engine: Engine, example_plan: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with UnitOfWork(engine) as u:
        action = u.repo.action(CODE, "FA-01")
        action_id, version = action.id, action.version
    barrier = threading.Barrier(2, timeout=20)
    monkeypatch.setattr(service, "before_write", barrier.wait)

    def save(title: str) -> str:
        try:
            with UnitOfWork(engine) as u:
                edit_sheet(u, CODE, "FA-01", _edit(title), expected_version=version)
                u.commit()
        except ConcurrencyConflict as conflict:
            return str(conflict)
        return "ok"

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = sorted(pool.map(save, ["Usine-témoin (A)", "Usine-témoin (B)"]))
    assert results[1] == "ok"
    assert results[0].startswith("Conflit de mise à jour sur l'action FA-01")
    assert action_id is not None and len(_changes(engine, action_id)) == 1
