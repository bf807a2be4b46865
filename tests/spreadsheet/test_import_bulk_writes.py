"""The import writes a table at a time (tiflow/spreadsheet/bulk.py): optimistic locking still
holds, and a change made by someone else meanwhile refuses the whole import (SQLite and
PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from models.db import make_engine
from models.errors import ConcurrencyConflict
from models.tables import ActionSheet, BudgetLine, Funding, Indicator, Milestone
from models.uow import UnitOfWork
from tiflow.spreadsheet import import_plan
from tiflow.spreadsheet.bulk import read_rows, table_of

UowFactory = Callable[[], UnitOfWork]
ACTIONS = ActionSheet.__table__  # type: ignore[attr-defined]


class ChangedMeanwhile:
    """Progress that, as the import starts writing actions, lets another transaction change
    FA-07 and commit (what a COPIL decision recorded at that moment would do)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def phase(self, label: str, total: int) -> None:
        if label == "Enregistrement des actions":
            # Another process, so to speak: its own engine, closed before the import goes on.
            other = make_engine(self.engine.url.render_as_string(hide_password=False))
            with other.begin() as conn:
                conn.execute(
                    ACTIONS.update()
                    .where(ACTIONS.c.number == "FA-07")
                    .values(version=ACTIONS.c.version + 1)
                )
            other.dispose()

    def advance(self, steps: int = 1) -> None:
        pass


def stored(engine: Engine) -> tuple[dict[str, tuple[str, int]], int]:
    with engine.connect() as conn:
        actions = {
            n: (t, v)
            for n, t, v in conn.execute(
                sa.select(ACTIONS.c.number, ACTIONS.c.title, ACTIONS.c.version)
            )
        }
        lines = conn.execute(sa.select(sa.func.count()).select_from(BudgetLine)).scalar_one()
    return actions, lines


@pytest.fixture
def renamed_fa07(example_plan: str, write_workbook: Callable[..., Path]) -> Path:
    """FA-07 renamed, FA-09 with one budget line more: two actions the import updates."""
    return write_workbook(
        {
            "Actions": [
                ["Numéro", "Intitulé", "Axe"],
                ["FA-07", "Plateforme RH du Grand Est Touraine", "Compétences"],
                ["FA-09", "Observatoire du foncier économique disponible", "Foncier"],
            ],
            "Budget": [
                ["Action", "Année", "Nature", "Montant"],
                ["FA-09", 2024, "Fonctionnement", "27 500,00 €"],
            ],
        }
    )


def test_an_action_changed_during_the_import_refuses_it_whole(
    engine: Engine, uow: UowFactory, renamed_fa07: Path
) -> None:
    actions, lines = stored(engine)

    with pytest.raises(ConcurrencyConflict) as raised, uow() as u:
        import_plan(u, renamed_fa07, progress=ChangedMeanwhile(engine))
        u.commit()

    assert "Conflit de mise à jour sur l'action FA-07, FA-09" in str(raised.value)
    assert "Rien n'a été enregistré" in str(raised.value)
    after, lines_after = stored(engine)
    assert after["FA-07"] == (actions["FA-07"][0], actions["FA-07"][1] + 1)  # theirs only
    assert after["FA-09"] == actions["FA-09"]
    assert lines_after == lines


def test_reimporting_after_a_conflict_applies_the_file(
    engine: Engine, uow: UowFactory, renamed_fa07: Path
) -> None:
    with pytest.raises(ConcurrencyConflict), uow() as u:
        import_plan(u, renamed_fa07, progress=ChangedMeanwhile(engine))
    before = stored(engine)[0]

    with uow() as u:
        report = import_plan(u, renamed_fa07)
        u.commit()

    assert report.changed
    after = stored(engine)[0]
    assert after["FA-07"] == ("Plateforme RH du Grand Est Touraine", before["FA-07"][1] + 1)
    assert after["FA-09"][1] == before["FA-09"][1] + 1  # its budget line changed


@pytest.mark.parametrize("model", [Funding, BudgetLine, Milestone, Indicator, ActionSheet])
def test_rows_read_a_table_at_a_time_hold_what_the_column_types_give(
    engine: Engine, example_plan: str, model: type[SQLModel]
) -> None:
    """`read_rows` converts each distinct stored value once, yet every value is the one the
    column's type gives through SQLAlchemy (dates, exact amounts, enums), type included."""
    table = table_of(model)
    query = sa.select(table).order_by(table.c.id)
    with UnitOfWork(engine) as uow:
        expected = [dict(row._mapping) for row in uow.session.execute(query)]
        rows = read_rows(uow, query)
    assert rows and rows == expected
    assert [[type(v) for v in r.values()] for r in rows] == [
        [type(v) for v in r.values()] for r in expected
    ]
