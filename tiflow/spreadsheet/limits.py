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
reads each sheet once, not a scan and then openpyxl's own parse of the same XML. A part of at
most `FAST_PART_BYTES` written the usual way is then read whole by one regex (`_fast_scan`),
with the same values and refusals; the streaming pass reads the others.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from xml.etree.ElementTree import ParseError, XMLParser

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


# A cell's value from its type attribute `t`, style index `s` and text (see files.py).
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
    """One streaming pass over a sheet's XML. No tree is built (expat calls `_SheetTarget` for
    each tag), so memory stays flat whatever the number of rows, empty or not (with `decode`,
    it holds the cells that have a value, nothing for empty ones).

    With `decode`, a part of at most `FAST_PART_BYTES` written the way spreadsheet programs
    write it is read by `_fast_scan` instead (same values, same refusals, about 2.5 times
    less work); any other part takes the streaming pass."""
    head = b""
    if decode is not None:
        head = source.read(FAST_PART_BYTES + 1)
        if len(head) <= FAST_PART_BYTES:
            scan = _fast_scan(head, title, decode)
            if scan is not None:
                return scan
    target = _SheetTarget(title, decode)
    parser = XMLParser(target=target)
    if head:
        parser.feed(head)
    while chunk := source.read(1 << 16):
        parser.feed(chunk)
    parser.close()
    return target.scan


# -- the fast path: a sheet as spreadsheet programs write it ---------------------------------

FAST_PART_BYTES = 64 * 1024 * 1024  # read whole (larger parts stream: memory stays bounded)
_MAIN = b"http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_ROOT = re.compile(
    rb'(?:\xef\xbb\xbf)?(?:<\?xml(?P<decl>[^>]*)\?>)?\s*<worksheet\b[^>]*\sxmlns="' + _MAIN + rb'"'
)
_UTF8 = re.compile(rb"""\sencoding\s*=\s*["']utf-?8["']""", re.IGNORECASE)
# Elements the streaming pass reads; outside <sheetData> they send a part to that pass.
_CELL_TAGS = re.compile(rb"<(?:c|row|v|f|is|t|rPh)[\s/>]")
_VALUE_CHARS = rb'[^"<&\t\n\r]*'  # attribute values expat would return unchanged
# One token of <sheetData>: a row start (or empty row), a row end, or a whole cell without
# formula: empty, a <v> value, or a plain inline string. Attributes r, s, t in that order are
# read by the pattern; any other attribute sends the cell to `_attributes`.
_TOKEN = re.compile(
    rb"\s*(?:<row(?P<row>(?:\s+[\w:.-]+=\"" + _VALUE_CHARS + rb'")*)\s*(?P<empty>/)?>'
    rb"|(?P<end></row\s*>)"
    rb"|<c(?P<attrs>"
    rb'(?:\s+r="(?:(?P<letters>[A-Z]{1,3})\d+|(?P<ref>' + _VALUE_CHARS + rb'))")?'
    rb'(?:\s+s="(?P<s>' + _VALUE_CHARS + rb')")?'
    rb'(?:\s+t="(?P<t>' + _VALUE_CHARS + rb')")?'
    rb"(?P<other>(?:\s+[\w:.-]+=\"" + _VALUE_CHARS + rb'")*))\s*'
    rb"(?:/>|>(?:<v>(?P<v>[^<]*)</v>|<v\s*/>"
    rb'|(?P<inline><is>(?:<t(?:\s+xml:space="preserve")?>(?P<text>[^<]*)</t>'
    rb'|<t(?:\s+xml:space="preserve")?\s*/>)</is>))?</c\s*>))'
)
_ATTRIBUTE = re.compile(rb'([\w:.-]+)="([^"]*)"')
_NAME = re.compile(rb"[A-Za-z_][\w.-]*\Z")
_PREFIX = re.compile(rb"\sxmlns:([A-Za-z_][\w.-]*)=")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ENTITY = re.compile(r"&(?:(lt|gt|amp|quot|apos)|#([0-9]+)|#x([0-9a-fA-F]+));")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}


class _Quiet:
    """A target without callbacks: expat only checks that the part is well-formed XML."""


