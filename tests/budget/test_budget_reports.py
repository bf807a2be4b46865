"""Reports: an XLSX with real euro numbers, a CSV for French Excel, ASCII names, Markdown."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from sqlmodel import col, select

from flows.usecases.budget.consolidation import MEASURES, View, consolidate
from flows.usecases.budget.reports import (
    CSV_HEADERS,
    EURO_FORMAT,
    SHEET_VIEWS,
    artifact_key,
    axis_table,
    budget_workbook,
    csv_bytes,
    markdown_summary,
    write_reports,
)
from flows.usecases.budget.snapshots import Snapshot, load_snapshot, store_snapshot
from models.money import CENT
from models.tables import Funding
from models.uow import UnitOfWork
from tests.budget.builders import FON, INV, add_action, add_funder, add_territory

UowFactory = Callable[[], UnitOfWork]


def _snapshot(uow: UowFactory, year: int, territory: str | None, runs: int = 1) -> Snapshot:
    for _ in range(runs):
        with uow() as u:
            figures = consolidate(u, year, territory, as_of=date(year, 6, 1))
        store_snapshot(uow, figures, "00000000-0000-0000-0000-000000000006")
    with uow() as u:
        return load_snapshot(u, year, territory)


@pytest.fixture
def cents_plan(uow: UowFactory) -> str:
    """A territory whose amounts are all awkward cents, with an accented name."""
    with uow() as u:
        t = add_territory(u, "vallee-de-l-indre-test", "Vallée de l'Indre (test)")
        etat, region = add_funder(u, t, "État"), add_funder(u, t, "Région Centre-Val de Loire")
        for i in range(1, 31):
            add_action(
                u,
                t,
                f"FA-{i:02d}",
                firm=i % 2 == 0,
                budget={(2024, INV): f"{i}.10", (2024, FON): f"{i * 7}.20"},
                funding={
                    (etat, 2024): (f"{i}.33", f"{i}.01", "0.10"),
                    (region, 2024): ("0.20", "0.10", "0.01"),
                },
            )
        u.commit()
    return "vallee-de-l-indre-test"


def _decimal(value: object) -> Decimal:
    assert isinstance(value, (int, float)) and not isinstance(value, bool), value
    return Decimal(str(value)).quantize(CENT)


def test_workbook_cells_are_euro_numbers_equal_to_the_figures(
    uow: UowFactory, cents_plan: str
) -> None:
    snapshot = _snapshot(uow, 2024, cents_plan)
    data, name = budget_workbook(snapshot)
    assert name == "budget-2024-vallee-de-l-indre-test-v1.xlsx"
    wb = openpyxl.load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["Synthèse", *(v.label for v in SHEET_VIEWS), "Évolution"]

    ws = wb[View.ACTION.label]
    headers = [cell.value for cell in ws[1]]
    assert headers[:3] == ["Territoire", "N°", "Intitulé"]
    assert ws.freeze_panes == "A2"
    lines = snapshot.figures.view(View.ACTION)
    money_cols = {label: headers.index(label) for _, label in MEASURES}
    for row, line in zip(ws.iter_rows(min_row=2), lines, strict=False):
        assert (row[0].value, row[1].value) == ("Vallée de l'Indre (test)", line.key)
        for measure, label in MEASURES:
            cell = row[money_cols[label]]
            assert cell.data_type == "n" and cell.number_format == EURO_FORMAT
            assert _decimal(cell.value) == getattr(line.figures, measure)
    totals = ws[len(lines) + 2]
    assert totals[0].value == "Total" and totals[0].font.b
    total = snapshot.figures.total()
    for measure, label in MEASURES:
        assert _decimal(totals[money_cols[label]].value) == getattr(total, measure)
    assert ws.column_dimensions["C"].width >= 40

    funders = wb[View.FUNDER.label]
    assert [c.value for c in funders[1]][:5] == [
        "Financeur",
        "Nombre d'actions",
        "Demandé",
        "Accordé",
        "Versé",
    ]
    etat = next(r for r in funders.iter_rows(min_row=2) if r[0].value == "État")
    line = next(x for x in snapshot.figures.view(View.FUNDER) if x.key == "État")
    assert _decimal(etat[3].value) == line.figures.granted
    assert etat[6].number_format == "0.0 %"
    assert Decimal(str(etat[6].value)) == (line.figures.granted / line.figures.requested).quantize(
        Decimal("0.0001")
    )


def test_csv_round_trips_with_semicolons_and_decimal_commas(
    uow: UowFactory, cents_plan: str, tmp_path: Path
) -> None:
    snapshot = _snapshot(uow, 2024, cents_plan)
    files = write_reports(snapshot, tmp_path / "reports")
    raw = files.csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads the accents right
    with files.csv.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    assert list(rows[0]) == CSV_HEADERS
    assert len(rows) == sum(len(snapshot.figures.view(v)) for v in SHEET_VIEWS)
    actions = [r for r in rows if r["Vue"] == View.ACTION.label]
    for row, line in zip(actions, snapshot.figures.view(View.ACTION), strict=True):
        for measure, label in MEASURES:
            text = row[label]
            assert "." not in text and "," in text
            assert Decimal(text.replace(",", ".")) == getattr(line.figures, measure)
    assert {r["Libellé"] for r in rows if r["Vue"] == View.TERRITORY.label} == {
        "Vallée de l'Indre (test)"
    }
    assert files.xlsx.name == "budget-2024-vallee-de-l-indre-test-v1.xlsx"
    assert files.csv.name.isascii() and files.xlsx.exists()


def test_an_empty_year_gives_an_empty_report_not_an_error(
    uow: UowFactory, example_plan: str, tmp_path: Path
) -> None:
    snapshot = _snapshot(uow, 2031, None)
    files = write_reports(snapshot, tmp_path)
    assert files.xlsx.name == "budget-2031-tous-territoires-v1.xlsx"
    wb = openpyxl.load_workbook(files.xlsx)
    ws = wb[View.AXIS.label]
    assert [c.value for c in ws[2]][:2] == ["Total", 0]
    assert _decimal(ws.cell(row=2, column=3).value) == Decimal("0.00")
    rows = list(csv.reader(io.StringIO(csv_bytes(snapshot).decode("utf-8-sig")), delimiter=";"))
    assert rows == [CSV_HEADERS]
    assert "Aucune action n'a de budget" in markdown_summary(snapshot)
    assert axis_table(snapshot)[-1]["Axe"] == "Total"


def test_second_version_report_shows_the_change_sheet(uow: UowFactory, cents_plan: str) -> None:
    _snapshot(uow, 2024, cents_plan)
    with uow() as u:
        funding = u.session.exec(select(Funding).order_by(col(Funding.id))).first()
        assert funding is not None
        funding.paid += Decimal("0.01")
        u.session.add(funding)
        u.commit()
    snapshot = _snapshot(uow, 2024, cents_plan)
    assert snapshot.version == 2
    wb = openpyxl.load_workbook(io.BytesIO(budget_workbook(snapshot)[0]))
    ws = wb["Évolution"]
    rows = [[c.value for c in row] for row in ws.iter_rows(min_row=2)]
    assert rows and all(r[4] == "Versé" for r in rows)
    assert all(_decimal(r[7]) == Decimal("0.01") for r in rows)
    summary = markdown_summary(snapshot)
    assert "depuis la version 1" in summary and "Versé : +0,01\u00a0€" in summary
    assert artifact_key(snapshot, "synthese") == "budget-2024-vallee-de-l-indre-test-synthese"
