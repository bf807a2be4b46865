"""Cells as coordinators type them: French amounts, dates and labels (no database)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.lifecycle import State
from models.vocabulary import Axis, Priority, Role
from tiflow.spreadsheet.cells import (
    CellError,
    french_number,
    parse_axis,
    parse_bool,
    parse_date,
    parse_decimal,
    parse_money,
    parse_priority,
    parse_roles,
    parse_state,
    parse_year,
)


@pytest.mark.parametrize(
    "typed",
    [
        "12 500,50 €",
        "12\u00a0500,50\u00a0€",
        "12\u202f500,50",
        "12500.5",
        "12500,50",
        "12 500,50",
        "€ 12 500,50",
        "12.500,50",
        "12,500.50",
        "12500,5 EUR",
        12500.5,
        Decimal("12500.50"),
    ],
)
def test_amount_in_every_french_spelling_reads_as_the_same_decimal(typed: object) -> None:
    amount = parse_money(typed)  # type: ignore[arg-type]
    assert amount == Decimal("12500.50")
    assert isinstance(amount, Decimal) and amount.as_tuple().exponent == -2


def test_whole_amounts_from_integer_cells_get_two_places() -> None:
    assert str(parse_money(30000)) == "30000.00"


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("12,345", "pas plus de deux décimales"),
        ("12.500", "pas plus de deux décimales"),  # thousands with a dot: ambiguous, refused
        (0.1 + 0.2, "pas plus de deux décimales"),  # a float artefact from a formula
        ("-50,00", "montant négatif"),
        ("12 50", "nombre illisible"),
        ("douze euros", "nombre illisible"),
        ("10 000 000 000 000,00", "montant trop grand"),
        ("1e3", "nombre illisible"),
        (True, "nombre attendu"),
        (date(2024, 1, 1), "nombre attendu"),
    ],
)
def test_unreadable_or_inexact_amounts_are_refused_in_french(typed: object, message: str) -> None:
    with pytest.raises(CellError, match=message):
        parse_money(typed)  # type: ignore[arg-type]


@given(st.decimals(min_value=0, max_value=Decimal("9999999999999.99"), places=2))
def test_any_amount_survives_a_numeric_cell_and_french_text(amount: Decimal) -> None:
    # openpyxl gives numeric cells back as floats; CSV cells come back as French text.
    assert parse_money(float(amount)) == amount
    assert parse_money(french_number(amount, 2)) == amount


@pytest.mark.parametrize(
    "typed",
    ["15/03/2025", "15-03-2025", "15.03.2025", "2025-03-15", "2025-03-15 00:00:00",
     datetime(2025, 3, 15), date(2025, 3, 15)],
)  # fmt: skip
def test_french_and_iso_dates_are_read(typed: object) -> None:
    assert parse_date(typed) == date(2025, 3, 15)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("31/02/2025", "date inexistante"),
        ("2025/03/15", "date illisible"),
        ("15/03/25", "date illisible"),
        (45731, "date illisible"),
        (datetime(2025, 3, 15, 14, 30), "pas une date et heure"),
    ],
)
def test_impossible_dates_are_refused(typed: object, message: str) -> None:
    with pytest.raises(CellError, match=message):
        parse_date(typed)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("typed", "axis"),
    [
        ("Transition écologique", Axis.TRANSITION_ECOLOGIQUE),
        ("transition ecologique", Axis.TRANSITION_ECOLOGIQUE),
        ("transition_ecologique", Axis.TRANSITION_ECOLOGIQUE),
        ("COMPÉTENCES", Axis.COMPETENCES),
        (" Foncier ", Axis.FONCIER),
    ],
)
def test_axis_accepts_french_labels_and_codes(typed: str, axis: Axis) -> None:
    assert parse_axis(typed) is axis


def test_unknown_axis_lists_the_four_axes() -> None:
    with pytest.raises(CellError) as error:
        parse_axis("Mobilité")
    assert "axe « Mobilité » introuvable" in str(error.value)
    assert "Compétences, Innovation, Foncier, Transition écologique" in str(error.value)


def test_states_priorities_roles_and_yes_no_read_french() -> None:
    assert parse_state("Révision demandée") is State.REVISION_REQUESTED
    assert parse_state("in_progress") is State.IN_PROGRESS
    assert parse_priority("Haute") is Priority.HIGH
    assert parse_priority(3) is Priority.LOW
    assert parse_roles("pilote d'action ; membre du COPIL") == {Role.PILOT, Role.COPIL_MEMBER}
    # The label is « chargé de mission » (no « (e) »); files exported before still read.
    assert Role.COORDINATOR.label == "chargé de mission"
    for old_or_new in ("chargé de mission", "chargée de mission", "chargé(e) de mission"):
        assert parse_roles(old_or_new) == {Role.COORDINATOR}
    assert parse_bool("Oui") is True and parse_bool("non") is False and parse_bool(1) is True
    with pytest.raises(CellError, match="répondez « oui » ou « non »"):
        parse_bool("peut-être")
    with pytest.raises(CellError, match="état « en attente » introuvable"):
        parse_state("en attente")


def test_indicator_values_keep_their_decimals_and_years_are_whole() -> None:
    assert parse_decimal("12,125") == Decimal("12.125")
    assert str(parse_decimal(80.0)) == "80"
    assert parse_year(2024.0) == 2024
    with pytest.raises(CellError, match="année invalide"):
        parse_year("2024,5")
