"""Bounded work on hostile or huge files, checked before openpyxl parses anything.

An .xlsx file is a zip archive of XML parts. Three things can make a naive reader work for
hours on a small file, and each is refused here in seconds with a French message:

* a huge archive, or a « zip bomb » (a few kilobytes that inflate to gigabytes): the zip's own
  table of contents (`infolist`) gives every part's sizes before anything is inflated;
* a declared dimension far larger than the data (one cell at XFD1048576 makes openpyxl pad
  every row to 16 384 columns and yield a million empty rows): `scan_sheet` streams the sheet's
  XML once and finds the last row and column that really hold a value, so the reader asks
  openpyxl for exactly that range; empty formatted cells, wherever they are, cost nothing;
* formulas without a cached value (a workbook written by a program, never opened in a
  spreadsheet): openpyxl reads them as empty; `scan_sheet` lists them so they are refused.

The same pass can also hand over the values (`scan_sheet(..., decode=...)`): the reader then
reads each sheet once, not a scan and then openpyxl's own parse of the same XML.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any
from xml.etree.ElementTree import XMLParser

from models.errors import TiflowError

MAX_FILE_BYTES = 20 * 1024 * 1024  # an .xlsx or .csv file, as stored on disk
MAX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024  # every part of an .xlsx archive, inflated
MAX_COMPRESSION_RATIO = 100  # per part bigger than RATIO_FROM_BYTES once inflated
RATIO_FROM_BYTES = 1024 * 1024
MAX_PARTS = 2_000
MAX_ROWS = 100_000  # data rows of a sheet, header excluded
MAX_COLUMNS = 200  # the widest sheet has a dozen columns; the rest is ignored with a warning

LIMITS_TEXT = (
    f"{MAX_FILE_BYTES // (1024 * 1024)} Mo par fichier, {MAX_ROWS} lignes et {MAX_COLUMNS}"
    f" colonnes par feuille, {MAX_UNCOMPRESSED_BYTES // (1024 * 1024)} Mo une fois décompressé"
)

_MAIN_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_CELL_REF = re.compile(r"([A-Z]{1,3})(\d+)$")


def check_file_size(path: Path) -> None:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise TiflowError(
            f"Fichier trop volumineux : « {path.name} » fait {size // (1024 * 1024)} Mo, la limite"
            f" est de {MAX_FILE_BYTES // (1024 * 1024)} Mo ({LIMITS_TEXT}). Découpez le plan en"
            " plusieurs fichiers."
        )


def check_archive(path: Path) -> None:
    """Refuse an .xlsx archive too big once inflated, before anything is inflated."""
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError) as error:
        raise TiflowError(
            f"Classeur illisible : « {path.name} » n'est pas un fichier .xlsx valide ({error})."
        ) from None
    refusal = f"Classeur refusé : « {path.name} »"
    if len(parts) > MAX_PARTS:
        raise TiflowError(f"{refusal} contient {len(parts)} éléments ({MAX_PARTS} au plus).")
    total = sum(part.file_size for part in parts)
    if total > MAX_UNCOMPRESSED_BYTES:
        raise TiflowError(
            f"{refusal} fait {total // (1024 * 1024)} Mo une fois décompressé (limite :"
            f" {LIMITS_TEXT})."
        )
    for part in parts:
        ratio = part.file_size / max(part.compress_size, 1)
        if part.file_size > RATIO_FROM_BYTES and ratio > MAX_COMPRESSION_RATIO:
            raise TiflowError(
                f"{refusal} : l'élément « {part.filename} » se décompresse {int(ratio)} fois (au"
                f" plus {MAX_COMPRESSION_RATIO}) ; c'est le signe d'un fichier piégé, pas d'un"
                " classeur ordinaire."
            )


@dataclass
class SheetScan:
    """What a sheet's XML really holds."""

    last_row: int = 0  # last row with a value (0: none)
    last_column: int = 0  # last column with a value, 1-based
    # (row, column) of formula cells without a cached value -> the formula's text
    formulas: dict[tuple[int, int], str] = field(default_factory=dict)
    # with a `decode`: row -> column -> value, for the cells that hold one
    values: dict[int, dict[int, Any]] = field(default_factory=dict)


# A cell's value from its type attribute `t`, style index `s` and text (see files.py); an
# inline string (`t="inlineStr"`) is its text, without a call.
Decode = Callable[[str | None, str | None, str], Any]


def column_number(letters: str) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + ord(letter) - ord("A") + 1
    return number


_ROW, _CELL = f"{_MAIN_NS}row", f"{_MAIN_NS}c"
_VALUE, _FORMULA, _INLINE = f"{_MAIN_NS}v", f"{_MAIN_NS}f", f"{_MAIN_NS}is"
_TEXT, _PHONETIC = f"{_MAIN_NS}t", f"{_MAIN_NS}rPh"


