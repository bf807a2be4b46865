"""The lifecycle table, tested exhaustively without a database (properties from hypothesis)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.lifecycle import (
    CLOSED_STATES,
    TRANSITIONS,
    Guard,
    GuardFacts,
    GuardFailed,
    IllegalTransition,
    State,
    allowed_targets,
    check_transition,
    find_transition,
    mermaid,
)

PERMISSIVE = GuardFacts(
    copil_id=1,
    budget_total=Decimal("100.00"),
    granted_total=Decimal("100.00"),
    reason="décision du COPIL",
)
ALLOWED = {(t.source, t.target) for t in TRANSITIONS}
FORBIDDEN = [(s, t) for s in State for t in State if (s, t) not in ALLOWED]


@pytest.mark.parametrize("transition", TRANSITIONS, ids=lambda t: f"{t.source}->{t.target}")
def test_every_allowed_transition_passes_when_its_guard_holds(transition) -> None:
    assert check_transition("FA-07", transition.source, transition.target, PERMISSIVE) is transition


@pytest.mark.parametrize(("source", "target"), FORBIDDEN, ids=lambda s: str(s))
def test_every_forbidden_transition_is_refused_naming_action_state_and_next_states(
    source: State, target: State
) -> None:
    with pytest.raises(IllegalTransition) as refused:
        check_transition("FA-07", source, target, PERMISSIVE)
    message = str(refused.value)
    assert "FA-07" in message
    assert f"« {source.label} »" in message
    for nxt in allowed_targets(source):
        assert f"« {nxt.label} »" in message
    if not allowed_targets(source):
        assert "aucun (état final)" in message


@given(st.sampled_from(list(State)), st.sampled_from(list(State)))
def test_decision_is_exactly_membership_in_the_table(source: State, target: State) -> None:
    try:
        check_transition("FA-01", source, target, PERMISSIVE)
        allowed = True
    except IllegalTransition:
        allowed = False
    assert allowed == ((source, target) in ALLOWED)


def test_closed_states_have_no_way_out_and_open_states_can_be_abandoned() -> None:
    for state in State:
        if state in CLOSED_STATES:
            assert allowed_targets(state) == []
        else:
            assert State.ABANDONED in allowed_targets(state)


def test_copil_decision_needs_a_copil_meeting_of_the_same_territory() -> None:
    with pytest.raises(GuardFailed, match="décision de COPIL"):
        check_transition("FA-03", State.PROPOSED, State.VALIDATED, GuardFacts())
    with pytest.raises(GuardFailed, match="n'appartient pas au territoire"):
        check_transition(
            "FA-03",
            State.PROPOSED,
            State.VALIDATED,
            GuardFacts(copil_id=4, copil_territory_matches=False),
        )


@given(
    budget=st.decimals(min_value=0, max_value=10**7, places=2),
    granted=st.decimals(min_value=0, max_value=10**7, places=2),
    override=st.booleans(),
    reason=st.sampled_from([None, "", "  ", "Cofinancement européen attendu"]),
)
def test_funded_needs_granted_covering_budget_or_override_with_reason(
    budget: Decimal, granted: Decimal, override: bool, reason: str | None
) -> None:
    facts = GuardFacts(budget_total=budget, granted_total=granted, override=override, reason=reason)
    covered = granted >= budget
    has_reason = bool((reason or "").strip())
    expected_ok = covered or (override and has_reason)
    try:
        check_transition("FA-01", State.VALIDATED, State.FUNDED, facts)
        ok = True
    except GuardFailed as refused:
        ok = False
        if not override:
            assert "il manque" in str(refused)
    assert ok == expected_ok


def test_funding_refusal_shows_missing_amount_in_french_format() -> None:
    facts = GuardFacts(budget_total=Decimal("540000.00"), granted_total=Decimal("400000.00"))
    with pytest.raises(GuardFailed) as refused:
        check_transition("FA-01", State.VALIDATED, State.FUNDED, facts)
    assert "140\u202f000,00\u00a0€" in str(refused.value)


def test_abandon_requires_a_reason() -> None:
    with pytest.raises(GuardFailed, match="exige un motif"):
        check_transition("FA-09", State.IN_PROGRESS, State.ABANDONED, GuardFacts(reason=" "))
    transition = check_transition(
        "FA-09",
        State.IN_PROGRESS,
        State.ABANDONED,
        GuardFacts(reason="Projet repris par la Région"),
    )
    assert transition.guard is Guard.REASON_REQUIRED


def test_table_has_no_duplicate_pairs() -> None:
    pairs = [(t.source, t.target) for t in TRANSITIONS]
    assert len(pairs) == len(set(pairs))
    assert find_transition(State.DRAFT, State.PROPOSED) is not None


def test_architecture_diagram_is_generated_from_the_table() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert f"```mermaid\n{mermaid()}\n```" in doc, (
        "docs/architecture.md's lifecycle diagram is stale: paste the output of "
        "`python -c 'from models.lifecycle import mermaid; print(mermaid())'`"
    )
