"""Problems found in a file, each located by sheet, row and column, in French."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from models.safe_text import one_line
from tiflow.spreadsheet.layout import SHEETS, Sheet


class FileKind(StrEnum):
    XLSX = "xlsx"
    CSV = "csv"


@dataclass(frozen=True, order=True)
class Problem:
    sort_key: tuple[int, int, int]
    text: str = field(compare=False)


def _sheet_index(sheet: Sheet | None) -> int:
    return -1 if sheet is None else SHEETS.index(sheet)


def _column_index(sheet: Sheet | None, column: str | None) -> int:
    if sheet is None or column is None:
        return -1
    for index, col in enumerate(sheet.columns):
        if col.key == column:
            return index
    return len(sheet.columns)


def where(kind: FileKind, sheet: Sheet | None, row: int | None, column: str | None) -> str:
    """« Feuille « Actions », ligne 7, colonne « Début » » (XLSX) or
    « Ligne 7 (feuille Actions), colonne « Début » » (CSV)."""
    header = None
    if sheet is not None and column is not None:
        header = next((c.header for c in sheet.columns if c.key == column), column)
    parts: list[str] = []
    if kind is FileKind.XLSX:
        if sheet is not None:
            parts.append(f"Feuille « {sheet.title} »")
        if row is not None:
            parts.append(f"ligne {row}")
    else:
        if row is not None:
            parts.append(f"Ligne {row}" + (f" (feuille {sheet.title})" if sheet else ""))
        elif sheet is not None:
            parts.append(f"Lignes de la feuille {sheet.title}")
    if header is not None:
        parts.append(f"colonne « {header} »")
    text = ", ".join(parts) or "Fichier"
    return text[0].upper() + text[1:]


class Problems:
    """Collects every problem of a file; sorted in reading order when listed."""

    def __init__(self, kind: FileKind) -> None:
        self.kind = kind
        self._items: list[Problem] = []

    def add(
        self,
        sheet: Sheet | None,
        row: int | None,
        column: str | None,
        message: str,
    ) -> None:
        # One line per problem, whatever the file holds (a header or a value with a line break).
        text = one_line(f"{where(self.kind, sheet, row, column)} : {message}")
        if self.kind is FileKind.XLSX:
            key = (_sheet_index(sheet), row or 0, _column_index(sheet, column))
        else:
            key = (row or 0, _sheet_index(sheet), _column_index(sheet, column))
        self._items.append(Problem(key, text))

    def __bool__(self) -> bool:
        return bool(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def texts(self) -> list[str]:
        seen: set[str] = set()
        ordered: list[str] = []
        for problem in sorted(self._items):
            if problem.text not in seen:
                seen.add(problem.text)
                ordered.append(problem.text)
        return ordered
