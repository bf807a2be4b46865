"""Reports of a budget snapshot, in French: XLSX workbook, CSV for French Excel, Markdown.

Everything is rendered from a `Snapshot` (the stored figures), so a report can be rebuilt from
the database at any time. Amounts are exact: totals are summed in Decimal, never by the
spreadsheet, and each amount cell holds its figure as a number (cents below 10¹⁴ €, so the 16
significant digits written are the figure itself).

The workbook is written by XlsxWriter, row after row, in memory (no temporary file): at national
scale (≈ 150 000 cells) it costs what the cells cost, about 2.5 times less than openpyxl's
write-only mode. Every text cell goes through `models.safe_text.neutralise_formula`, and only
`write_string` / `write_number` / `write_datetime` are called: no cell is ever a formula.
"""

from __future__ import annotations

import csv
import io
import operator
import os
import re
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from flows.usecases.budget.calendar import PARIS
from flows.usecases.budget.consolidation import (
    ALL_TERRITORIES,
    CHANGE_MEASURES,
    MEASURES,
    Figures,
    Line,
    View,
)
from flows.usecases.budget.snapshots import Snapshot, changes
from models.collector import collector_paused
from models.money import ZERO, format_eur, group_thousands
from models.safe_text import neutralise_formula
from notifications import fr

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"

EURO_FORMAT = '#,##0.00 "€";-#,##0.00 "€"'  # Excel shows "12 500,00 €" in a French locale
PERCENT_FORMAT = "0.0 %"
DAYS_FORMAT = "0.0"
DATE_FORMAT = "DD/MM/YYYY"
DATETIME_FORMAT = "DD/MM/YYYY HH:MM"
_HEADER_STYLE = {
    "bold": True,
    "font_color": "#FFFFFF",
    "bg_color": "#1F4E78",
    "pattern": 1,
    "text_wrap": True,
    "valign": "vcenter",
}
# Never turn a text into a formula, a link or a number, even through `write()` (tiflow calls
# only the typed writers); no temporary files (in_memory).
_WORKBOOK_OPTIONS = {
    "in_memory": True,
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
}
_MEASURE_LABELS = dict(MEASURES)
SUMMARY_SHEET = "Synthèse"  # the workbook's first sheet; it lists every over-granted action


@dataclass(frozen=True)
class ReportFiles:
    xlsx: Path
    csv: Path


# --- names -----------------------------------------------------------------------------------


def slug(text: str) -> str:
    """Lowercase ASCII letters, digits and dashes (file names, Prefect artifact keys)."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-") or "territoire"


def scope_slug(scope: str) -> str:
    return "tous-territoires" if scope == ALL_TERRITORIES else slug(scope)


def report_basename(snapshot: Snapshot) -> str:
    """``budget-2024-grand-est-touraine-v2`` (ASCII: safe as an e-mail attachment name)."""
    return f"budget-{snapshot.year}-{scope_slug(snapshot.scope)}-v{snapshot.version}"


# --- workbook --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    header: str
    width: int
    kind: str = "text"  # text | money | count | percent | date


_MONEY_COLUMNS = [_Column(label, 18, "money") for _, label in MEASURES]
_COUNT = _Column("Nombre d'actions", 10, "count")
_FUNDER_MEASURES = ("requested", "granted", "paid", "left_to_pay")


# The amounts of a line in column order, read by one C call each (12 000 lines, twice).
_MEASURE_VALUES = operator.attrgetter(*(measure for measure, _ in MEASURES))
_FUNDER_VALUES = operator.attrgetter(*_FUNDER_MEASURES)


def _money_values(f: Figures) -> list[Decimal]:
    return list(_MEASURE_VALUES(f))


def _funding_values(f: Figures) -> list[Decimal | None]:
    return [*_FUNDER_VALUES(f), _ratio(f.granted, f.requested)]


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("oui" if value else "non")


def _view_table(
    view: View, lines: Sequence[Line], territory_names: dict[str, str]
) -> tuple[list[_Column], list[list[Any]], list[Any]]:
    """Columns, rows and totals row of one view's sheet."""
    total = Figures.total(line.figures for line in lines)
    count = sum(line.action_count for line in lines)
    if view is View.FUNDER:
        columns = [
            _Column("Financeur", 48),
            _Column("Nombre d'actions", 10, "count"),
            *(_Column(_MEASURE_LABELS[m], 18, "money") for m in _FUNDER_MEASURES),
            _Column("Taux d'accord", 10, "percent"),
        ]

        rows = [[line.label, line.action_count, *_funding_values(line.figures)] for line in lines]
        # an action funded by two funders counts once per funder: no total of the counts
        return columns, rows, ["Total", None, *_funding_values(total)]
    if view in (View.ACTION, View.LATE, View.DROPPED):
        columns = [
            _Column("Territoire", 26),
            _Column("N°", 8),
            _Column("Intitulé", 50),
            _Column("Axe", 20),
            _Column("État", 16),
            _Column("Engagement ferme", 10),
        ]
        columns.append(_Column("Motif du retard" if view is View.LATE else "Remarque", 50))
        columns += _MONEY_COLUMNS
        rows = []
        for line in lines:
            row: list[Any] = [
                territory_names.get(line.territory, line.territory),
                line.key,
                line.label,
                line.axis.label if line.axis else "",
                line.state.label if line.state else "",
                _yes_no(line.firm_commitment),
            ]
            row.append(line.note)
            rows.append(row + _money_values(line.figures))
        blanks = [None] * (len(columns) - len(_MONEY_COLUMNS) - 1)
        return columns, rows, ["Total", *blanks, *_money_values(total)]
    first = {
        View.AXIS: [_Column("Axe", 24)],
        View.STATE: [_Column("État", 20)],
        View.COMMITMENT: [_Column("Engagement ferme de réalisation", 30)],
        View.TERRITORY: [_Column("Territoire", 36), _Column("Code", 24)],
    }[view]
    columns = [*first, _COUNT, *_MONEY_COLUMNS]
    rows = []
    for line in lines:
        keys = [line.label, line.key] if view is View.TERRITORY else [line.label]
        rows.append([*keys, line.action_count, *_money_values(line.figures)])
    blanks = [None] * (len(first) - 1)
    return columns, rows, ["Total", *blanks, count, *_money_values(total)]


