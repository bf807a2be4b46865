"""The reader takes each sheet's values from the same streaming pass that bounds the work
(`limits.scan_sheet`): every value must be the very one openpyxl's read-only reader gives,
type included, whatever program wrote the workbook (shared strings, inline strings, rich text,
dates, durations, booleans, errors, cached formula results)."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

import pytest
import xlsxwriter
from openpyxl import Workbook, load_workbook

from models.errors import TiflowError
from tiflow.spreadsheet import files, limits
from tiflow.spreadsheet.limits import MAX_ROWS, SheetScan


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


_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def _part(rows: str, root: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{_MAIN}"'
        f'{root}><dimension ref="A1:C9"/><cols><col min="1" max="1" width="9"/></cols>'
        f'<sheetData>{rows}</sheetData><pageMargins left="0.7"/></worksheet>'
    ).encode()


def _streamed(data: bytes) -> SheetScan:
    target = limits._SheetTarget("Actions", _as_read)
    parser = limits.XMLParser(target=target)
    parser.feed(data)
    parser.close()
    return target.scan


def _as_read(kind: str | None, style: str | None, text: str) -> tuple[Any, ...]:
    return (kind, style, text)


# Parts as spreadsheet programs write them: openpyxl's inline strings, Excel's shared strings
# with prefixed row attributes, attributes in another order, empty rows and cells, references
# left out, entities.
_USUAL = {
    "openpyxl": _part(
        '<row r="1"><c r="A1" s="3" t="inlineStr"><is><t>Numéro</t></is></c>'
        '<c r="B1" t="inlineStr"><is><t xml:space="preserve"> a &amp; b &#233;&#x2009;</t></is>'
        '</c><c r="C1" s="1"><v>12.5</v></c></row><row r="2"><c r="A2" s="2"/>'
        '<c r="C2" t="inlineStr"><is><t/></is></c></row>'
    ),
    "excel": _part(
        '<row r="1" spans="1:3" x14ac:dyDescent="0.25"><c r="A1" t="s"><v>0</v></c>'
        '<c r="B1" s="1" t="b"><v>1</v></c><c r="C1"><v></v></c></row>'
        '<row r="7" spans="1:3" x14ac:dyDescent="0.25"/>',
        ' xmlns:x14ac="http://schemas.microsoft.com/office/spreadsheetml/2009/9/ac"',
    ),
    "other order, no references": _part(
        '<row><c t="inlineStr" r="B3"><is><t>x</t></is></c><c><v>4</v></c></row>'
        '<row><c s="1" r="a1"><v>5</v></c><c r="AAAA1"><v>6</v></c></row>'
    ),
}
# Parts the fast path leaves to the streaming pass.
_UNUSUAL = {
    "formula": _part('<row r="1"><c r="A1"><f>1+1</f><v>2</v></c></row>'),
    "comment": _part('<row r="1"><!-- ici --><c r="A1"><v>2</v></c></row>'),
    "CDATA": _part('<row r="1"><c r="A1" t="inlineStr"><is><t><![CDATA[<b>]]></t></is></c></row>'),
    "rich text": _part('<row r="1"><c r="A1" t="inlineStr"><is><r><t>a</t></r></is></c></row>'),
    "prefixed cells": _part(
        '<x:row r="1"><x:c r="A1"><x:v>2</x:v></x:c></x:row>', f' xmlns:x="{_MAIN}"'
    ),
    "latin-1": _part('<row r="1"><c r="A1"><v>2</v></c></row>').replace(b"UTF-8", b"ISO-8859-1"),
}
_MALFORMED = {
    "duplicate attribute": _part('<row r="1"><c r="A1" r="B1"><v>2</v></c></row>'),
    "unknown prefix": _part('<row r="1" zz:dy="1"><c r="A1"><v>2</v></c></row>'),
    "unclosed row": _part('<row r="1"><c r="A1"><v>2</v></c>'),
    "control character": _part('<row r="1"><c r="A1"><v>2\x01</v></c></row>'),
}


def test_the_fast_path_reads_exactly_what_the_streaming_pass_reads() -> None:
    for name, data in _USUAL.items():
        fast = limits._fast_scan(data, "Actions", _as_read)
        assert fast is not None, name
        assert fast == _streamed(data), name
    for name, data in _UNUSUAL.items():
        assert limits._fast_scan(data, "Actions", _as_read) is None, name
        assert limits.scan_sheet(io.BytesIO(data), "Actions", _as_read) == _streamed(data), name


def test_a_malformed_part_is_refused_as_the_streaming_pass_refuses_it() -> None:
    for name, data in _MALFORMED.items():
        assert limits._fast_scan(data, "Actions", _as_read) is None, name
        with pytest.raises(ParseError):
            _streamed(data)
        with pytest.raises(ParseError):
            limits.scan_sheet(io.BytesIO(data), "Actions", _as_read)


def test_the_fast_path_refuses_a_cell_beyond_the_limits_as_the_streaming_pass_does() -> None:
    data = _part(f'<row r="{MAX_ROWS + 2}"><c r="A{MAX_ROWS + 2}"><v>1</v></c></row>')
    with pytest.raises(TiflowError, match="dépasse les limites") as fast:
        limits._fast_scan(data, "Actions", _as_read)
    with pytest.raises(TiflowError) as streamed:
        _streamed(data)
    assert str(fast.value) == str(streamed.value)
