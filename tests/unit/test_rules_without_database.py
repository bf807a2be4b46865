"""The COPIL, funding and reminder-planning rules on plain facts, with no database: each runs
in milliseconds (see `--durations`)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from flows.usecases.copil import (
    CopilInfo,
    CopilOutcome,
    DecisionApplied,
    _checked_budget,
    decisions_markdown,
)
from flows.usecases.funding import _amounts, _new_amounts
from flows.usecases.notices import _decision_paragraphs
from flows.usecases.reminders import ESCALATION, REMINDER, ReminderSettings, plan_items
from models.deadlines import ActionFacts, Deadline, Snapshot
from models.errors import InvalidInput
from models.lifecycle import COPIL_OUTCOMES, GuardFacts, GuardFailed, State, check_transition
from models.tables import CopilMeeting, Funding, Person
from models.vocabulary import CopilStatus

JANUARY_COPIL = CopilMeeting(id=3, territory_id=1, held_at=datetime(2025, 1, 23, 8, 30, tzinfo=UTC))  # type: ignore[call-arg]


# --- COPIL --------------------------------------------------------------------------------


def test_a_copil_budget_defaults_to_the_year_of_the_meeting() -> None:
    problems: list[str] = []
    budget = _checked_budget(JANUARY_COPIL, None, Decimal("1035000.00"), problems)
    assert (budget.year, budget.amount, problems) == (2025, Decimal("1035000.00"), [])


@pytest.mark.parametrize(
    ("year", "amount", "problem"),
    [
        (None, Decimal("-1.00"), "Budget validé : le montant ne peut pas être négatif."),
        (2025, None, "Budget validé : indiquez le montant du budget 2025."),
        (1999, Decimal("10.00"), "Année du budget : 1999 n'est pas une année valide."),
        (None, Decimal("10.005"), "Budget validé : budget validé : pas plus de deux décimales"),
    ],
)
def test_a_copil_budget_that_cannot_be_recorded_is_named(
    year: int | None, amount: Decimal | None, problem: str
) -> None:
    problems: list[str] = []
    _checked_budget(JANUARY_COPIL, year, amount, problems)
    assert len(problems) == 1 and problems[0].startswith(problem)


def test_only_a_copil_decides_and_only_its_four_outcomes() -> None:
    assert set(COPIL_OUTCOMES) == {
        State.VALIDATED,
        State.REJECTED,
        State.DEFERRED,
        State.REVISION_REQUESTED,
    }
    with pytest.raises(GuardFailed, match="que par une décision de COPIL"):
        check_transition("FA-07", State.PROPOSED, State.VALIDATED, GuardFacts())
    with pytest.raises(GuardFailed, match="n'appartient pas au territoire"):
        check_transition(
            "FA-07",
            State.PROPOSED,
            State.VALIDATED,
            GuardFacts(copil_id=3, copil_territory_matches=False),
        )


def test_the_decisions_summary_counts_each_outcome_in_french() -> None:
    info = CopilInfo(3, "grand-est-touraine", "Grand Est Touraine", JANUARY_COPIL.held_at,
                     "Amboise", CopilStatus.HELD, (), ())  # fmt: skip
    decided = [
        DecisionApplied("FA-07", "Plateforme RH", State.PROPOSED, State.VALIDATED, "", "",
                        Decimal("140000.00")),
        DecisionApplied("FA-09", "Tiers-lieu", State.PROPOSED, State.VALIDATED, "", "",
                        Decimal("50000.00")),
        DecisionApplied("FA-10", "Foncier", State.DEFERRED, State.REJECTED, "", "Hors contrat",
                        Decimal("0.00")),
    ]  # fmt: skip
    text = decisions_markdown(CopilOutcome(info, tuple(decided), (), 2025, None, "COPIL"))
    assert "Bilan : 2 validées, 1 rejetée." in text
    assert "| FA-10 | Foncier | ajournée | **rejetée** | — | Hors contrat |" in text


def test_a_revision_notice_says_what_to_change_and_by_when() -> None:
    paragraphs = _decision_paragraphs(
        State.REVISION_REQUESTED, "FA-09", "23 janvier 2025", "le COPIL du 12 juin 2025",
        "Chiffrage à préciser",
    )  # fmt: skip
    assert "Ce qu'il faut changer : Chiffrage à préciser" in paragraphs
    assert any(p.startswith("À faire avant le COPIL du 12 juin 2025") for p in paragraphs)


# --- funding ------------------------------------------------------------------------------


def test_funding_amounts_given_are_exact_and_the_others_unchanged() -> None:
    problems: list[str] = []
    amounts = _amounts(None, Decimal("50000"), Decimal("0"), problems)
    line = Funding(action_id=1, funder_id=2, year=2025, requested=Decimal("60000.00"))  # type: ignore[call-arg]
    requested, granted, paid = _new_amounts(amounts, line, "Région")
    assert (requested, granted, paid, problems) == (
        Decimal("60000.00"),
        Decimal("50000.00"),
        Decimal("0.00"),
        [],
    )


def test_a_funder_cannot_pay_more_than_it_granted() -> None:
    amounts = _amounts(None, Decimal("10000"), Decimal("12000"), [])
    with pytest.raises(InvalidInput, match="Montant versé : 12\u202f000,00\u00a0€ dépasse"):
        _new_amounts(amounts, None, "Région")


def test_funded_needs_the_budget_covered_or_a_reason() -> None:
    covered = GuardFacts(budget_total=Decimal("140000.00"), granted_total=Decimal("140000.00"))
    check_transition("FA-07", State.VALIDATED, State.FUNDED, covered)
    short = GuardFacts(budget_total=Decimal("140000.00"), granted_total=Decimal("90000.00"))
    with pytest.raises(GuardFailed, match="il manque 50"):
        check_transition("FA-07", State.VALIDATED, State.FUNDED, short)
    forced = GuardFacts(
        budget_total=Decimal("140000.00"), granted_total=Decimal("90000.00"), override=True
    )
    with pytest.raises(GuardFailed, match="exige un motif"):
        check_transition("FA-07", State.VALIDATED, State.FUNDED, forced)


# --- reminder planning ----------------------------------------------------------------------

FA07 = ActionFacts(7, 1, "FA-07", "Plateforme RH", State.IN_PROGRESS, 41, None, None,
                   date(2024, 1, 2))  # fmt: skip
COORDINATOR = Person(id=99, territory_id=1, full_name="Claire Moreau",
                     email="claire.moreau@grand-est-touraine.example")  # type: ignore[call-arg]  # fmt: skip


def _plan(due: date, as_of: date) -> dict[tuple[str, str], list[str]]:
    snapshot_deadline = Deadline("milestone", 70, FA07, "jalon « Ouverture »", due)
    snapshot = Snapshot(actions={7: FA07}, deadlines=[snapshot_deadline])
    grouped = plan_items(snapshot, as_of, ReminderSettings(), {1: [COORDINATOR]})
    return {group: [i.label for i in items] for group, items in grouped.items()}


def test_the_pilot_is_reminded_a_week_before_on_the_day_and_weekly_when_late() -> None:
    due = date(2024, 6, 1)
    assert _plan(due, date(2024, 5, 25)) == {(REMINDER, "p41"): ["J-7"]}
    assert _plan(due, date(2024, 6, 1)) == {(REMINDER, "p41"): ["J0"]}
    assert _plan(due, date(2024, 6, 8)) == {(REMINDER, "p41"): ["R+7"]}
    assert _plan(due, date(2024, 5, 20)) == {}  # between two reminder days: nothing


def test_fourteen_days_late_the_coordinator_is_told_once() -> None:
    plan = _plan(date(2024, 6, 1), date(2024, 6, 15))
    assert plan == {(REMINDER, "p41"): ["R+14"], (ESCALATION, "c99"): ["E+14"]}
    assert (ESCALATION, "c99") not in _plan(date(2024, 6, 1), date(2024, 6, 22))


def test_a_missed_day_is_caught_up_within_three_days() -> None:
    assert _plan(date(2024, 6, 1), date(2024, 5, 27)) == {(REMINDER, "p41"): ["J-7"]}
    assert _plan(date(2024, 6, 1), date(2024, 5, 29)) == {}