def _ratio(part: Decimal, whole: Decimal) -> Decimal | None:
    return None if not whole else (part / whole).quantize(Decimal("0.0001"))


_FORMATS = {"money": EURO_FORMAT, "percent": PERCENT_FORMAT, "date": DATE_FORMAT}


class _Styles:
    """The workbook's formats, each made once (XlsxWriter formats belong to one workbook)."""

    def __init__(self, workbook: xlsxwriter.Workbook) -> None:
        self._workbook = workbook
        self._made: dict[tuple[str | None, bool, bool], Format | None] = {}
        self.header = workbook.add_format(_HEADER_STYLE)
        self.title = workbook.add_format({"bold": True, "font_size": 14})

    def of(self, number_format: str | None, bold: bool = False, left: bool = False) -> Any:
        key = (number_format, bold, left)
        if key not in self._made:
            style: dict[str, Any] = {"num_format": number_format} if number_format else {}
            style.update({"bold": True} if bold else {})
            style.update({"align": "left"} if left else {})
            self._made[key] = self._workbook.add_format(style) if style else None
        return self._made[key]


def _put(ws: Worksheet, row: int, column: int, value: Any, style: Format | None = None) -> None:
    """One typed cell (0-based row and column); None leaves the cell empty."""
    if value is None:
        return
    if isinstance(value, str):
        ws.write_string(row, column, neutralise_formula(value), style)
    elif isinstance(value, date):  # datetime too
        ws.write_datetime(row, column, value, style)
    else:
        ws.write_number(row, column, value, style)


def _widths(ws: Worksheet, columns: Sequence[_Column], styles: _Styles | None = None) -> None:
    """Column widths; with `styles`, each column's number format too (XlsxWriter gives it to
    every cell written without a format of its own)."""
    for i, column in enumerate(columns):
        style = styles.of(_FORMATS.get(column.kind)) if styles else None
        ws.set_column(i, i, column.width, style)


def _header(ws: Worksheet, row: int, columns: Sequence[_Column], styles: _Styles) -> None:
    ws.write_row(row, 0, [neutralise_formula(column.header) for column in columns], styles.header)


def _write_table(
    ws: Worksheet,
    styles: _Styles,
    columns: Sequence[_Column],
    rows: Sequence[Sequence[Any]],
    totals: Sequence[Any] | None,
) -> None:
    """A sheet holding one table: widths, frozen header row, typed cells, bold totals row.

    The body is written a row at a time (`write_row` types each value: None an empty cell,
    a number a number, a text a text since the workbook never reads text as a formula) and
    takes each column's number format; the text is neutralised first all the same."""
    _widths(ws, columns, styles)
    ws.freeze_panes(1, 0)
    _header(ws, 0, columns, styles)
    write_row, number = ws.write_row, 0
    for number, values in enumerate(rows, start=1):
        write_row(number, 0, [neutralise_formula(v) if isinstance(v, str) else v for v in values])
    if totals is not None:
        for i, (value, column) in enumerate(zip(totals, columns, strict=True)):
            _put(ws, number + 1, i, value, styles.of(_FORMATS.get(column.kind), bold=True))


