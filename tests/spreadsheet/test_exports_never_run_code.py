"""Every XLSX and CSV tiflow writes shows text, never runs it (OWASP « CSV injection »), and the
plan export → import round trip stays exact for such titles (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import select

from flows.usecases.budget.consolidation import consolidate
from flows.usecases.budget.reports import csv_bytes, workbook_bytes
from flows.usecases.budget.snapshots import load_snapshot, store_snapshot
from models.safe_text import FORMULA_STARTS, neutralise_formula, restore_formula
from models.tables import Indicator, Milestone, Person
from models.uow import UnitOfWork
from tiflow.spreadsheet import export_plan, import_plan, plan_from_database, write_template
from tiflow.spreadsheet.records import PlanFile

UowFactory = Callable[[], UnitOfWork]

HOSTILE_TITLES = {
    "FA-01": '=HYPERLINK("http://intrus.example","Couverture 4G")',
    "FA-02": "+33 6 12 34 56 78, le standard de l'usine",
    "FA-03": "-10 % d'émissions de CO2 sur la zone d'activités",
    "FA-04": "@SOMME(A1:A9)",
    "FA-05": "'=déjà précédé d'une apostrophe",
}


def _plant_hostile_text(uow: UowFactory, territory: str) -> None:
    """Titles, a description, a position, a milestone and an indicator unit that a spreadsheet
    would run; and a negative indicator target, a real number that must stay one."""
    with uow() as u:
        for number, title in HOSTILE_TITLES.items():
            u.repo.action(territory, number).title = title
        fa01 = u.repo.action(territory, "FA-01")
        fa01.description = "=cmd|' /C calc'!A0\nsuite du texte"
        person = u.session.exec(select(Person).order_by(Person.id)).first()  # type: ignore[arg-type]
        assert person is not None
        person.position = "-responsable emploi"
        milestone = u.session.exec(select(Milestone).where(Milestone.action_id == fa01.id)).first()
        assert milestone is not None
        milestone.title = "=1+1"
        indicator = u.session.exec(select(Indicator).where(Indicator.action_id == fa01.id)).one()
        indicator.unit, indicator.target = "+%", Decimal("-5")
        u.commit()


def _formula_cells(path: Path) -> list[str]:
    workbook = openpyxl.load_workbook(path)  # not read-only: every cell with its data type
    return [
        f"{ws.title}!{cell.coordinate}"
        for ws in workbook.worksheets
        for row in ws.iter_rows()
        for cell in row
        if cell.data_type == "f"
    ]


def _export_hostile_plan(uow: UowFactory, territory: str, path: Path) -> PlanFile:
    _plant_hostile_text(uow, territory)
    with uow() as u:
        export_plan(u, territory, path)
        return plan_from_database(u, territory)


def _reimported(engine: Engine, path: Path, territory: str) -> PlanFile:
    with UnitOfWork(engine) as u:
        import_plan(u, path)
        u.commit()
    with UnitOfWork(engine) as u:
        return plan_from_database(u, territory)


def test_xlsx_export_has_no_formula_cell_and_reimports_every_title(
    uow: UowFactory, example_plan: str, fresh_engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "plan.xlsx"
    original = _export_hostile_plan(uow, example_plan, path)

    assert _formula_cells(path) == []
    actions = openpyxl.load_workbook(path)["Actions"]
    titles = {row[0].value: row[1].value for row in actions.iter_rows(min_row=2)}
    assert titles["FA-01"] == "'" + HOSTILE_TITLES["FA-01"]
    assert titles["FA-05"] == "''=déjà précédé d'une apostrophe"
    targets = [row[3] for row in openpyxl.load_workbook(path)["Indicateurs"].iter_rows(min_row=2)]
    negative = [cell for cell in targets if cell.value == -5]
    assert len(negative) == 1 and negative[0].data_type == "n"  # a number, not neutralised text

    assert _reimported(fresh_engine, path, example_plan) == original


def test_csv_export_neutralises_every_text_cell_and_reimports_every_title(
    uow: UowFactory, example_plan: str, fresh_engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "plan.csv"
    original = _export_hostile_plan(uow, example_plan, path)

    header, *rows = list(csv.reader(io.StringIO(path.read_text("utf-8-sig")), delimiter=";"))
    target = header.index("Cible")
    runnable = [
        (row[0], header[i], cell)
        for row in rows
        for i, cell in enumerate(row)
        if cell.startswith(FORMULA_STARTS) and i != target
    ]
    assert runnable == []
    assert ["Indicateurs", "-5"] in [[row[0], row[target]] for row in rows]  # a number, as is
    cells = {cell for row in rows for cell in row}
    assert {"'" + title for title in HOSTILE_TITLES.values() if title[0] != "'"} <= cells
    assert {"''=déjà précédé d'une apostrophe", "'=1+1", "'+%", "'-responsable emploi"} <= cells

    assert _reimported(fresh_engine, path, example_plan) == original


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_blank_template_holds_no_formula(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"modele{suffix}"
    write_template(path)
    if suffix == ".xlsx":
        assert _formula_cells(path) == []
    else:
        (header,) = list(csv.reader(io.StringIO(path.read_text("utf-8-sig")), delimiter=";"))
        assert not [cell for cell in header if cell.startswith(FORMULA_STARTS)]


def test_budget_workbook_and_csv_show_hostile_titles_as_text(
    uow: UowFactory, example_plan: str, tmp_path: Path
) -> None:
    _plant_hostile_text(uow, example_plan)
    with uow() as u:
        figures = consolidate(u, 2024, example_plan, as_of=date(2024, 6, 1))
    store_snapshot(uow, figures, "00000000-0000-0000-0000-000000000019")
    with uow() as u:
        snapshot = load_snapshot(u, 2024, example_plan)
    path = tmp_path / "budget.xlsx"
    path.write_bytes(workbook_bytes(snapshot))

    assert _formula_cells(path) == []
    workbook = openpyxl.load_workbook(path)
    texts = {c.value for ws in workbook for row in ws.iter_rows() for c in row}
    assert "'" + HOSTILE_TITLES["FA-01"] in texts

    text = csv_bytes(snapshot).decode("utf-8-sig")
    header, *rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    label = header.index("Libellé")
    labels = {row[label] for row in rows}
    assert "'" + HOSTILE_TITLES["FA-01"] in labels
    assert not [row[label] for row in rows if row[label].startswith(FORMULA_STARTS)]


@given(st.text(alphabet=st.sampled_from("'=+-@\t\rab ")))
def test_neutralisation_is_undone_exactly_and_never_leaves_a_formula(text: str) -> None:
    written = neutralise_formula(text)
    assert not written.startswith(FORMULA_STARTS)
    assert restore_formula(written) == text


def test_text_that_is_no_formula_is_left_alone_both_ways() -> None:
    for text in ("Plateforme RH", "'tel quel", "12,5", "", "'"):
        assert neutralise_formula(text) == text
        assert restore_formula(text) == text
