"""The preference rules as pure functions: when a message goes out given a choice and the
clock, what cannot be switched off and why, and the French words people type."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from models.preferences import (
    Category,
    Choice,
    Frequency,
    PreferenceError,
    category_from,
    category_of,
    check_choice,
    earliest_send,
    frequency_of,
    obligation_reason,
    send_at,
    weekday_of,
)

PARIS = ZoneInfo("Europe/Paris")


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS).astimezone(UTC)


def test_immediately_goes_when_due_and_never_does_not_go() -> None:
    due = paris(2025, 3, 4, 8, 0)
    assert send_at(Choice(Frequency.IMMEDIATELY), due) == due
    assert send_at(Choice(Frequency.NEVER), due) is None


def test_daily_goes_at_the_next_chosen_hour_in_paris() -> None:
    daily_10 = Choice(Frequency.DAILY, hour=10)
    assert send_at(daily_10, paris(2025, 3, 4, 8, 0)) == paris(2025, 3, 4, 10, 0)
    assert send_at(daily_10, paris(2025, 3, 4, 10, 0)) == paris(2025, 3, 4, 10, 0)
    assert send_at(daily_10, paris(2025, 3, 4, 10, 1)) == paris(2025, 3, 5, 10, 0)


def test_weekly_goes_on_the_chosen_day_at_the_chosen_hour() -> None:
    friday_8 = Choice(Frequency.WEEKLY, weekday=4, hour=8)
    assert send_at(friday_8, paris(2025, 3, 3, 8, 0)) == paris(2025, 3, 7, 8, 0)  # Monday
    assert send_at(friday_8, paris(2025, 3, 7, 8, 0)) == paris(2025, 3, 7, 8, 0)  # Friday
    assert send_at(friday_8, paris(2025, 3, 7, 9, 0)) == paris(2025, 3, 14, 8, 0)


def test_the_hour_holds_across_daylight_saving_time() -> None:
    # 30 March 2025: Paris goes from UTC+1 to UTC+2.
    monday_9 = Choice(Frequency.WEEKLY, weekday=0, hour=9)
    at = send_at(monday_9, paris(2025, 3, 28, 12, 0))
    assert at is not None
    assert at.astimezone(PARIS).hour == 9 and at == datetime(2025, 3, 31, 7, 0, tzinfo=UTC)


def test_a_message_of_two_categories_goes_at_the_earlier_and_obligations_at_once() -> None:
    due = paris(2025, 3, 4, 8, 0)
    weekly = Choice(Frequency.WEEKLY, weekday=4)
    daily = Choice(Frequency.DAILY, hour=9)
    never = Choice(Frequency.NEVER)
    assert earliest_send([weekly, daily], due, None) == paris(2025, 3, 4, 9, 0)
    assert earliest_send([never, never], due, None) is None
    assert earliest_send([never], due, "obligation") == due


def test_escalation_and_convocation_cannot_be_switched_off_and_say_why_in_french() -> None:
    escalation = obligation_reason("escalation")
    assert escalation is not None and "chargé de mission" in escalation
    convocation = obligation_reason("digest", first_of_meeting=True)
    assert convocation is not None and "convocation" in convocation
    assert obligation_reason("digest", first_of_meeting=False) is None
    assert obligation_reason("reminder") is None
    assert category_of("escalation") is None  # not a category anyone can choose
    assert category_of("reminder", only_nudges=True) is Category.NUDGES


def test_french_words_and_refusals_naming_the_field() -> None:
    assert frequency_of("Hebdomadaire") is Frequency.WEEKLY
    assert weekday_of("Vendredi") == 4
    assert category_from("relances") is Category.NUDGES
    with pytest.raises(PreferenceError, match="il faut choisir le jour"):
        check_choice(Category.DEADLINES, Choice(Frequency.WEEKLY), frozenset())
    with pytest.raises(PreferenceError, match="de 0 à 23"):
        check_choice(Category.DEADLINES, Choice(Frequency.DAILY, hour=24), frozenset())
    with pytest.raises(PreferenceError, match="canal « slack » inconnu"):
        check_choice(Category.DIGESTS, Choice(channel="slack"), frozenset({"teams"}))
    with pytest.raises(PreferenceError, match="Fréquence « souvent » inconnue"):
        frequency_of("souvent")
