"""Reading and writing single cell values, the French way.

Every parser takes what a spreadsheet cell can hold (text, int, float, bool, date, datetime;
CSV cells are always text) and returns a typed value or raises `CellError` with a French
message. Money is `Decimal` from end to end: openpyxl hands numeric cells over as floats, so a
float is converted through its shortest representation (`repr`), and more than two decimals is
an error rather than a silent rounding.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from functools import lru_cache
from typing import Any, TypeVar

from models.lifecycle import STATE_LABELS, State
from models.money import CENT, parse_number
from models.preferences import (
    EMAIL,
    Category,
    Frequency,
    PreferenceError,
    category_from,
    frequency_of,
    weekday_of,
)
from models.vocabulary import Axis, BudgetKind, OrganisationKind, Priority, Role
from notifications.config import PERSON_CHANNEL_PREFIX

MAX_AMOUNT = Decimal("1e13")  # far below what integer cents can hold


class CellError(ValueError):
    """A cell that cannot be read; the message is French and quotes the value."""


CellValue = str | int | float | bool | date | datetime | Decimal | None

# Every space a spreadsheet or a French keyboard produces: normal, no-break, narrow no-break,
# thin, figure space.
_SPACES = re.compile(r"[\s\u00a0\u202f\u2009\u2007]+")


def is_blank(value: object) -> bool:
    # str.isspace() knows the same spaces as `_SPACES` (the regex's \s is Unicode whitespace,
    # which includes the no-break and thin spaces), without building a new string per cell.
    return value is None or (isinstance(value, str) and (not value or value.isspace()))


class _WithoutCombining(dict[int, int | None]):
    """`str.translate` table dropping combining marks, filled as characters are met (so the
    per-character test runs once per character, not once per character of every label)."""

    def __missing__(self, code: int) -> int | None:
        kept = None if unicodedata.combining(chr(code)) else code
        self[code] = kept
        return kept


_STRIP_COMBINING = _WithoutCombining()


# An import folds each title and name up to three times (the checks, the file's side and the
# database's side of the comparison): the later calls are one lookup. Bounded, for the web
# process that lives on between imports.
@lru_cache(maxsize=1 << 16)
def fold(text: str) -> str:
    """Comparison key for labels: no accents, no case, `_`/`-`/spaces alike, one apostrophe."""
    # Plain ASCII (most keys) has nothing to decompose, and str.replace beats re.sub.
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text.replace("’", "'"))
        text = decomposed.translate(_STRIP_COMBINING)
    plain = text.casefold().replace("_", " ").replace("-", " ")
    return " ".join(plain.split())


def quote(value: object) -> str:
    """A value as it is shown back in an error message: « 31/02/2025 »."""
    if isinstance(value, datetime):
        text = value.strftime("%d/%m/%Y %H:%M")
    elif isinstance(value, date):
        text = value.strftime("%d/%m/%Y")
    elif isinstance(value, float):
        text = repr(value)
    else:
        text = str(value)
    text = " ".join(text.split())
    return f"« {text[:60]}{'…' if len(text) > 60 else ''} »"


# -- text ---------------------------------------------------------------------------------


def parse_text(value: CellValue, max_length: int | None = None) -> str:
    """Trimmed text; numbers and dates typed in a text column are taken as they read."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "oui" if value else "non"
    elif isinstance(value, datetime):
        text = value.strftime("%d/%m/%Y") if value.time() == datetime.min.time() else str(value)
    elif isinstance(value, date):
        text = value.strftime("%d/%m/%Y")
    elif isinstance(value, float):
        text = str(int(value)) if value.is_integer() else repr(value)
    else:
        text = str(value)
    text = text.replace("\r\n", "\n").strip()
    if max_length is not None and len(text) > max_length:
        raise CellError(f"texte trop long ({len(text)} caractères, {max_length} au plus)")
    return text


_EMAIL = re.compile(r"^[^@\s<>,;:\"()\[\]]+@[^@\s<>,;:\"()\[\]]+\.[^@\s<>,;:\"()\[\]]+$")


def parse_email(value: CellValue) -> str:
    text = parse_text(value).lower()
    if not _EMAIL.match(text) or len(text) > 254:
        raise CellError(f"adresse e-mail invalide {quote(value)}")
    return text


# -- numbers ------------------------------------------------------------------------------


def _to_decimal(value: CellValue, *, currency: bool) -> Decimal:
    if isinstance(value, (bool, date, datetime)):
        raise CellError(f"nombre attendu, pas {quote(value)}")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        # The shortest text that reads back as this float: what the cell showed the user.
        number = Decimal(repr(value))
    else:
        try:
            number = parse_number(str(value), currency=currency)
        except (ValueError, InvalidOperation):
            example = "12 500,50 € ou 12500.5" if currency else "12,5 ou 12.5"
            raise CellError(f"nombre illisible {quote(value)} (exemples : {example})") from None
    if not number.is_finite():
        raise CellError(f"nombre illisible {quote(value)}")
    return number


