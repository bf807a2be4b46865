"""`to_cents` / `from_cents`: what the Money column type binds and reads, for bulk writers."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.money import CENT, Money, from_cents, to_cents


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_cents_round_trip_to_the_same_two_place_decimal_as_the_column_type(cents: int) -> None:
    amount = from_cents(cents)
    assert amount.as_tuple().exponent == -2
    assert amount == Money().process_result_value(cents, None)  # type: ignore[arg-type]
    assert to_cents(amount) == cents == Money().process_bind_param(amount, None)  # type: ignore[arg-type]


def test_sub_cent_amounts_are_refused_not_truncated() -> None:
    with pytest.raises(ValueError, match="deux décimales"):
        to_cents(Decimal("12.345"))
    assert to_cents(Decimal("12.5")) == 1250 and from_cents(0) == Decimal("0.00") == 0 * CENT
