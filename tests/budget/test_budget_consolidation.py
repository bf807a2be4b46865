"""The year's figures: exact to the cent on both databases, per axis, funder, action, state."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from flows.usecases.budget.consolidation import (
    ALL_TERRITORIES,
    PARTITION_VIEWS,
    Figures,
    View,
    consolidate,
)
from models.errors import NotFound
from models.figures import OUT_OF_PLAN
from models.lifecycle import State
from models.tables import CopilMeeting
from models.transitions import transition_action
from models.uow import UnitOfWork
from models.vocabulary import Axis, BudgetKind
from tests.budget.builders import FON, INV, add_action, add_funder, add_territory
from tiflow.example import ACTIONS

UowFactory = Callable[[], UnitOfWork]
AMOUNTS = ("planned_investment", "planned_operating", "requested", "granted", "paid")


def _cents(rng: random.Random) -> str:
    return f"{Decimal(rng.randint(1, 99_999_999)) / 100:.2f}"


def _awkward_plan(u: UnitOfWork) -> dict[int, dict[str, Decimal]]:
    """40 actions of one territory with random cents over two years, plus 0.10 + 0.20 lines.
    Returns the 2024 inputs per action number index: the figures the consolidation must find."""
    rng = random.Random(20240125)
    territory = add_territory(u, "val-de-loire-test", "Val de Loire (test)")
    funders = [add_funder(u, territory, name) for name in ("État", "Région", "ADEME", "ANCT")]
    expected: dict[int, dict[str, Decimal]] = {}
    for i in range(40):
        budget = {(year, kind): _cents(rng) for year in (2024, 2025) for kind in (INV, FON)}
        if i < 2:  # the classic float trap: 0.10 + 0.20 != 0.30 in binary
            budget[(2024, INV)] = ("0.10", "0.20")[i]
            budget[(2024, FON)] = "0.01"
        funding = {
            (funder, year): (_cents(rng), _cents(rng), _cents(rng))
            for funder in rng.sample(funders, rng.randint(1, 4))
            for year in (2024, 2025)
        }
        add_action(
            u,
            territory,
            f"FA-{i + 1:02d}",
            axis=list(Axis)[i % 4],
            firm=i % 3 == 0,
            state=_state(i),
            budget=budget,
            funding=funding,
        )
        expected[i] = {
            "planned_investment": Decimal(budget[(2024, INV)]),
            "planned_operating": Decimal(budget[(2024, FON)]),
            "requested": sum(
                (Decimal(r) for (_, y), (r, _, _) in funding.items() if y == 2024), Decimal()
            ),
            "granted": sum(
                (Decimal(g) for (_, y), (_, g, _) in funding.items() if y == 2024), Decimal()
            ),
            "paid": sum(
                (Decimal(p) for (_, y), (_, _, p) in funding.items() if y == 2024), Decimal()
            ),
        }
    return expected


def _state(i: int) -> State:
    return list(State)[i % len(State)]


def _in_plan(inputs: dict[int, dict[str, Decimal]]) -> dict[int, dict[str, Decimal]]:
    """The inputs of the actions still in the plan (not rejected, not abandoned)."""
    return {i: row for i, row in inputs.items() if _state(i) not in OUT_OF_PLAN}


def _sums(rows: Iterable[dict[str, Decimal]]) -> dict[str, Decimal]:
    rows = list(rows)
    return {name: sum((row[name] for row in rows), Decimal()) for name in AMOUNTS}


def test_totals_equal_the_sum_of_the_lines_to_the_cent(uow: UowFactory) -> None:
    with uow() as u:
        every_input = _awkward_plan(u)
        u.commit()
    with uow() as u:
        c = consolidate(u, 2024, "val-de-loire-test", as_of=date(2024, 1, 1))

    inputs = _in_plan(every_input)
    assert 0 < len(inputs) < len(every_input)  # some actions are out of the plan
    grand_total = _sums(inputs.values())
    # rejected and abandoned actions are shown apart, never in the plan's totals
    dropped = Figures.total(line.figures for line in c.view(View.DROPPED))
    out_of_plan = _sums(row for i, row in every_input.items() if i not in inputs)
    assert {name: getattr(dropped, name) for name in AMOUNTS} == out_of_plan
    assert {line.key for line in c.view(View.DROPPED)} == {
        f"FA-{i + 1:02d}" for i in every_input if i not in inputs
    }
    for view in PARTITION_VIEWS:
        total = Figures.total(line.figures for line in c.view(view))
        assert {name: getattr(total, name) for name in AMOUNTS} == grand_total, view
    funders = c.total(View.FUNDER)
    for name in ("requested", "granted", "paid"):
        assert getattr(funders, name) == grand_total[name]
    # every amount is an exact 2-place Decimal, never a float
    for line in c.lines:
        for value in line.figures.amounts():
            assert isinstance(value, Decimal) and value.as_tuple().exponent == -2
    # each action line carries its own inputs, and the float trap sums exactly
    by_number = {line.key: line.figures for line in c.view(View.ACTION) + c.view(View.DROPPED)}
    for i, row in every_input.items():
        assert {n: getattr(by_number[f"FA-{i + 1:02d}"], n) for n in AMOUNTS} == row
    first_two = by_number["FA-01"].planned_investment + by_number["FA-02"].planned_investment
    assert first_two == Decimal("0.30")


def test_axis_and_commitment_lines_match_the_actions_they_group(uow: UowFactory) -> None:
    with uow() as u:
        inputs = _in_plan(_awkward_plan(u))
        u.commit()
    with uow() as u:
        c = consolidate(u, 2024, "val-de-loire-test", as_of=date(2024, 1, 1))
    per_axis: dict[str, Decimal] = defaultdict(Decimal)
    per_firm: dict[bool, Decimal] = defaultdict(Decimal)
    for i, row in inputs.items():
        per_axis[list(Axis)[i % 4].value] += row["granted"]
        per_firm[i % 3 == 0] += row["planned_investment"] + row["planned_operating"]
    assert {line.key: line.figures.granted for line in c.view(View.AXIS)} == per_axis
    assert {line.firm_commitment: line.figures.planned for line in c.view(View.COMMITMENT)} == (
        per_firm
    )
    assert [line.key for line in c.view(View.AXIS)] == [a.value for a in Axis]
    assert c.governance.firm_count == sum(1 for i in inputs if i % 3 == 0)
    assert c.governance.action_count == len(inputs)


def test_multi_year_actions_count_in_the_years_their_budget_lines_name(
    uow: UowFactory, example_plan: str
) -> None:
    for year in (2024, 2025, 2026):
        with uow() as u:
            c = consolidate(u, year, example_plan, as_of=date(year, 1, 1))
        planned = {line.key: line.figures for line in c.view(View.ACTION)}
        for spec in ACTIONS:
            inv = Decimal(spec.budget.get((year, BudgetKind.INVESTISSEMENT), "0.00"))
            fon = Decimal(spec.budget.get((year, BudgetKind.FONCTIONNEMENT), "0.00"))
            requested = sum(
                (Decimal(a) for (_, y), a in spec.funding.items() if y == year), Decimal(0)
            )
            if not (inv or fon or requested):
                assert spec.number not in planned, (year, spec.number)
                continue
            assert planned[spec.number].planned_investment == inv, (year, spec.number)
            assert planned[spec.number].planned_operating == fon, (year, spec.number)
            # funding is requested per year, as the budget lines are: never in the start year
            # for the whole action
            assert planned[spec.number].requested == requested, (year, spec.number)
            assert planned[spec.number].requested <= inv + fon, (year, spec.number)


def test_a_year_without_actions_is_empty_not_an_error(uow: UowFactory, example_plan: str) -> None:
    with uow() as u:
        c = consolidate(u, 2031, example_plan)
        everywhere = consolidate(u, 2031)
    for result in (c, everywhere):
        assert result.is_empty and result.lines == ()
        assert result.total() == Figures()
        assert result.governance.action_count == 0
        assert result.governance.firm_share is None
        assert result.governance.median_days_to_validation is None


def test_an_unknown_territory_is_refused_in_french(uow: UowFactory) -> None:
    with uow() as u, pytest.raises(NotFound, match="Territoire inconnu : « nulle-part »"):
        consolidate(u, 2024, "nulle-part")


def test_all_territories_add_up_and_a_territory_sees_only_its_own(uow: UowFactory) -> None:
    with uow() as u:
        one = add_territory(u, "grand-est-touraine-test", "Grand Est Touraine (test)")
        two = add_territory(u, "vallee-de-l-indre-test", "Vallée de l'Indre (test)")
        etat_one, etat_two = add_funder(u, one, "État"), add_funder(u, two, "État")
        add_action(
            u,
            one,
            "FA-01",
            budget={(2024, INV): "100.10"},
            funding={(etat_one, 2024): ("80.05", "80.05", "0.00")},
        )
        add_action(
            u,
            two,
            "FA-01",
            budget={(2024, FON): "0.20"},
            funding={(etat_two, 2024): ("0.20", "0.10", "0.10")},
        )
        u.commit()
    with uow() as u:
        both = consolidate(u, 2024)
        first = consolidate(u, 2024, "grand-est-touraine-test")
    assert both.scope == ALL_TERRITORIES
    assert [line.key for line in both.view(View.TERRITORY)] == [
        "grand-est-touraine-test",
        "vallee-de-l-indre-test",
    ]
    assert both.total().planned == Decimal("100.30")
    # one funder named « État » across territories: one line nationally
    [etat] = both.view(View.FUNDER)
    assert (etat.key, etat.figures.requested, etat.action_count) == ("État", Decimal("80.25"), 2)
    assert first.total().planned == Decimal("100.10")
    assert [line.territory for line in first.view(View.ACTION)] == ["grand-est-touraine-test"]


def test_open_actions_past_their_end_or_a_milestone_are_late(uow: UowFactory) -> None:
    as_of = date(2024, 9, 1)
    with uow() as u:
        t = add_territory(u, "retards-test", "Retards (test)")
        budget = {(2024, FON): "1000.00"}
        add_action(u, t, "FA-01", state=State.IN_PROGRESS, end=date(2024, 8, 31), budget=budget)
        add_action(u, t, "FA-02", state=State.COMPLETED, end=date(2024, 3, 1), budget=budget)
        add_action(
            u,
            t,
            "FA-03",
            state=State.FUNDED,
            end=date(2025, 6, 30),
            budget=budget,
            milestones={"Étude": (date(2024, 6, 1), None), "Plan": (date(2024, 7, 1), None)},
        )
        add_action(
            u,
            t,
            "FA-04",
            state=State.VALIDATED,
            end=date(2025, 6, 30),
            budget=budget,
            milestones={"Étude": (date(2024, 6, 1), date(2024, 5, 30)), "Bilan": (as_of, None)},
        )
        add_action(u, t, "FA-05", state=State.ABANDONED, end=date(2024, 1, 1), budget=budget)
        u.commit()
    with uow() as u:
        c = consolidate(u, 2024, "retards-test", as_of=as_of)
    late = {line.key: line.note for line in c.view(View.LATE)}
    assert set(late) == {"FA-01", "FA-03"}
    assert "date de fin dépassée (31/08/2024)" in late["FA-01"]
    assert "2 jalons non réalisés, le plus ancien dû le 01/06/2024" in late["FA-03"]
    assert c.governance.late_count == 2


def _move(u: UnitOfWork, action_id: int, path: list[tuple[State, datetime]], copil: int) -> None:
    from models.tables import ActionSheet

    action = u.session.get_one(ActionSheet, action_id)
    for target, at in path:
        transition_action(
            u,
            action,
            target,
            actor="test",
            at=at,
            copil_id=copil if target in (State.VALIDATED, State.REVISION_REQUESTED) else None,
            override=target is State.FUNDED,
            reason="financement en cours" if target is State.FUNDED else None,
        )
        u.flush()


def test_medians_come_from_the_transition_history_in_paris_days(uow: UowFactory) -> None:
    def at(day: str, hour: int = 10, minute: int = 0) -> datetime:
        y, m, d = map(int, day.split("-"))
        return datetime(y, m, d, hour, minute, tzinfo=UTC)

    with uow() as u:
        t = add_territory(u, "delais-test", "Délais (test)")
        copil = CopilMeeting(territory_id=t, held_at=at("2024-01-25"), place="Amboise")
        u.session.add(copil)
        u.flush()
        assert copil.id is not None
        budget = {(2024, FON): "10.00"}
        ids = [add_action(u, t, f"FA-{i:02d}", budget=budget) for i in range(1, 6)]
        P, V, F = State.PROPOSED, State.VALIDATED, State.FUNDED
        # 23:30 UTC on 10 January is 00:30 on the 11th in Paris: 14 Paris days to the 25th
        _move(
            u,
            ids[0],
            [(P, at("2024-01-10", 23, 30)), (V, at("2024-01-25")), (F, at("2024-01-30"))],
            copil.id,
        )
        _move(
            u,
            ids[1],
            [(P, at("2024-01-05")), (V, at("2024-01-25")), (F, at("2024-02-02"))],
            copil.id,
        )
        # re-proposed after a revision: the delay runs from the first proposal
        _move(
            u,
            ids[2],
            [
                (P, at("2023-12-01")),
                (State.REVISION_REQUESTED, at("2023-12-15")),
                (P, at("2024-01-10")),
                (V, at("2024-01-25")),
            ],
            copil.id,
        )
        _move(u, ids[3], [(P, at("2024-01-20"))], copil.id)  # not validated yet: not measured
        u.commit()
    with uow() as u:
        g = consolidate(u, 2024, "delais-test").governance
    # proposal -> validation: 14, 20, 55 days; validation -> funding: 5 and 8 days
    assert (g.median_days_to_validation, g.validation_sample) == (Decimal("20.0"), 3)
    assert (g.median_days_to_funding, g.funding_sample) == (Decimal("6.5"), 2)