def _summary_sheet(ws: Worksheet, styles: _Styles, snapshot: Snapshot) -> None:
    c, g = snapshot.figures, snapshot.figures.governance
    created = snapshot.created_at.astimezone(PARIS).replace(tzinfo=None)
    facts: list[tuple[str, Any, str | None]] = [
        ("Périmètre", c.scope_label, None),
        ("Année budgétaire", c.year, None),
        ("Version de l'instantané", snapshot.version, None),
        ("Consolidé le (heure de Paris)", created, DATETIME_FORMAT),
        ("Date de situation des retards", c.as_of, DATE_FORMAT),
        ("Exécution Prefect", snapshot.flow_run_id or "—", None),
        ("Actions de l'année", g.action_count, None),
        ("dont avec engagement ferme", g.firm_count, None),
        ("Part des actions avec engagement ferme", g.firm_share, PERCENT_FORMAT),
        (
            "Délai médian proposition → validation en COPIL (jours)",
            g.median_days_to_validation,
            DAYS_FORMAT,
        ),
        ("Actions mesurées pour ce délai", g.validation_sample, None),
        ("Délai médian validation → financement (jours)", g.median_days_to_funding, DAYS_FORMAT),
        ("Actions mesurées pour ce délai", g.funding_sample, None),
        ("Actions en retard", g.late_count, None),
    ]
    previous = snapshot.previous
    before = previous.figures.total() if previous else None
    columns = [
        _Column("Montant", 56),
        _Column("Cette version", 22, "money"),
        _Column(f"Version {previous.version}" if previous else "Version précédente", 18, "money"),
        _Column("Écart", 18, "money"),
    ]
    _widths(ws, columns)
    _put(ws, 0, 0, f"Budget {c.year} — {c.scope_label}", styles.title)
    row = 2
    for label, value, fmt in facts:
        _put(ws, row, 0, label)
        _put(ws, row, 1, value, styles.of(fmt, left=True))
        row += 1
    _header(ws, row + 1, columns, styles)
    row += 2
    now, euro = c.total(), styles.of(EURO_FORMAT)
    for measure, label in MEASURES:
        value = getattr(now, measure)
        old = getattr(before, measure) if before else None
        delta = None if old is None else value - old
        _put(ws, row, 0, label)
        for i, amount in enumerate((value, old, delta), start=1):
            _put(ws, row, i, amount, euro)
        row += 1
    notes: list[list[Any]] = [[]]
    notes += [[label, "—" if amount is None else amount] for label, amount in c.against_validated()]
    notes += [[f"{line.key} : {line.note}"] for line in c.over_granted()]
    if c.is_empty:
        notes += [[], ["Aucune action n'a de budget ni de financement cette année."]]
    for cells in notes:
        for i, value in enumerate(cells):
            _put(ws, row, i, value, euro if i else None)
        row += 1


def _changes_sheet(ws: Worksheet, styles: _Styles, snapshot: Snapshot) -> None:
    previous = snapshot.previous
    columns = [
        _Column("Vue", 18),
        _Column("Territoire", 22),
        _Column("Clé", 16),
        _Column("Libellé", 48),
        _Column("Montant", 20),
        _Column(f"Version {previous.version}" if previous else "Version précédente", 18, "money"),
        _Column(f"Version {snapshot.version}", 18, "money"),
        _Column("Écart", 18, "money"),
    ]
    rows: list[list[Any]] = [
        [
            ch.view.label,
            ch.territory,
            ch.key,
            ch.label,
            _MEASURE_LABELS[ch.measure],
            ch.before,
            ch.after,
            ch.delta,
        ]
        for ch in changes(snapshot)
    ]
    if previous is None:
        rows = [["Première version : pas de version précédente à comparer.", *[None] * 7]]
    elif not rows:
        rows = [[f"Aucun changement depuis la version {previous.version}.", *[None] * 7]]
    _write_table(ws, styles, columns, rows, None)


SHEET_VIEWS = (
    View.AXIS,
    View.FUNDER,
    View.ACTION,
    View.STATE,
    View.COMMITMENT,
    View.TERRITORY,
    View.LATE,
    View.DROPPED,
)


