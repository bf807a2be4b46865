"""The reader takes each sheet's values from the same streaming pass that bounds the work
(`limits.scan_sheet`): every value must be the very one openpyxl's read-only reader gives,
type included, whatever program wrote the workbook (shared strings, inline strings, rich text,
dates, durations, booleans, errors, cached formula results)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import xlsxwriter
from openpyxl import Workbook, load_workbook

from tiflow.spreadsheet import files
from tiflow.spreadsheet.limits import SheetScan


def _both_ways(path: Path) -> list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """For each sheet: (openpyxl's rows within the scanned range, the single pass's rows)."""
    book = load_workbook(path, read_only=True, data_only=True)
    try:
        pairs = []
        for sheet in book.worksheets:
            scan: SheetScan = files._scan(book, sheet)
            theirs = list(
                sheet.iter_rows(
                    min_row=1, max_row=scan.last_row, max_col=scan.last_column, values_only=True
                )
            )
            pairs.append((theirs if scan.last_row else [], list(files._rows(scan))))
        return pairs
    finally:
        book.close()


def _typed(rows: list[tuple[Any, ...]]) -> list[list[tuple[type, Any]]]:
    return [[(type(value), value) for value in row] for row in rows]


def test_values_of_an_openpyxl_workbook_are_openpyxls_own(tmp_path: Path) -> None:
    path = tmp_path / "plan.xlsx"
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Actions"
    sheet.append(["Numéro", "Intitulé", "Montant", "Ferme", "Début", "Durée"])
    sheet.append(["FA-01", " Plateforme RH ", 12500.5, True, date(2024, 3, 1), timedelta(hours=5)])
    sheet.append(["FA-02", "'=déjà neutralisé", 3, False, datetime(2024, 5, 2, 13, 30), None])
    sheet.append([None, "", -5, None, None, None])
    sheet.cell(row=9, column=12, value="loin")  # rows and columns beyond the others
    book.create_sheet("Budget").append(["Action", "Année", "Montant"])
    book.save(path)

    pairs = _both_ways(path)
    assert [len(theirs) for theirs, _ in pairs] == [9, 1]
    for theirs, ours in pairs:
        assert _typed(ours) == _typed(theirs)


def test_inline_and_rich_strings_and_cached_formulas_read_as_openpyxl_reads_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "autre-programme.xlsx"
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "tmpdir": str(tmp_path)})
    sheet = book.add_worksheet("Actions")
    day = book.add_format({"num_format": "dd/mm/yyyy"})
    sheet.write_row(0, 0, ["Numéro", "Intitulé", "Cible"])
    sheet.write_row(1, 0, ["FA-01", "Été  indien ", 3.0])
    sheet.write_datetime(2, 1, datetime(2024, 3, 4), day)
    sheet.write_rich_string(3, 0, "Usine ", book.add_format({"bold": True}), "témoin", " 2")
    sheet.write_formula(4, 0, "=1+1", None, 2)
    sheet.write_boolean(4, 1, True)
    book.close()

    ((theirs, ours),) = _both_ways(path)
    assert len(theirs) == 5
    assert _typed(ours) == _typed(theirs)
