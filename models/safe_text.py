"""Text that crosses tiflow's edges safely: spreadsheet cells that cannot run, names and titles
that cannot carry an address or a line break, messages that always stay on one line.

Pure functions of the text (no openpyxl, no CSV writer): every writer of XLSX or CSV files calls
`neutralise_formula` on each *text* cell, whatever library writes the file; the plan importer
calls `restore_formula` on each text cell it reads.

Neutralisation scheme (OWASP « CSV injection »): a cell whose text begins with `=`, `+`, `-`,
`@`, a tab or a carriage return is written with one leading apostrophe, the marker Excel and
LibreOffice themselves use for « this is text ». So that the marker can never be confused with
real data, a text that already looks neutralised (apostrophes followed by one of those
characters, e.g. `'=x`) gets one more apostrophe too. Reading removes exactly one apostrophe
from a text made of apostrophes followed by one of those characters, so for every text `t`:
``restore_formula(neutralise_formula(t)) == t``. Any other text is left alone both ways
(`'tel quel` stays `'tel quel`). Numbers written as numbers are never touched: a negative
amount stays a number.
"""

from __future__ import annotations

import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MARKER = "'"
_STARTS = frozenset(FORMULA_STARTS)  # one character each: a set lookup of the first one

# Apostrophes then a character a spreadsheet would run: what neutralise_formula produces.
_NEUTRALISED = re.compile(r"'+[=+\-@\t\r]")


def _looks_neutralised(text: str) -> bool:
    return _NEUTRALISED.match(text) is not None


def neutralise_formula(text: str) -> str:
    """The text to write in a spreadsheet cell so that it is shown, never run."""
    first = text[:1]  # called for every text cell of a national workbook: cheap first
    if first in _STARTS or (first == MARKER and _looks_neutralised(text)):
        return MARKER + text
    return text


def restore_formula(text: str) -> str:
    """Undo `neutralise_formula` on a text cell read back from a file tiflow (or a person
    following the same convention) wrote."""
    # Called for every text cell of a national workbook: the first character rules most out.
    return text[1:] if text[:1] == MARKER and _looks_neutralised(text) else text


# -- names and titles -----------------------------------------------------------------------

# Every character that starts a new line somewhere: LF, CR, VT, FF, NEL, line and paragraph
# separators.
_LINE_BREAKS = re.compile(r"[\n\r\v\f\x85\u2028\u2029]")
_ADDRESS_CHARS = re.compile(r"[<>@]")


def line_break_problem(text: str) -> str | None:
    """Why `text` cannot be a title or a name (one line only), or None."""
    if _LINE_BREAKS.search(text):
        return "retour à la ligne interdit ici (le texte doit tenir sur une seule ligne)"
    return None


def person_name_problem(text: str) -> str | None:
    """Why `text` cannot be a person's name, or None: one line, and no `<`, `>` or `@` (a name
    is shown next to an e-mail address, « Nom <adresse> »: it must not look like one)."""
    if problem := line_break_problem(text):
        return problem
    if _ADDRESS_CHARS.search(text):
        return (
            "caractères « < », « > » et « @ » interdits dans un nom"
            " (l'adresse e-mail se saisit à part)"
        )
    return None


def one_line(text: str) -> str:
    """`text` for a one-line message: each line break shown as « ⏎ », never printed raw."""
    return _LINE_BREAKS.sub("⏎", text.replace("\r\n", "\n"))
