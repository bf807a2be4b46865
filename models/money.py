"""Money: `Decimal` with exactly two places, stored as integer cents on every database.

SQLite has no decimal type (its NUMERIC is a float), so a cents integer is the one storage
that is exact on both SQLite and PostgreSQL, and that SQL can still SUM.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

CENT = Decimal("0.01")
THOUSANDS_SEP = "\u202f"  # narrow no-break space: "12 500,00 €" never wraps
CURRENCY_SEP = "\u00a0"
ZERO = Decimal("0.00")

# -- French writing of numbers: the one parser the forms, the CLI and the spreadsheets use ----

_SPACES = re.compile(r"[\s\u00a0\u202f\u2009\u2007]+")
_PLAIN = re.compile(r"^[+-]?\d+([.,]\d+)?$")
_DOT_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(\.\d{3})+(,\d+)?$")  # 12.500,50
_COMMA_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")  # 12,500.50
_SPACE_GROUPS = re.compile(r"^[+-]?\d{1,3}( \d{3})+$")
_CURRENCY = re.compile(r"(^(€|eur)\s*)|(\s*(€|eur(os?)?)$)", re.IGNORECASE)


def parse_number(text: str, *, currency: bool = False) -> Decimal:
    """A number as a person types it, exact: ``12 500,50``, ``12500.5``, ``12.500,50``,
    ``12,500.50`` (any kind of space), with ``€`` when `currency`. Spaces only separate
    thousands (``12 50`` is refused, not read as 1 250). Raises ValueError (French)."""
    example = "12 500,50 € ou 12500.5" if currency else "12,5 ou 12.5"
    problem = ValueError(f"nombre illisible « {text} » (exemples : {example})")
    cleaned = _SPACES.sub(" ", text).strip()
    if currency:
        cleaned = _CURRENCY.sub("", cleaned).strip()
    if " " in cleaned:
        head = re.split(r"[.,](?=\d+$)", cleaned, maxsplit=1)[0]
        if not _SPACE_GROUPS.match(head):
            raise problem
        cleaned = cleaned.replace(" ", "")
    if _PLAIN.match(cleaned):
        normal = cleaned.replace(",", ".")
    elif _DOT_THOUSANDS.match(cleaned):
        normal = cleaned.replace(".", "").replace(",", ".")
    elif _COMMA_THOUSANDS.match(cleaned):
        normal = cleaned.replace(",", "")
    else:
        raise problem
    try:
        number = Decimal(normal)
    except InvalidOperation:
        raise problem from None
    if not number.is_finite():
        raise problem
    return number


def parse_amount(text: str, field: str = "Montant") -> Decimal:
    """A French-written amount of money: two decimals at most, never negative."""
    try:
        amount = parse_number(text, currency=True)
    except ValueError as error:
        raise ValueError(f"{field} : {error}") from None
    if amount < 0:
        raise ValueError(f"{field} : le montant ne peut pas être négatif (« {text} »)")
    return to_money(amount, field)


def to_money(value: Any, field: str = "montant") -> Decimal:
    """Parse an amount into a 2-place Decimal; refuse floats and sub-cent precision."""
    if isinstance(value, float):
        raise TypeError(f"{field} : un montant ne doit jamais être un float ({value!r})")
    if isinstance(value, bool):
        raise TypeError(f"{field} : montant invalide ({value!r})")
    try:
        amount = Decimal(value) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError, TypeError):
        raise ValueError(f"{field} : montant invalide ({value!r})") from None
    if not amount.is_finite():
        raise ValueError(f"{field} : montant invalide ({value!r})")
    quantized = amount.quantize(CENT)
    if quantized != amount:
        raise ValueError(f"{field} : pas plus de deux décimales ({value!r})")
    return quantized


def to_cents(amount: Decimal) -> int:
    """The integer cents of a 2-place amount, as the database stores it (what `Money` binds),
    for bulk writers that skip the column type; sub-cent precision is refused."""
    cents = amount.scaleb(2)
    whole = int(cents)
    if whole != cents:
        raise ValueError(f"montant : pas plus de deux décimales ({amount!r})")
    return whole


def from_cents(cents: int) -> Decimal:
    """The 2-place Decimal of integer cents (``1250`` → ``Decimal("12.50")``): what `Money`
    reads back."""
    return Decimal(cents).scaleb(-2)


def format_eur(amount: Decimal | int) -> str:
    """``12 500,00 €`` (U+202F between thousands, U+00A0 before €), ``-1 200,50 €``.

    Rounded to the cent, half up (commercial rounding). Floats are refused: money is Decimal.
    """
    if isinstance(amount, bool) or not isinstance(amount, (Decimal, int)):
        raise TypeError(f"amount must be Decimal (or int), not {type(amount).__name__}")
    value = Decimal(amount)
    if not value.is_finite():
        raise ValueError(f"amount is not a finite number: {value}")
    cents = value.quantize(CENT, rounding=ROUND_HALF_UP)
    sign = "-" if cents < 0 else ""  # also turns -0.00 into 0,00
    units, _, decimals = f"{abs(cents):.2f}".partition(".")
    return sign + group_thousands(units) + "," + decimals + CURRENCY_SEP + "€"


def group_thousands(units: str) -> str:
    """``1250000`` → ``1 250 000`` (U+202F between groups of three digits)."""
    groups: list[str] = []
    while len(units) > 3:
        units, group = units[:-3], units[-3:]
        groups.insert(0, group)
    groups.insert(0, units)
    return THOUSANDS_SEP.join(groups)


class Money(TypeDecorator[Decimal]):
    """Column type: Decimal in Python, integer cents in the database."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return int(to_money(value) * 100)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return from_cents(int(value))