def _fast_scan(data: bytes, title: str, decode: Decode) -> SheetScan | None:
    """`_SheetTarget`'s result for a whole part, or None when the part is not in the shape
    this reads exactly: then the streaming pass reads it (and raises what it raises).

    The shape: well-formed (expat checks it, at C speed), UTF-8, no DOCTYPE, comment, CDATA
    or carriage return, the main namespace as the only default one, and a <sheetData> made of
    rows and formula-free cells (empty, <v>, or a plain inline string) only."""
    root = _ROOT.match(data)
    if root is None:
        return None
    declaration = root["decl"] or b""
    if b"encoding" in declaration and not _UTF8.search(declaration):
        return None
    if b"<!" in data or b"\r" in data or data.count(b"xmlns=") != 1:
        return None
    start, end = data.find(b"<sheetData>"), data.find(b"</sheetData>")
    if start < 0 or end < start or data.count(b"<sheetData") != 1:
        return None
    head, body, tail = data[:start], data[start + 11 : end], data[end + 12 :]
    if _CELL_TAGS.search(head) or _CELL_TAGS.search(tail) or b"xmlns" in body:
        return None
    try:  # what the tokens below do not check: the rest of the part, the characters
        checker = XMLParser(target=_Quiet())
        checker.feed(head + b"<sheetData/>" + tail)
        checker.close()
        if _NOT_XML.search(body.decode()) or b"]]>" in body:
            return None
    except (ParseError, UnicodeDecodeError):
        return None
    prefixes = {b"xml", *_PREFIX.findall(head)}
    scan = SheetScan()
    values = scan.values
    columns: dict[bytes, int] = {}
    row = column = last_row = last_column = position = depth = 0
    cells: dict[int, Any] | None = None
    for match in _TOKEN.finditer(body):
        if match.start() != position:
            return None
        position = match.end()
        attrs, letters, ref, style, kind, other, value, inline, text = match.group(
            "attrs", "letters", "ref", "s", "t", "other", "v", "inline", "text"
        )
        if attrs is None:
            if match["end"] is not None:
                depth -= 1
                if depth < 0:
                    return None
                continue
            found = _attributes(match["row"], prefixes)
            if found is None:
                return None
            depth += match["empty"] is None
            row_ref = found.get(b"r")
            row = int(row_ref.decode() if row_ref else row + 1)
            column, cells = 0, None
            continue
        if other:
            found = _attributes(attrs, prefixes)
            if found is None:
                return None
            ref, style, kind = found.get(b"r"), found.get(b"s"), found.get(b"t")
            letters = None
        if ref is not None:  # not a plain A1 reference: the streaming pass's own rule
            cell_ref = _CELL_REF.match(ref.decode())
            letters = cell_ref.group(1).encode() if cell_ref else None
        if letters is not None:
            known = columns.get(letters)
            if known is None:
                known = columns[letters] = column_number(letters.decode())
            column = known
        else:
            column += 1
        if value:
            content = value
        elif inline is not None:
            content = text or b""
        else:
            continue  # no value: an empty (formatted) cell costs nothing
        if row - 1 > MAX_ROWS or column > MAX_COLUMNS:
            _scan_cell(scan, True, None, row, column, title)  # raises the limits' refusal
        if row > last_row:
            last_row = row
        if column > last_column:
            last_column = column
        type_ = None if kind is None else kind.decode()
        if not content and type_ != "inlineStr":
            continue
        string = content.decode()
        if "&" in string:
            string = _ENTITY.sub(_entity, string)
        if cells is None:
            cells = values.setdefault(row, {})
        cells[column] = decode(type_, None if style is None else style.decode(), string)
    if position != len(body) or depth:
        return None
    scan.last_row, scan.last_column = last_row, last_column
    return scan


def _attributes(text: bytes, prefixes: set[bytes]) -> dict[bytes, bytes] | None:
    """Name -> value (the token pattern has checked the layout), or None where expat would
    refuse them: a name twice, a name that does not start like one, an unknown prefix."""
    pairs = _ATTRIBUTE.findall(text)
    found = dict(pairs)
    if len(found) != len(pairs):
        return None
    for name in found:
        prefix, colon, local = name.partition(b":")
        if not _NAME.match(local if colon else name) or (colon and prefix not in prefixes):
            return None
    return found


def _entity(match: re.Match[str]) -> str:
    name, decimal, hexadecimal = match.groups()
    if name:
        return _NAMED[name]
    return chr(int(decimal) if decimal else int(hexadecimal, 16))


class _SheetTarget:
    """Follows rows and cells; a cell is looked at when it ends (its value and formula known)."""

    def __init__(self, title: str, decode: Decode | None = None) -> None:
        self.title = title
        self.scan = SheetScan()
        self.decode = decode
        self.row = self.column = 0
        self.has_value = False
        self.formula: str | None = None
        self.inside: str | None = None  # _VALUE, _FORMULA or _TEXT while reading its text
        self.type: str | None = None  # the cell's `t` and `s` attributes
        self.style: str | None = None
        self.text: list[str] = []  # the value's text (an inline string's runs)
        self.in_inline = self.in_phonetic = False

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag == _CELL:
            # References are optional: without one, a cell follows the previous cell of its
            # row (and a row the previous row).
            ref = _CELL_REF.match(attrib.get("r") or "")
            self.column = column_number(ref.group(1)) if ref else self.column + 1
            self.has_value, self.formula = False, None
            self.type, self.style = attrib.get("t"), attrib.get("s")
            self.text = []
        elif tag == _ROW:
            self.row = int(attrib.get("r") or self.row + 1)
            self.column = 0
        elif tag == _VALUE:
            self.inside = _VALUE
        elif tag == _FORMULA:
            self.inside, self.formula = _FORMULA, ""
        elif tag == _INLINE:
            self.has_value = self.in_inline = True
        elif tag == _TEXT and self.in_inline and not self.in_phonetic:
            self.inside = _TEXT
        elif tag == _PHONETIC:
            self.in_phonetic = True

    def data(self, text: str) -> None:
        if self.inside == _VALUE or self.inside == _TEXT:
            self.has_value = True
            self.text.append(text)
        elif self.inside == _FORMULA and self.formula is not None and len(self.formula) < 200:
            self.formula += text

    def end(self, tag: str) -> None:
        if tag == _CELL:
            _scan_cell(self.scan, self.has_value, self.formula, self.row, self.column, self.title)
            if self.decode is not None and self.has_value:
                self._keep_value()
        elif tag in (_VALUE, _FORMULA, _TEXT):
            self.inside = None
        elif tag == _INLINE:
            self.in_inline = False
        elif tag == _PHONETIC:
            self.in_phonetic = False

    def _keep_value(self) -> None:
        text = "".join(self.text)
        kind = "inlineStr" if self.type == "inlineStr" else self.type
        if not text and kind != "inlineStr":
            return  # an empty <v/>: no value, as openpyxl reads it
        assert self.decode is not None
        value = self.decode(kind, self.style, text)
        self.scan.values.setdefault(self.row, {})[self.column] = value

    def close(self) -> SheetScan:
        return self.scan


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
