"""One French amount parser (models.money.parse_number): the Prefect forms, the spreadsheets
and the command line read an amount the same way. No database."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import TypeAdapter, ValidationError

from flows.forms import Amount
from models.money import parse_amount, parse_number
from tiflow.spreadsheet.cells import CellError, parse_money

FORM = TypeAdapter(Amount)
WRITTEN = {
    "12 500,50 €": Decimal("12500.50"),
    "12\u202f500,50\u00a0€": Decimal("12500.50"),
    "12500.5": Decimal("12500.5"),
    "12.500,50": Decimal("12500.50"),
    "1,234.50": Decimal("1234.50"),
    "1 035 000": Decimal("1035000"),
    "12,5": Decimal("12.5"),
}
UNREADABLE = ("12 50", "1.234.50", "12,5,3", "douze", "1e3")


@pytest.mark.parametrize(("text", "value"), WRITTEN.items())
def test_forms_spreadsheets_and_cli_read_an_amount_alike(text: str, value: Decimal) -> None:
    assert parse_number(text, currency=True) == value
    assert FORM.validate_python(text) == value
    assert parse_money(text) == value
    assert parse_amount(text) == value


@pytest.mark.parametrize("text", UNREADABLE)
def test_an_unreadable_amount_is_refused_everywhere_in_french(text: str) -> None:
    with pytest.raises(ValueError, match="nombre illisible"):
        parse_number(text, currency=True)
    with pytest.raises(ValidationError, match="nombre illisible"):
        FORM.validate_python(text)
    with pytest.raises(CellError, match="nombre illisible"):
        parse_money(text)


def test_the_cli_amount_names_its_field_and_refuses_negatives_and_sub_cents() -> None:
    with pytest.raises(ValueError, match="Montant accordé : nombre illisible « 12 50 »"):
        parse_amount("12 50", "Montant accordé")
    with pytest.raises(ValueError, match="ne peut pas être négatif"):
        parse_amount("-5,00")
    with pytest.raises(ValueError, match="pas plus de deux décimales"):
        parse_amount("12,505")