def parse_money(value: CellValue) -> Decimal:
    """`12 500,50 €`, `12500.5`, `12 500,50` (any space kind), a numeric cell → Decimal(2)."""
    amount = _to_decimal(value, currency=True)
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise CellError(
            f"montant {quote(value)} : pas plus de deux décimales"
            " (les milliers se séparent par des espaces : 12 500,50)"
        )
    if amount < 0:
        raise CellError(f"montant négatif {quote(value)}")
    if amount >= MAX_AMOUNT:
        raise CellError(f"montant trop grand {quote(value)}")
    return amount.quantize(CENT)


def parse_decimal(value: CellValue) -> Decimal:
    """An indicator value: any number of decimals, decimal comma or point."""
    number = _to_decimal(value, currency=False)
    if abs(number) >= Decimal("1e15"):
        raise CellError(f"nombre trop grand {quote(value)}")
    return number.quantize(Decimal(1)) if number == number.to_integral_value() else number


def parse_year(value: CellValue) -> int:
    if isinstance(value, bool):
        raise CellError(f"année invalide {quote(value)}")
    number: Decimal | None
    try:
        number = _to_decimal(value, currency=False)
    except CellError:
        number = None
    if number is None or number != number.to_integral_value() or not 1990 <= number <= 2100:
        raise CellError(f"année invalide {quote(value)} (attendu par exemple 2025)")
    return int(number)


# -- dates --------------------------------------------------------------------------------

_FRENCH_DATE = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ]00:00(?::00(?:\.0+)?)?)?$")


def parse_date(value: CellValue) -> date:
    """`15/03/2025`, `15-03-2025`, `15.03.2025`, `2025-03-15`, or a date cell."""
    if isinstance(value, datetime):
        if value.time() != datetime.min.time():
            raise CellError(f"date attendue, pas une date et heure {quote(value)}")
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise CellError(
            f"date illisible {quote(value)} (format de cellule « Date », ou texte JJ/MM/AAAA)"
        )
    text = value.strip()
    if match := _FRENCH_DATE.match(text):
        day, month, year = (int(part) for part in match.groups())
    elif match := _ISO_DATE.match(text):
        year, month, day = (int(part) for part in match.groups())
    else:
        raise CellError(f"date illisible {quote(value)} (attendu JJ/MM/AAAA ou AAAA-MM-JJ)")
    try:
        return date(year, month, day)
    except ValueError:
        raise CellError(f"date inexistante {quote(value)}") from None


# -- yes/no and vocabularies --------------------------------------------------------------

_TRUE = {"oui", "o", "x", "vrai", "1", "yes", "y", "true"}
_FALSE = {"non", "n", "faux", "0", "no", "false", "-"}


def parse_bool(value: CellValue) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    key = fold(str(value)) if value is not None else ""
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise CellError(f"valeur {quote(value)} : répondez « oui » ou « non »")


E = TypeVar("E", bound=Enum)


def _vocabulary(enum: type[E], labels: dict[E, str], extra: dict[str, E]) -> dict[str, E]:
    table: dict[str, E] = {}
    for member in enum:
        table[fold(str(member.value))] = member
        table[fold(labels[member])] = member
    table.update({fold(k): v for k, v in extra.items()})
    return table


AXES = _vocabulary(
    Axis, {a: a.label for a in Axis}, {"transition ecologique": Axis.TRANSITION_ECOLOGIQUE}
)
STATES = _vocabulary(
    State,
    STATE_LABELS,
    {"révision": State.REVISION_REQUESTED, "en révision": State.REVISION_REQUESTED},
)
PRIORITIES = _vocabulary(
    Priority,
    {p: p.label for p in Priority},
    {
        "1": Priority.HIGH,
        "2": Priority.MEDIUM,
        "3": Priority.LOW,
        "high": Priority.HIGH,
        "medium": Priority.MEDIUM,
        "low": Priority.LOW,
        "normale": Priority.MEDIUM,
    },
)
BUDGET_KINDS = _vocabulary(
    BudgetKind,
    {k: k.label for k in BudgetKind},
    {
        "inv": BudgetKind.INVESTISSEMENT,
        "fonct": BudgetKind.FONCTIONNEMENT,
        "i": BudgetKind.INVESTISSEMENT,
        "f": BudgetKind.FONCTIONNEMENT,
    },
)
ORGANISATION_KINDS = _vocabulary(
    OrganisationKind,
    {k: k.label for k in OrganisationKind},
    {
        "communaute de communes": OrganisationKind.COMMUNAUTE_DE_COMMUNES,
        "cc": OrganisationKind.COMMUNAUTE_DE_COMMUNES,
        "club": OrganisationKind.CLUB_ENTREPRISES,
        "autre": OrganisationKind.AUTRE,
        "agence": OrganisationKind.AGENCE_NATIONALE,
    },
)
ROLES = _vocabulary(
    Role,
    {r: r.label for r in Role},
    {
        "chargé(e) de mission": Role.COORDINATOR,  # the label of files exported before 2026-12
        "chargée de mission": Role.COORDINATOR,
        "coordinateur": Role.COORDINATOR,
        "coordinatrice": Role.COORDINATOR,
        "pilote": Role.PILOT,
        "copil": Role.COPIL_MEMBER,
        "membre copil": Role.COPIL_MEMBER,
    },
)


