"""Money: `Decimal` with exactly two places, stored as integer cents on every database.

SQLite has no decimal type (its NUMERIC is a float), so a cents integer is the one storage
that is exact on both SQLite and PostgreSQL, and that SQL can still SUM.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


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


def format_eur(amount: Decimal) -> str:
    """`12 500,00 €`: narrow no-break space between thousands, no-break space before €."""
    if isinstance(amount, float):
        raise TypeError("un montant ne doit jamais être un float")
    sign = "-" if amount < 0 else ""
    units, cents = f"{abs(amount).quantize(CENT)}".split(".")
    groups = f"{int(units):,}".replace(",", "\u202f")
    return f"{sign}{groups},{cents}\u00a0€"


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
        return (Decimal(int(value)) / 100).quantize(CENT)
