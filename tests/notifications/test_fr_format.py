"""French formatting: dates with 1er, Paris time across DST, calendar-day deadlines, euros."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifications.fr import (
    deadline_phrase,
    format_date,
    format_datetime,
    format_eur,
    relative_days,
)

NNBSP, NBSP = "\u202f", "\u00a0"


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2025, 3, 10), "lundi 10 mars 2025"),
        (date(2025, 3, 1), "samedi 1er mars 2025"),
        (date(2024, 1, 25), "jeudi 25 janvier 2024"),
        (date(2025, 8, 15), "vendredi 15 août 2025"),
        (date(2026, 12, 1), "mardi 1er décembre 2026"),
    ],
)
def test_format_date_is_french_with_1er_on_the_first(day: date, expected: str) -> None:
    assert format_date(day) == expected


def test_format_date_refuses_a_datetime_whose_day_depends_on_the_zone() -> None:
    with pytest.raises(TypeError):
        format_date(datetime(2025, 3, 10, 23, 30, tzinfo=UTC))


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2025, 3, 10, 13, 30, tzinfo=UTC), "lundi 10 mars 2025 à 14 h 30"),
        (datetime(2025, 7, 1, 7, 5, tzinfo=UTC), "mardi 1er juillet 2025 à 9 h 05"),
        (datetime(2025, 1, 24, 23, 0, tzinfo=UTC), "samedi 25 janvier 2025 à 0 h"),
        # Spring forward: 01:30 UTC is 03:30 CEST (02:xx does not exist that night).
        (datetime(2025, 3, 30, 1, 30, tzinfo=UTC), "dimanche 30 mars 2025 à 3 h 30"),
        # Fall back: 02:30 happens twice, once in CEST and once in CET.
        (datetime(2025, 10, 26, 0, 30, tzinfo=UTC), "dimanche 26 octobre 2025 à 2 h 30"),
        (datetime(2025, 10, 26, 1, 30, tzinfo=UTC), "dimanche 26 octobre 2025 à 2 h 30"),
        (
            datetime(2025, 3, 10, 9, 0, tzinfo=timezone(timedelta(hours=-5))),
            "lundi 10 mars 2025 à 15 h",
        ),
    ],
)
def test_format_datetime_converts_to_paris(moment: datetime, expected: str) -> None:
    assert format_datetime(moment) == expected


def test_format_datetime_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_datetime(datetime(2025, 3, 10, 14, 30))


@pytest.mark.parametrize(
    ("due", "relative", "deadline"),
    [
        (date(2025, 3, 10), "aujourd'hui", "échéance aujourd'hui"),
        (date(2025, 3, 11), "demain", "demain"),
        (date(2025, 3, 17), "dans 7 jours", "dans 7 jours"),
        (date(2025, 3, 9), "hier", "en retard de 1 jour"),
        (date(2025, 3, 7), "il y a 3 jours", "en retard de 3 jours"),
    ],
)
def test_phrases_count_calendar_days(due: date, relative: str, deadline: str) -> None:
    today = date(2025, 3, 10)
    assert relative_days(due, today) == relative
    assert deadline_phrase(due, today) == deadline


def test_tomorrow_is_demain_across_the_dst_night() -> None:
    # The night of 29-30 March 2025 lasts 23 hours: pendulum says "dans 23 heures".
    assert deadline_phrase(date(2025, 3, 30), date(2025, 3, 29)) == "demain"
    assert deadline_phrase(date(2025, 4, 5), date(2025, 3, 29)) == "dans 7 jours"


def test_phrases_refuse_datetimes() -> None:
    with pytest.raises(TypeError):
        deadline_phrase(datetime(2025, 3, 11, 8, tzinfo=UTC), date(2025, 3, 10))


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (Decimal("12500"), f"12{NNBSP}500,00{NBSP}€"),
        (Decimal("-1200.5"), f"-1{NNBSP}200,50{NBSP}€"),
        (Decimal("0"), f"0,00{NBSP}€"),
        (Decimal("-0.001"), f"0,00{NBSP}€"),
        (Decimal("999.995"), f"1{NNBSP}000,00{NBSP}€"),
        (Decimal("0.125"), f"0,13{NBSP}€"),
        (Decimal("1234567.89"), f"1{NNBSP}234{NNBSP}567,89{NBSP}€"),
        (Decimal("0.1") + Decimal("0.2"), f"0,30{NBSP}€"),
        (250000, f"250{NNBSP}000,00{NBSP}€"),
    ],
)
def test_format_eur_french_typography(amount: Decimal, expected: str) -> None:
    assert format_eur(amount) == expected


@pytest.mark.parametrize("bad", [12.5, 0.1 + 0.2, True, "12,50", None])
def test_format_eur_refuses_floats_and_non_numbers(bad: object) -> None:
    with pytest.raises(TypeError):
        format_eur(bad)  # type: ignore[arg-type]


def test_format_eur_refuses_nan() -> None:
    with pytest.raises(ValueError):
        format_eur(Decimal("NaN"))


@given(st.decimals(min_value=-(10**12), max_value=10**12, places=2, allow_nan=False))
def test_format_eur_round_trips_exact_cents(amount: Decimal) -> None:
    text = format_eur(amount)
    assert text.endswith(f"{NBSP}€")
    parsed = Decimal(text.removesuffix(f"{NBSP}€").replace(NNBSP, "").replace(",", "."))
    assert parsed == amount


def test_plurals_are_real_french_words_never_parenthesised() -> None:
    from notifications.fr import plural

    assert plural(0, "action", "actions") == "0 action"
    assert plural(1, "montant changé", "montants changés") == "1 montant changé"
    assert plural(3, "autre retard", "autres retards") == "3 autres retards"
    assert "(s)" not in plural(2, "action", "actions")