def _lookup(table: dict[str, E], value: CellValue, what: str, choices: list[str]) -> E:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    found = table.get(fold(str(value)))
    if found is None:
        raise CellError(
            f"{what} {quote(value)} introuvable ; valeurs possibles : {', '.join(choices)}"
        )
    return found


def parse_axis(value: CellValue) -> Axis:
    return _lookup(AXES, value, "axe", [a.label for a in Axis])


def parse_state(value: CellValue) -> State:
    return _lookup(STATES, value, "état", [s.label for s in State])


def parse_priority(value: CellValue) -> Priority:
    return _lookup(PRIORITIES, value, "priorité", [p.label for p in Priority])


def parse_budget_kind(value: CellValue) -> BudgetKind:
    return _lookup(BUDGET_KINDS, value, "nature", [k.label for k in BudgetKind])


def parse_organisation_kind(value: CellValue) -> OrganisationKind:
    return _lookup(ORGANISATION_KINDS, value, "type", [k.label for k in OrganisationKind])


def _preference_word(parse: Any, value: CellValue) -> Any:
    try:
        return parse(parse_text(value))
    except PreferenceError as error:
        raise CellError(str(error).rstrip(".")) from None


def parse_category(value: CellValue) -> Category:
    """« rappels d'échéance », « relances », « copil »… (models.preferences words)."""
    return _preference_word(category_from, value)


def parse_frequency(value: CellValue) -> Frequency:
    text = parse_text(value).strip().lower()
    for frequency in Frequency:
        if text == frequency.label:  # the labels the export writes
            return frequency
    return _preference_word(frequency_of, value)


def parse_weekday(value: CellValue) -> int:
    """« vendredi » → 4."""
    return _preference_word(weekday_of, value)


_HOUR = re.compile(r"^(\d{1,2})\s*(?:h|:00|h00)?$")
_CHANNEL = re.compile(re.escape(PERSON_CHANNEL_PREFIX) + r"[a-z0-9_-]+\Z")
_EMAIL_WORDS = frozenset(fold(w) for w in ("e-mail", "email", "courriel"))


def parse_hour(value: CellValue) -> int:
    """9, « 9 », « 9 h », « 09:00 » → 9; from 0 to 23 (Paris time)."""
    if isinstance(value, bool):
        raise CellError(f"heure invalide {quote(value)}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    match = _HOUR.match(str(value).strip().lower())
    if match is None or not 0 <= int(match.group(1)) <= 23:
        raise CellError(f"heure invalide {quote(value)} (attendu de 0 à 23, par exemple 9)")
    return int(match.group(1))


def parse_channel(value: CellValue) -> str:
    """« e-mail » → the e-mail channel; « canal-… » → that tag (whether the operator configured
    it is checked with the rest of the sheet)."""
    text = str(value).strip().lower()
    if fold(text) in _EMAIL_WORDS:
        return EMAIL
    if not _CHANNEL.match(text):
        raise CellError(f"canal invalide {quote(value)} (attendu « e-mail » ou « canal-… »)")
    return text


def split_list(value: CellValue) -> list[str]:
    """Items of a list cell, separated by `;`, `,` or line breaks (see `parse_refs`)."""
    text = parse_text(value)
    return [item.strip() for item in re.split(r"[;,\n]", text) if item.strip()]


def parse_roles(value: CellValue) -> frozenset[Role]:
    roles: set[Role] = set()
    for item in split_list(value):
        roles.add(_lookup(ROLES, item, "rôle", [r.label for r in Role]))
    return frozenset(roles)


def split_refs(value: CellValue, known: Any) -> list[str]:
    """Names in a list cell. `;` and line breaks always separate; a comma separates only when
    the text around it is not itself a known name (organisation names may contain commas)."""
    items: list[str] = []
    for chunk in re.split(r"[;\n]", parse_text(value)):
        chunk = chunk.strip()
        if not chunk:
            continue
        if known(chunk) or "," not in chunk:
            items.append(chunk)
        else:
            items.extend(part.strip() for part in chunk.split(",") if part.strip())
    return items


# -- writing ------------------------------------------------------------------------------


def french_number(number: Decimal, places: int | None = None) -> str:
    """`12500,50` (no thousands separator: spreadsheets read it back as a number)."""
    text = f"{number:.{places}f}" if places is not None else format(number, "f")
    return text.replace(".", ",")


def french_date(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def yes_no(flag: bool) -> str:
    return "oui" if flag else "non"
