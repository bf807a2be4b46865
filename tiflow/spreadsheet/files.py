"""XLSX and CSV files ⇄ raw rows of cells. No meaning here beyond headers: `reading.py` checks
values, `export.py` decides what to write.

CSV, one file for the whole plan: `;` separator, UTF-8 with BOM (what Excel in French opens
without a wizard), a first column « Feuille » naming the sheet each row belongs to, then every
sheet's headers once (a header shared by several sheets, like « Action » or « Année », is one
column). A CSV without the « Feuille » column is read as the Actions sheet alone.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from models.errors import TiflowError
from models.preferences import EMAIL, WEEKDAYS
from models.safe_text import neutralise_formula, one_line, restore_formula
from models.vocabulary import Role
from tiflow.spreadsheet.cells import (
    CellValue,
    fold,
    french_date,
    french_number,
    is_blank,
    quote,
    yes_no,
)
from tiflow.spreadsheet.layout import (
    CHOICES,
    CSV_SHEET_HEADER,
    IGNORED_SHEETS,
    INSTRUCTIONS_TITLE,
    SHEETS,
    Column,
    Kind,
    Sheet,
    csv_headers,
    sheet_for,
)
from tiflow.spreadsheet.limits import (
    LIMITS_TEXT,
    MAX_COLUMNS,
    MAX_ROWS,
    SheetScan,
    check_archive,
    check_file_size,
    scan_sheet,
)
from tiflow.spreadsheet.problems import FileKind, Problems
from tiflow.spreadsheet.progress import NO_PROGRESS, PROGRESS_STEP, Progress


@dataclass
class RawRow:
    number: int  # the row number a spreadsheet shows (header = 1)
    # column key -> cell value, for the columns the sheet has; an empty cell is absent (or
    # None), never a blank text
    cells: dict[str, CellValue]
    refused: set[str] = field(default_factory=set)  # keys of cells already reported unreadable


@dataclass
class RawSheet:
    sheet: Sheet
    present: frozenset[str] = frozenset()  # keys of the columns found in the header
    rows: list[RawRow] = field(default_factory=list)


@dataclass
class RawFile:
    kind: FileKind
    sheets: dict[str, RawSheet]  # by Sheet.key, only the sheets the file has
    problems: Problems
    warnings: list[str] = field(default_factory=list)


def file_kind(path: Path) -> FileKind:
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return FileKind.XLSX
    if suffix == ".csv":
        return FileKind.CSV
    raise TiflowError(
        f"Format de fichier non pris en charge : « {path.name} » (attendu : .xlsx ou .csv)."
    )


def read_raw(path: Path, progress: Progress = NO_PROGRESS) -> RawFile:
    kind = file_kind(path)
    if not path.is_file():
        raise TiflowError(f"Fichier introuvable : {path}")
    check_file_size(path)
    return _read_xlsx(path, progress) if kind is FileKind.XLSX else _read_csv(path)


def _header_map(
    sheet: Sheet, headers: Sequence[object], problems: Problems, warnings: list[str], label: str
) -> dict[int, Column]:
    """Position -> column, headers compared without accents or case."""
    by_fold = {fold(c.header): c for c in sheet.columns}
    found: dict[int, Column] = {}
    for position, header in enumerate(headers):
        if is_blank(header):
            continue
        column = by_fold.get(fold(str(header)))
        if column is None:
            text = f"{label} : colonne « {str(header).strip()} » ignorée (inconnue)."
            warnings.append(one_line(text))
        elif column in found.values():
            problems.add(sheet, 1, column.key, "colonne présente deux fois")
        else:
            found[position] = column
    for column in sheet.columns:
        if column.required and column not in found.values():
            problems.add(sheet, None, None, f"colonne obligatoire absente : « {column.header} »")
    return found


def _read_xlsx(path: Path, progress: Progress) -> RawFile:
    from openpyxl import load_workbook

    check_archive(path)  # before openpyxl inflates anything
    problems = Problems(FileKind.XLSX)
    result = RawFile(FileKind.XLSX, {}, problems)
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as error:
        raise TiflowError(
            f"Classeur illisible : « {path.name} » n'est pas un fichier .xlsx valide ({error})."
        ) from None
    try:
        sheets = _plan_sheets(workbook, result)
        scans = {title: _scan(workbook, worksheet) for title, (worksheet, _) in sheets.items()}
        progress.phase("Lecture du classeur", sum(scan.last_row for scan in scans.values()))
        for title, (_, sheet) in sheets.items():
            result.sheets[sheet.key] = _read_sheet(sheet, scans[title], result, progress)
    finally:
        workbook.close()
    if not result.sheets:
        raise TiflowError(
            f"Le classeur « {path.name} » n'a aucune feuille du plan d'actions (attendu :"
            f" {', '.join(s.title for s in SHEETS)}). Créez un modèle avec « tiflow modele »."
        )
    return result


def _plan_sheets(workbook: Any, result: RawFile) -> dict[str, tuple[Any, Sheet]]:
    """Worksheet title -> (worksheet, plan sheet), warning about the others."""
    found: dict[str, tuple[Any, Sheet]] = {}
    for worksheet in workbook.worksheets:
        sheet = sheet_for(worksheet.title)
        if sheet is None:
            if fold(worksheet.title) not in IGNORED_SHEETS:
                result.warnings.append(
                    one_line(
                        f"Feuille « {worksheet.title} » ignorée : ce n'est pas une feuille du"
                        f" plan ({', '.join(s.title for s in SHEETS)})."
                    )
                )
        elif any(known is sheet for _, known in found.values()):
            result.problems.add(sheet, None, None, "le classeur a deux feuilles pour ce tableau")
        else:
            found[worksheet.title] = (worksheet, sheet)
    return found


def _scan(workbook: Any, worksheet: Any) -> SheetScan:
    # openpyxl keeps the archive, each read-only sheet's part name and the shared strings
    # private; the scan reads the very part openpyxl would read, and keeps its values (one
    # pass over the XML).
    decode = _CellDecoder(workbook, worksheet._shared_strings)
    with workbook._archive.open(worksheet._worksheet_path) as source:
        return scan_sheet(source, worksheet.title, decode)


class _CellDecoder:
    """A cell's value from its XML, exactly as openpyxl's read-only, data-only reader gives it
    (`openpyxl.worksheet._reader.WorkSheetParser.parse_cell`), with the workbook's shared
    strings, date styles and epoch as openpyxl loaded them."""

    def __init__(self, workbook: Any, strings: Sequence[Any]) -> None:
        from openpyxl.utils.datetime import from_excel, from_ISO8601

        self._from_excel, self._from_iso = from_excel, from_ISO8601
        self._strings = strings
        self._dates: set[int] = set(workbook._date_formats)
        self._durations: set[int] = set(workbook._timedelta_formats)
        self._epoch = workbook.epoch
        # A plan repeats its years, amounts and dates on many rows; a number and a date (or
        # time) are immutable: each distinct (text, style) is decoded once.
        self._numbers: dict[tuple[str, str | None], Any] = {}

    def __call__(self, kind: str | None, style: str | None, text: str) -> Any:
        if kind is None or kind == "n":
            value = self._numbers.get((text, style))
            if value is None:
                value = self._numbers[(text, style)] = self._number(style, text)
            return value
        if kind == "s":
            return self._strings[int(text)]
        if kind == "b":
            return bool(int(text))
        if kind == "d":
            return self._from_iso(text)
        return text  # "str" (a formula's text), "inlineStr", "e" (#DIV/0! and other errors)

    def _number(self, style: str | None, text: str) -> Any:
        number = float(text) if "." in text or "E" in text or "e" in text else int(text)
        style_id = int(style) if style else 0
        if style_id not in self._dates:
            return number
        try:
            return self._from_excel(number, self._epoch, timedelta=style_id in self._durations)
        except (OverflowError, ValueError):
            return "#VALUE!"


def _rows(scan: SheetScan) -> Iterator[tuple[Any, ...]]:
    """Rows 1 … last row of the sheet, each `last_column` values wide (None where empty)."""
    blank = (None,) * scan.last_column
    for number in range(1, scan.last_row + 1):
        cells = scan.values.get(number)
        if cells is None:
            yield blank
            continue
        row = list(blank)
        for column, value in cells.items():
            row[column - 1] = value
        yield tuple(row)


def _read_sheet(sheet: Sheet, scan: SheetScan, result: RawFile, progress: Progress) -> RawSheet:
    """The rows of one sheet, within the range that holds values (see `limits.scan_sheet`).

    Read from the scan's cells row by row (a row with no value is not there at all, a cell
    with no value neither), not from full-width rows: a large plan has hundreds of thousands
    of cells, many empty."""
    header = next(_rows(scan), None) or ()
    label = f"Feuille « {sheet.title} »"
    columns = _header_map(sheet, header, result.problems, result.warnings, label)
    raw = RawSheet(sheet, frozenset(c.key for c in columns.values()))
    keys = {position + 1: column.key for position, column in columns.items()}
    formulas, read = scan.formulas, 0
    for number in range(2, scan.last_row + 1):
        read += 1
        if read == PROGRESS_STEP:  # the bar moves by steps: advancing it costs more than a row
            progress.advance(read)
            read = 0
        cells, filled = _cells(scan.values.get(number), keys)
        row = RawRow(number, cells)
        if formulas:
            _refuse_formulas(row, scan, keys, result.problems, sheet)
        if filled or row.refused:
            raw.rows.append(row)
    progress.advance(read)
    return raw


def _cells(values: dict[int, Any] | None, keys: dict[int, str]) -> tuple[dict[str, Any], bool]:
    """A row's cells (column key -> value) for the plan's columns, without the empty ones; and
    whether the row holds a value at all, in any column (a row with a value only in an
    unknown column is still a row, its required cells missing)."""
    cells: dict[str, Any] = {}
    filled = False
    for place, value in (values or {}).items():
        if value.__class__ is str:  # most cells
            if not value or value.isspace():
                continue
            value = restore_formula(value)
        elif value is None:
            continue
        elif not isinstance(value, _KEPT):
            value = str(value)  # times, errors (#DIV/0!) and other oddities are read as text
        filled = True
        key = keys.get(place)
        if key is not None:
            cells[key] = value
    return cells, filled


# The values a cell keeps as they are (dates include datetimes); any other is read as text.
_KEPT = (int, float, bool, date, Decimal)


def _refuse_formulas(
    row: RawRow, scan: SheetScan, keys: dict[int, str], problems: Problems, sheet: Sheet
) -> None:
    for place, key in keys.items():
        formula = scan.formulas.get((row.number, place))
        if formula is not None:
            problems.add(sheet, row.number, key, _no_cached_value(formula))
            row.refused.add(key)


def _no_cached_value(formula: str) -> str:
    return (
        f"formule {quote(formula)} sans valeur calculée : ce classeur a été écrit par un"
        " programme et n'a jamais été ouvert dans un tableur, tiflow ne peut pas savoir ce"
        " qu'elle vaut. Ouvrez-le et enregistrez-le dans Excel ou LibreOffice (qui calculent"
        " les formules), ou tapez la valeur elle-même dans la cellule."
    )


def _read_csv(path: Path) -> RawFile:
    problems = Problems(FileKind.CSV)
    result = RawFile(FileKind.CSV, {}, problems)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel's « CSV (séparateur : point-virgule) » writes Windows-1252 in France.
        text = data.decode("cp1252", errors="replace")
        result.warnings.append("Fichier CSV lu en Windows-1252 (il n'est pas en UTF-8).")
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if ";" in first_line else ("\t" if "\t" in first_line else ",")
    records = _csv_records(path, text, delimiter)
    if not records or all(is_blank(v) for v in records[0]):
        raise TiflowError(f"Le fichier CSV « {path.name} » est vide.")
    header = records[0]
    folded = [fold(h) for h in header]
    if fold(CSV_SHEET_HEADER) in folded:
        sheet_position = folded.index(fold(CSV_SHEET_HEADER))
    else:
        sheet_position = None
    # Per sheet: position -> column. Missing required columns only matter for sheets with rows.
    maps: dict[str, dict[int, Column]] = {}
    for spec in SHEETS:
        by_fold = {fold(c.header): c for c in spec.columns}
        maps[spec.key] = {i: by_fold[f] for i, f in enumerate(folded) if f in by_fold}
    known = {fold(CSV_SHEET_HEADER)} | {fold(c.header) for s in SHEETS for c in s.columns}
    for h in header:
        if not is_blank(h) and fold(h) not in known:
            result.warnings.append(one_line(f"Colonne « {h.strip()} » ignorée (inconnue)."))
    actions = sheet_for("Actions")
    assert actions is not None
    for number, values in enumerate(records[1:], start=2):
        if all(is_blank(v) for v in values):
            continue
        if len(values) > len(header) and not all(is_blank(v) for v in values[len(header) :]):
            problems.add(None, number, None, "plus de cellules que de colonnes d'en-tête")
            continue
        name = ""
        if sheet_position is not None and sheet_position < len(values):
            name = values[sheet_position]
        target = (
            actions if sheet_position is None else (None if is_blank(name) else sheet_for(name))
        )
        if target is None:
            problems.add(
                None,
                number,
                None,
                f"colonne « {CSV_SHEET_HEADER} » : valeur « {name.strip()} » inconnue"
                f" (attendu : {', '.join(s.title for s in SHEETS)})",
            )
            continue
        columns = maps[target.key]
        for position, value in enumerate(values):
            if position == sheet_position or position in columns or is_blank(value):
                continue
            if position < len(header) and fold(header[position]) in known:
                problems.add(
                    target,
                    number,
                    None,
                    f"colonne « {header[position].strip()} » : ne s'applique pas à la feuille"
                    f" {target.title} (laissez-la vide)",
                )
        raw = result.sheets.get(target.key)
        if raw is None:
            raw = result.sheets[target.key] = RawSheet(
                target, frozenset(c.key for c in columns.values())
            )
            for column in target.columns:
                if column.required and column not in columns.values():
                    problems.add(
                        target, None, None, f"colonne obligatoire absente : « {column.header} »"
                    )
        cells: dict[str, CellValue] = {}
        for position, column in columns.items():
            value = values[position] if position < len(values) else ""
            cells[column.key] = None if is_blank(value) else restore_formula(value)
        raw.rows.append(RawRow(number, cells))
    return result


def _csv_records(path: Path, text: str, delimiter: str) -> list[list[str]]:
    """Every line of the file, refusing one beyond the limits (`limits.py`) as soon as seen."""
    records: list[list[str]] = []
    try:
        for line in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            if len(records) > MAX_ROWS or len(line) > MAX_COLUMNS + 1:  # + the « Feuille »
                raise TiflowError(
                    f"Fichier CSV refusé : « {path.name} » dépasse les limites d'un plan"
                    f" ({LIMITS_TEXT}) à la ligne {len(records) + 1}."
                )
            records.append(line)
    except csv.Error as error:
        raise TiflowError(
            f"Fichier CSV illisible : « {path.name} », ligne {len(records) + 1} ({error})."
        ) from None
    return records


# -- writing ------------------------------------------------------------------------------

SheetRows = list[tuple[Sheet, list[dict[str, object]]]]  # records as {column key: value}

DATE_FORMAT = "DD/MM/YYYY"
MONEY_FORMAT = '#,##0.00 "€"'
HEADER_FILL = "DCE6F1"
VALIDATION_ROWS = 2000


def _role_labels(roles: Iterable[Role]) -> str:
    return ", ".join(r.label for r in Role if r in set(roles))


def _refs(refs: Iterable[str]) -> str:
    items = list(refs)
    return ("; " if any("," in r for r in items) else ", ").join(items)


def csv_text(kind: Kind, value: object) -> str:
    if value is None or value == "":
        return ""
    if kind is Kind.DATE:
        assert isinstance(value, date)
        return french_date(value)
    if kind is Kind.MONEY:
        assert isinstance(value, Decimal)
        return french_number(value, 2)
    if kind is Kind.DECIMAL:
        assert isinstance(value, Decimal)
        return french_number(value)
    if kind is Kind.BOOL:
        return yes_no(bool(value))
    if kind is Kind.ROLES:
        return _role_labels(value)  # type: ignore[arg-type]
    if kind is Kind.ORG_REFS:
        return _refs(value)  # type: ignore[arg-type]
    if kind is Kind.WEEKDAY:
        assert isinstance(value, int)
        return WEEKDAYS[value]
    if kind is Kind.CHANNEL and value == EMAIL:
        return "e-mail"
    if isinstance(value, Enum):
        return str(getattr(value, "label", value.value))  # every vocabulary has a French label
    return str(value)


# Kinds written as numbers or dates: never neutralised (a negative number stays a number).
_NUMERIC = frozenset({Kind.MONEY, Kind.DECIMAL, Kind.DATE, Kind.YEAR})


def cell_text(kind: Kind, value: object) -> str:
    """What a CSV cell (or an XLSX text cell) holds: `csv_text`, formula-neutralised for text."""
    text = csv_text(kind, value)
    return text if kind in _NUMERIC else neutralise_formula(text)


def _xlsx_value(kind: Kind, value: object) -> object:
    if value is None or value == "":
        return None
    if kind in (Kind.MONEY, Kind.DECIMAL):
        assert isinstance(value, Decimal)
        # A float holds 15 significant digits exactly; beyond, write text (read back exactly).
        if len(value.as_tuple().digits) <= 15:
            return value
        return french_number(value)
    if kind in (Kind.DATE, Kind.YEAR):
        return value
    return cell_text(kind, value)


def write_csv(path: Path, sheets: SheetRows) -> None:
    headers = csv_headers()
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(headers)
    for target, rows in sheets:
        for record in rows:
            line = [""] * len(headers)
            line[0] = target.title
            for column in target.columns:
                line[headers.index(column.header)] = cell_text(column.kind, record[column.key])
            writer.writerow(line)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buffer.getvalue(), encoding="utf-8-sig", newline="")


def write_xlsx(path: Path, sheets: SheetRows, instructions: list[list[str]]) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    workbook = Workbook()
    notice = workbook.active
    assert notice is not None
    notice.title = INSTRUCTIONS_TITLE
    for line in instructions:
        notice.append([neutralise_formula(text) for text in line])
    notice.column_dimensions["A"].width = 26
    notice.column_dimensions["B"].width = 14
    notice.column_dimensions["C"].width = 90
    for row in notice.iter_rows():
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    notice["A1"].font = Font(bold=True, size=14)

    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor=HEADER_FILL)
    for target, rows in sheets:
        worksheet = workbook.create_sheet(target.title)
        worksheet.append([c.header for c in target.columns])
        for record in rows:
            worksheet.append([_xlsx_value(c.kind, record[c.key]) for c in target.columns])
        last = max(VALIDATION_ROWS, len(rows) + 500)
        for index, column in enumerate(target.columns, start=1):
            letter = get_column_letter(index)
            worksheet.column_dimensions[letter].width = column.width
            header = worksheet.cell(row=1, column=index)
            header.font, header.fill = bold, fill
            number_format = {Kind.DATE: DATE_FORMAT, Kind.MONEY: MONEY_FORMAT, Kind.YEAR: "0"}
            if column.kind in number_format:
                # The column's format for the cells a person fills in later; the filled cells
                # carry it too (a spreadsheet shows a cell's own format). Empty cells get none:
                # a styled empty cell is written out, and a national plan has 130 000 of them.
                worksheet.column_dimensions[letter].number_format = number_format[column.kind]
                for (cell,) in worksheet.iter_rows(
                    min_row=2, max_row=len(rows) + 1, min_col=index, max_col=index
                ):
                    if cell.value is not None:
                        cell.number_format = number_format[column.kind]
            choices = CHOICES.get(column.kind)
            if choices:
                validation = DataValidation(
                    type="list",
                    formula1='"' + ",".join(choices) + '"',
                    allow_blank=True,
                    showErrorMessage=True,
                    errorTitle="Valeur non prévue",
                    error="Choisissez une valeur de la liste : " + ", ".join(choices),
                )
                worksheet.add_data_validation(validation)
                validation.add(f"{letter}2:{letter}{last}")
            elif column.kind is Kind.ACTION_REF:
                # Drop-down of the Actions target's numbers; a warning only (rows may come later).
                validation = DataValidation(
                    type="list",
                    formula1=f"=Actions!$A$2:$A${last}",
                    allow_blank=True,
                    errorStyle="warning",
                    showErrorMessage=True,
                    errorTitle="Action inconnue",
                    error="Ce numéro n'est pas dans la feuille Actions.",
                )
                worksheet.add_data_validation(validation)
                validation.add(f"{letter}2:{letter}{last}")
        worksheet.freeze_panes = "A2"
        worksheet.auto_filter.ref = f"A1:{get_column_letter(len(target.columns))}{len(rows) + 1}"
        for row in worksheet.iter_rows(min_row=2):
            for cell in row:
                if isinstance(cell.value, str) and "\n" in cell.value:
                    cell.alignment = Alignment(wrap_text=True, vertical="top")
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
