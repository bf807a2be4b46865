"""The domain on a real database (SQLite and PostgreSQL): transitions, history, locking, money."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from models.db import one_of
from models.errors import ConcurrencyConflict
from models.lifecycle import TRANSITIONS, Guard, IllegalTransition, State, Transition
from models.tables import (
    ActionSheet,
    BudgetLine,
    CopilMeeting,
    Funding,
    Indicator,
    Organisation,
    Territory,
    TransitionRecord,
)
from models.transitions import transition_action
from models.uow import UnitOfWork
from models.vocabulary import Axis, BudgetKind, OrganisationKind
from tiflow.example import ACTIONS, TERRITORY_CODE

UowFactory = Callable[[], UnitOfWork]


def _action_in(u: UnitOfWork, state: State, number: str = "FA-20") -> ActionSheet:
    """A fresh territory with one action in `state`, its budget covered, and a COPIL meeting."""
    territory = Territory(code=f"test-{number.lower()}", name="Territoire de test")
    u.session.add(territory)
    u.session.flush()
    assert territory.id is not None
    funder = Organisation(territory_id=territory.id, name="Région", kind=OrganisationKind.REGION)
    action = ActionSheet(
        territory_id=territory.id,
        number=number,
        title="Atelier partagé",
        axis=Axis.INNOVATION,
        state=state,
    )
    u.session.add_all([funder, action])
    u.session.flush()
    assert action.id is not None and funder.id is not None
    u.session.add(
        BudgetLine(
            action_id=action.id,
            year=2024,
            kind=BudgetKind.INVESTISSEMENT,
            amount=Decimal("1000.00"),
        )
    )
    u.session.add(
        Funding(
            action_id=action.id,
            funder_id=funder.id,
            year=2024,
            requested=Decimal("1000.00"),
            granted=Decimal("1000.00"),
        )
    )
    u.session.add(
        CopilMeeting(territory_id=territory.id, held_at=datetime(2024, 1, 25, 9, tzinfo=UTC))
    )
    u.session.flush()
    return action


@pytest.mark.parametrize("transition", TRANSITIONS, ids=lambda t: f"{t.source}->{t.target}")
def test_each_allowed_transition_updates_state_and_appends_history(
    uow: UowFactory, transition: Transition
) -> None:
    with uow() as u:
        action = _action_in(u, transition.source)
        u.commit()
    copil_id = None
    with uow() as u:
        action = u.repo.action("test-fa-20", "FA-20")
        if transition.guard is Guard.COPIL_DECISION:
            copil_id = u.session.exec(select(CopilMeeting.id)).one()
        event = transition_action(
            u,
            action,
            transition.target,
            actor="Claire Moreau",
            reason="motif de test",
            correlation_id="run-123",
            copil_id=copil_id,
        )
        u.commit()
    assert event.name == f"tiflow.action.{transition.target.value}"
    with uow() as u:
        action = u.repo.action("test-fa-20", "FA-20")
        assert action.state is transition.target
        assert action.version == 2
        (record,) = u.repo.history(action.id)  # type: ignore[arg-type]
        assert (record.from_state, record.to_state) == (transition.source, transition.target)
        assert record.actor == "Claire Moreau"
        assert record.correlation_id == "run-123"
        assert record.copil_id == copil_id
        assert record.at.tzinfo is not None


def test_illegal_transition_changes_nothing(uow: UowFactory) -> None:
    with uow() as u:
        _action_in(u, State.DRAFT)
        u.commit()
    with uow() as u:
        action = u.repo.action("test-fa-20", "FA-20")
        with pytest.raises(IllegalTransition, match=r"FA-20.*brouillon"):
            transition_action(u, action, State.COMPLETED, actor="test")
        u.commit()
    with uow() as u:
        action = u.repo.action("test-fa-20", "FA-20")
        assert action.state is State.DRAFT and action.version == 1
        assert u.repo.history(action.id) == []  # type: ignore[arg-type]


def test_leaving_a_unit_of_work_without_commit_writes_nothing(uow: UowFactory) -> None:
    with uow() as u:
        _action_in(u, State.DRAFT)
        u.commit()
    with pytest.raises(RuntimeError), uow() as u:
        action = u.repo.action("test-fa-20", "FA-20")
        transition_action(u, action, State.PROPOSED, actor="test")
        u.flush()
        raise RuntimeError("crash after the write, before commit")
    with uow() as u:
        action = u.repo.action("test-fa-20", "FA-20")
        assert action.state is State.DRAFT
        assert u.session.exec(select(func.count()).select_from(TransitionRecord)).one() == 0


def test_concurrent_edits_of_one_action_give_the_loser_a_clear_conflict(engine: Engine) -> None:
    with UnitOfWork(engine) as u:
        _action_in(u, State.PROPOSED)
        u.commit()
    first, second = UnitOfWork(engine), UnitOfWork(engine)
    with first, second:
        copil_id = first.session.exec(select(CopilMeeting.id)).one()
        mine = first.repo.action("test-fa-20", "FA-20")
        theirs = second.repo.action("test-fa-20", "FA-20")
        transition_action(first, mine, State.VALIDATED, actor="A", copil_id=copil_id)
        first.commit()
        transition_action(
            second, theirs, State.REJECTED, actor="B", copil_id=copil_id
        )  # stale read
        with pytest.raises(ConcurrencyConflict, match=r"FA-20.*modifiée par une autre opération"):
            second.commit()
    with UnitOfWork(engine) as u:
        action = u.repo.action("test-fa-20", "FA-20")
        assert action.state is State.VALIDATED and action.version == 2
        assert [r.actor for r in u.repo.history(action.id)] == ["A"]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "amounts",
    [
        ["0.10", "0.20"],
        ["0.01"] * 333,
        ["9999999999.99", "0.01"],
        ["-150.75", "150.70"],
    ],
    ids=["0.1+0.2", "333-cents", "ten-billion", "negative"],
)
def test_money_round_trips_exactly_and_sums_to_the_cent(
    uow: UowFactory, amounts: list[str]
) -> None:
    with uow() as u:
        action = _action_in(u, State.DRAFT)
        assert action.id is not None
        for year, amount in enumerate(amounts, start=2000):
            u.session.add(
                BudgetLine(
                    action_id=action.id,
                    year=year,
                    kind=BudgetKind.FONCTIONNEMENT,
                    amount=Decimal(amount),
                )
            )
        u.commit()
    with uow() as u:
        lines = u.session.exec(
            select(BudgetLine)
            .where(BudgetLine.kind == BudgetKind.FONCTIONNEMENT)
            .order_by(BudgetLine.year)
        ).all()
        assert [line.amount for line in lines] == [Decimal(a) for a in amounts]
        assert all(isinstance(line.amount, Decimal) for line in lines)
        expected = sum((Decimal(a) for a in amounts), Decimal("1000.00"))  # + the fixture's line
        assert u.repo.budget_total(action.id) == expected  # type: ignore[arg-type]
        assert str(u.repo.budget_total(action.id)) == str(expected.quantize(Decimal("0.01")))  # type: ignore[arg-type]


def test_money_refuses_floats_and_sub_cent_amounts(uow: UowFactory) -> None:
    with uow() as u:
        action = _action_in(u, State.DRAFT)
        u.commit()
    for bad, error in ((0.1, TypeError), (Decimal("0.001"), ValueError)):
        with uow() as u:
            line = BudgetLine(
                action_id=action.id,
                year=2030,
                kind=BudgetKind.INVESTISSEMENT,  # type: ignore[arg-type]
                amount=bad,
            )  # type: ignore[arg-type]
            u.session.add(line)
            with pytest.raises(sa.exc.StatementError) as refused:
                u.commit()
            assert isinstance(refused.value.orig, error)
    with uow() as u:
        assert u.session.exec(select(func.count()).select_from(BudgetLine)).one() == 1


def test_instants_are_stored_in_utc_and_come_back_aware(uow: UowFactory) -> None:
    paris = datetime(2024, 3, 31, 9, 30, tzinfo=ZoneInfo("Europe/Paris"))  # just after DST change
    with uow() as u:
        territory = Territory(code="t", name="T")
        u.session.add(territory)
        u.session.flush()
        u.session.add(CopilMeeting(territory_id=territory.id, held_at=paris))  # type: ignore[arg-type]
        u.commit()
    with uow() as u:
        meeting = u.session.exec(select(CopilMeeting)).one()
        assert meeting.held_at == paris
        assert meeting.held_at.utcoffset() is not None
        assert meeting.held_at.astimezone(UTC).hour == 7


def test_indicator_values_stay_exact(uow: UowFactory) -> None:
    with uow() as u:
        action = _action_in(u, State.DRAFT)
        u.session.add(
            Indicator(
                action_id=action.id,
                name="Taux de couverture",
                unit="%",  # type: ignore[arg-type]
                target=Decimal("99.95"),
                actual=Decimal("0.1"),
            )
        )
        u.commit()
    with uow() as u:
        indicator = u.session.exec(select(Indicator)).one()
        assert (indicator.target, indicator.actual) == (Decimal("99.95"), Decimal("0.1"))


def test_example_plan_matches_the_articles(uow: UowFactory, example_plan: str) -> None:
    with uow() as u:
        territory = u.repo.territory(example_plan)
        assert territory.is_example and territory.code == TERRITORY_CODE
        actions = u.repo.actions(territory.id)  # type: ignore[arg-type]
        assert len(actions) == len(ACTIONS) == 12
        assert sum(a.firm_commitment for a in actions) == 8
        assert {a.axis for a in actions} == set(Axis)
        orgs = u.session.exec(select(Organisation)).all()
        kinds = [o.kind for o in orgs]
        assert kinds.count(OrganisationKind.COMMUNAUTE_DE_COMMUNES) == 4
        assert {o.short_name for o in orgs if o.kind is OrganisationKind.CLUB_ENTREPRISES} == {
            "ERET",
            "AICR",
            "GEIDA",
        }
        assert all(a.start_date and a.end_date and a.start_date <= a.end_date for a in actions)
        assert all(a.start_date >= date(2024, 1, 1) for a in actions)  # type: ignore[operator]


def test_one_of_selects_the_same_rows_as_in_on_both_databases(engine: Engine) -> None:
    """``one_of`` is ``IN`` (one array parameter on PostgreSQL): same rows, for integers and
    text, a chunk of 2 000 values as the callers pass, and none for an empty list."""
    t = Territory.__table__  # type: ignore[attr-defined]
    codes = [(1, "ti-un"), (2, "ti-deux"), (3, "ti-trois")]
    rows = [{"id": i, "code": c, "name": c, "is_example": False} for i, c in codes]
    ids = sa.select(t.c.id).order_by(t.c.id)
    with engine.begin() as conn:
        conn.execute(sa.insert(t), rows)
        assert conn.execute(ids.where(one_of(t.c.id, [2, 3, *range(10, 2008)]))).all() == [
            (2,),
            (3,),
        ]
        assert conn.execute(ids.where(one_of(t.c.code, ["ti-un"]))).all() == [(1,)]
        assert conn.execute(ids.where(one_of(t.c.id, []))).all() == []
    sql = str(ids.where(one_of(t.c.id, [1])).compile(dialect=engine.dialect))
    assert ("= ANY" in sql) == (engine.dialect.name == "postgresql")