def scan_sheet(source: IO[bytes], title: str, decode: Decode | None = None) -> SheetScan:
    """One streaming pass over a sheet's XML. No tree is built (expat calls the handlers of
    `_sheet_handlers` for each tag), so memory stays flat whatever the number of rows, empty
    or not (with `decode`, it holds the cells that have a value, nothing for empty ones)."""
    scan = SheetScan()
    parser = XMLParser(target=_sheet_handlers(scan, title, decode))
    while chunk := source.read(1 << 16):
        parser.feed(chunk)
    parser.close()
    return scan


_DIGITS = "0123456789"


def _sheet_handlers(scan: SheetScan, title: str, decode: Decode | None) -> SimpleNamespace:
    """expat's `start`, `data` and `end` for one sheet: they follow rows and cells, and look
    at a cell when it ends (its value and formula known).

    They are called five to seven times per cell (a plan of 10 000 actions has 700 000
    cells), which is why they are closures over local state rather than methods (a closure's
    variable costs less than an attribute), test the most frequent tags first, and keep a cell
    that holds a value within the limits without further calls."""
    values = scan.values
    columns: dict[str, int] = {}  # letters -> column number, for the letters already seen
    row = column = 0
    kind: str | None = None  # the cell's `t` and `s` attributes
    style: str | None = None
    text: str | None = None  # the value's text (an inline string's runs), None: none read
    formula: str | None = None
    inside: str | None = None  # _VALUE, _FORMULA or _TEXT while reading its text
    inline = phonetic = has_value = False

    def start(tag: str, attrib: dict[str, str]) -> None:
        nonlocal row, column, kind, style, text, formula, inside, inline, phonetic, has_value
        if tag == _CELL:
            # References are optional: without one, a cell follows the previous cell of its
            # row (and a row the previous row).
            ref = attrib.get("r")
            if ref:
                letters = ref.rstrip(_DIGITS)  # "AB12" -> "AB", without a regex per cell
                known = columns.get(letters) if len(letters) < len(ref) else None
                column = known if known is not None else _column_of(ref, column, columns)
            else:
                column += 1
            kind, style = attrib.get("t"), attrib.get("s")
            has_value, formula, text = False, None, None
        elif tag == _TEXT:
            if inline and not phonetic:
                inside = _TEXT
        elif tag == _INLINE:
            has_value = inline = True
        elif tag == _VALUE:
            inside = _VALUE
        elif tag == _ROW:
            row = int(attrib.get("r") or row + 1)
            column = 0
        elif tag == _FORMULA:
            inside, formula = _FORMULA, ""
        elif tag == _PHONETIC:
            phonetic = True

    def data(chunk: str) -> None:
        nonlocal text, formula, has_value
        if inside is _VALUE or inside is _TEXT:
            has_value = True
            text = chunk if text is None else text + chunk  # split only at entities or feeds
        elif inside is _FORMULA and formula is not None and len(formula) < 200:
            formula += chunk

    def end(tag: str) -> None:
        nonlocal inside, inline, phonetic
        if tag == _CELL:
            end_cell()
        elif tag in (_TEXT, _VALUE, _FORMULA):
            inside = None
        elif tag == _INLINE:
            inline = False
        elif tag == _PHONETIC:
            phonetic = False

    def end_cell() -> None:
        if not has_value or formula is not None or row - 1 > MAX_ROWS or column > MAX_COLUMNS:
            _scan_cell(scan, has_value, formula, row, column, title)
        else:  # the usual cell, `_scan_cell` inlined: a value within the limits
            if row > scan.last_row:
                scan.last_row = row
            if column > scan.last_column:
                scan.last_column = column
        if decode is not None and has_value:
            if kind == "inlineStr":  # what openpyxl writes for every text cell: the text
                value: Any = text or ""
            elif text:  # (an empty <v/> is no value, as openpyxl reads it)
                value = decode(kind, style, text)
            else:
                return
            cells = values.get(row)
            if cells is None:
                cells = values[row] = {}
            cells[column] = value

    return SimpleNamespace(start=start, data=data, end=end)


def _column_of(ref: str, previous: int, columns: dict[str, int]) -> int:
    """The column of a cell reference not seen before (noted in `columns`), or the column
    after `previous` when the reference is not one."""
    match = _CELL_REF.match(ref)
    if match is None:
        return previous + 1
    letters = match[1]
    column = columns[letters] = column_number(letters)
    return column


def _scan_cell(
    scan: SheetScan, has_value: bool, formula: str | None, row: int, column: int, title: str
) -> None:
    if formula is not None and not has_value:
        scan.formulas[(row, column)] = "=" + (formula or "…")
    elif not has_value:
        return  # an empty (formatted) cell: it costs nothing, wherever it is
    if row - 1 > MAX_ROWS or column > MAX_COLUMNS:
        raise TiflowError(
            f"Feuille « {title} » : une cellule remplie en {_ref(row, column)} dépasse les limites"
            f" d'un plan ({LIMITS_TEXT}). Supprimez les lignes et colonnes en trop (ou videz cette"
            " cellule), puis réessayez."
        )
    scan.last_row = max(scan.last_row, row)
    scan.last_column = max(scan.last_column, column)


def _ref(row: int, column: int) -> str:
    letters = ""
    while column:
        column, rest = divmod(column - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return f"{letters}{row}"