def workbook_bytes(snapshot: Snapshot) -> bytes:
    """The XLSX workbook: a summary, one sheet per view (frozen header row, totals row), and the
    change since the previous version."""
    buffer = io.BytesIO()
    wb = xlsxwriter.Workbook(buffer, _WORKBOOK_OPTIONS)
    styles = _Styles(wb)
    _summary_sheet(wb.add_worksheet(SUMMARY_SHEET), styles, snapshot)
    names = {line.key: line.label for line in snapshot.figures.view(View.TERRITORY)}
    for view in SHEET_VIEWS:
        columns, rows, totals = _view_table(view, snapshot.figures.view(view), names)
        _write_table(wb.add_worksheet(view.label), styles, columns, rows, totals)
    _changes_sheet(wb.add_worksheet("Évolution"), styles, snapshot)
    wb.set_properties(
        {"title": f"Budget {snapshot.year} — {snapshot.figures.scope_label}", "author": "tiflow"}
    )
    wb.close()
    return buffer.getvalue()


def budget_workbook(snapshot: Snapshot) -> tuple[bytes, str]:
    """The workbook to attach to the coordinator's e-mail: (bytes, ASCII file name).

    Content type: `XLSX_CONTENT_TYPE`. E.g. ``notifications.Attachment(name,
    XLSX_CONTENT_TYPE, data)``.
    """
    return workbook_bytes(snapshot), f"{report_basename(snapshot)}.xlsx"


# --- CSV -------------------------------------------------------------------------------------

CSV_HEADERS = [
    "Vue",
    "Territoire",
    "Clé",
    "Libellé",
    "Axe",
    "État",
    "Engagement ferme",
    "Nombre d'actions",
    *(label for _, label in MEASURES),
    "Remarque",
]


def decimal_comma(amount: Decimal) -> str:
    """``12500,50``: no thousands separator, so French Excel reads a number, not text."""
    return f"{amount:.2f}".replace(".", ",")


def csv_bytes(snapshot: Snapshot) -> bytes:
    """Every line of every view, one per row (filter on « Vue »): `;`, decimal comma, UTF-8
    with BOM — what French Excel opens without an import wizard."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_HEADERS)
    for view in SHEET_VIEWS:
        name = view.label
        for line in snapshot.figures.view(view):
            writer.writerow(
                [
                    name,
                    *map(neutralise_formula, (line.territory, line.key, line.label)),
                    line.axis.label if line.axis else "",
                    line.state.label if line.state else "",
                    _yes_no(line.firm_commitment),
                    line.action_count,
                    *map(decimal_comma, _MEASURE_VALUES(line.figures)),
                    neutralise_formula(line.note),
                ]
            )
    return out.getvalue().encode("utf-8-sig")


# --- files and Prefect artifacts ---------------------------------------------------------------


def write_reports(snapshot: Snapshot, directory: Path) -> ReportFiles:
    """Write the workbook and the CSV under `directory` (atomically: no half-written file)."""
    directory.mkdir(parents=True, exist_ok=True)
    base = report_basename(snapshot)
    files = ReportFiles(xlsx=directory / f"{base}.xlsx", csv=directory / f"{base}.csv")
    # ~200 000 cells at national scale, a few objects each (`models.collector`)
    with collector_paused():
        xlsx, text = workbook_bytes(snapshot), csv_bytes(snapshot)
    _atomic_write(files.xlsx, xlsx)
    _atomic_write(files.csv, text)
    return files


def _atomic_write(path: Path, data: bytes) -> None:
    """Write next to `path`, then rename: readers never see half a file. (Not mkstemp: its
    0600 mode would hide the reports from the coordinator's other accounts; open() honours
    the umask.)"""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp.open("xb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def artifact_key(snapshot: Snapshot, suffix: str = "") -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    key = f"budget-{snapshot.year}-{scope_slug(snapshot.scope)}"
    return f"{key}-{suffix}" if suffix else key


def axis_table(snapshot: Snapshot) -> list[dict[str, str]]:
    """Rows of the Prefect table artifact: the year per axis, then the total."""
    lines = snapshot.figures.view(View.AXIS)
    rows = [_table_row(line.label, line.action_count, line.figures) for line in lines]
    total = snapshot.figures.total(View.AXIS)
    rows.append(_table_row("Total", sum(line.action_count for line in lines), total))
    return rows


def _table_row(label: str, count: int, f: Figures) -> dict[str, str]:
    row = {"Axe": label, "Actions": str(count)}
    row.update(
        {
            name: format_eur(value)
            for name, value in zip(
                (c.header for c in _MONEY_COLUMNS), _money_values(f), strict=True
            )
        }
    )
    return row


def over_granted_left_out(count: int) -> str | None:
    """The line ending a summary's list of over-granted actions when it leaves `count` out."""
    if not count:
        return None
    more = (
        "… et 1 autre action accordée au-delà du prévu"
        if count == 1
        else f"… et {group_thousands(str(count))} autres actions accordées au-delà du prévu"
    )
    return f"{more} : le classeur les liste toutes (feuille « {SUMMARY_SHEET} »)."


def markdown_summary(snapshot: Snapshot, files: ReportFiles | None = None) -> str:
    """The run's Markdown artifact: what the COPIL reads first."""
    c, g = snapshot.figures, snapshot.figures.governance
    total = c.total()
    shown, left_out = c.over_granted_shown()
    more = over_granted_left_out(left_out)
    lines = [
        f"# Budget {c.year} — {c.scope_label}",
        "",
        f"Instantané **version {snapshot.version}**, consolidé le "
        f"{snapshot.created_at.astimezone(PARIS):%d/%m/%Y à %H:%M} (heure de Paris).",
        "",
    ]
    if c.is_empty:
        lines += ["Aucune action n'a de budget ni de financement cette année.", ""]
    lines += [
        "| Montant | Total |",
        "| --- | ---: |",
        *(f"| {label} | {format_eur(getattr(total, measure))} |" for measure, label in MEASURES),
        "",
        "## Budget validé en COPIL",
        "",
        *(
            f"- {_md(label)} : {format_eur(v) if v is not None else '—'}"
            for label, v in c.against_validated()
        ),
        *(f"- **{line.key}** : {_md(line.note)}" for line in shown),
        *([f"- {_md(more)}"] if more else []),
        "",
        "## Gouvernance",
        "",
        f"- Actions de l'année : {g.action_count}, dont {g.firm_count} avec engagement ferme"
        + (f" ({_percent(g.firm_share)})" if g.firm_share is not None else ""),
        "- Délai médian proposition → validation en COPIL : "
        + _days(g.median_days_to_validation, g.validation_sample),
        "- Délai médian validation → financement : "
        + _days(g.median_days_to_funding, g.funding_sample),
        f"- Actions en retard au {c.as_of:%d/%m/%Y} : {g.late_count}",
        "",
        "## Par financeur",
        "",
        "| Financeur | Demandé | Accordé | Taux d'accord |",
        "| --- | ---: | ---: | ---: |",
    ]
    for line in c.view(View.FUNDER):
        f = line.figures
        rate = _ratio(f.granted, f.requested)
        lines.append(
            f"| {_md(line.label)} | {format_eur(f.requested)} | {format_eur(f.granted)} |"
            f" {_percent(rate) if rate is not None else '—'} |"
        )
    lines += ["", "## Évolution", ""]
    lines += _changes_markdown(snapshot)
    if files is not None:
        lines += ["", "## Fichiers", "", f"- Classeur : `{files.xlsx}`", f"- CSV : `{files.csv}`"]
    return "\n".join(lines) + "\n"


def _changes_markdown(snapshot: Snapshot) -> list[str]:
    previous = snapshot.previous
    if previous is None:
        return ["Première version : rien à comparer."]
    delta = snapshot.figures.total() - previous.figures.total()
    moved = [
        (label, getattr(delta, m)) for m, label in CHANGE_MEASURES if getattr(delta, m) != ZERO
    ]
    count = len(changes(snapshot))
    if not count:
        return [f"Aucun changement depuis la version {previous.version}."]
    changed = fr.plural(count, "montant changé", "montants changés")
    head = f"{changed} depuis la version {previous.version}"
    if not moved:
        return [head + " ; totaux inchangés (voir la feuille « Évolution »)."]
    return [head + " :", "", *(f"- {label} : {fr.signed_eur(value)}" for label, value in moved)]


def _percent(ratio: Decimal | None) -> str:
    if ratio is None:
        return "—"
    return f"{ratio * 100:.1f}".replace(".", ",") + "\u00a0%"


def _days(value: Decimal | None, sample: int) -> str:
    if value is None:
        return "non mesurable (aucune action n'a franchi les deux étapes)"
    return (
        f"{value:.1f}".replace(".", ",").removesuffix(",0")
        + f" jours (sur {fr.plural(sample, 'action', 'actions')})"
    )


def _md(text: str) -> str:
    return text.replace("|", "\\|")
