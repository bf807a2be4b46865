"""Two flows deciding on the same action at once: one wins, the other fails with a clear
conflict, and nothing is lost or half-written (Prefect harness, SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from flows.copil import hold_copil, schedule_copil
from flows.funding import record_funding
from flows.progress import abandon_action
from flows.proposals import propose_action
from flows.usecases import service
from models.lifecycle import State
from models.tables import CopilDecision, Funding
from models.uow import UnitOfWork
from models.vocabulary import CopilStatus


def _overlap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both runs read and check everything before either writes (deterministic overlap)."""
    barrier = threading.Barrier(2, timeout=20)
    monkeypatch.setattr(service, "before_write", barrier.wait)


def test_a_copil_and_an_abandon_racing_on_one_action_give_one_winner_and_a_clear_conflict(
    flow_env: Engine, example_plan: str, copil_at: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    propose_action({"number": "FA-07"})
    propose_action({"number": "FA-12"})
    info = schedule_copil({"held_at": copil_at})
    _overlap(monkeypatch)
    copil_form = {
        "copil_id": info.copil_id,
        "decisions": [
            {"number": "FA-07", "outcome": "validée"},
            {"number": "FA-12", "outcome": "ajournée"},
        ],
    }
    abandon_form = {"number": "FA-07", "reason": "Le porteur se retire"}
    with ThreadPoolExecutor(max_workers=2) as pool:
        copil_run = pool.submit(hold_copil, copil_form, return_state=True)
        abandon_run = pool.submit(abandon_action, abandon_form, return_state=True)
        copil_state, abandon_state = copil_run.result(60), abandon_run.result(60)

    assert [copil_state.is_completed(), abandon_state.is_completed()].count(True) == 1
    loser = abandon_state if copil_state.is_completed() else copil_state
    assert loser.is_failed()
    assert "Conflit de mise à jour sur l'action FA-07" in str(loser.message)
    winner_run = str(
        (copil_state if copil_state.is_completed() else abandon_state).state_details.flow_run_id
    )
    with UnitOfWork(flow_env) as u:
        fa07 = u.repo.action(example_plan, "FA-07")
        fa12 = u.repo.action(example_plan, "FA-12")
        meeting = u.repo.copil(info.copil_id)
        decisions = u.session.exec(select(func.count()).select_from(CopilDecision)).one()
        history = u.repo.history(fa07.id)  # type: ignore[arg-type]
        assert [r.to_state for r in history][:1] == [State.PROPOSED]
        assert len(history) == 2 and history[1].correlation_id == winner_run
        if copil_state.is_completed():
            # The COPIL won: all of its decisions are there; the abandon wrote nothing.
            assert (fa07.state, fa12.state) == (State.VALIDATED, State.DEFERRED)
            assert meeting.status is CopilStatus.HELD and decisions == 2
        else:
            # The abandon won: none of the COPIL's decisions were written, not even FA-12's,
            # and the meeting can still be held.
            assert (fa07.state, fa12.state) == (State.ABANDONED, State.PROPOSED)
            assert meeting.status is CopilStatus.SCHEDULED and decisions == 0


def test_two_funding_records_racing_on_one_action_never_lose_an_amount(
    flow_env: Engine, example_plan: str, copil_at: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    propose_action({"number": "FA-07"})
    info = schedule_copil({"held_at": copil_at})
    hold_copil(
        {"copil_id": info.copil_id, "decisions": [{"number": "FA-07", "outcome": "validée"}]}
    )
    _overlap(monkeypatch)
    with ThreadPoolExecutor(max_workers=2) as pool:
        states = [
            pool.submit(
                record_funding,
                {"number": "FA-07", "funder": funder, "year": 2024, "granted": "40000"},
                return_state=True,
            )
            for funder in ("État", "OPCO 2i")
        ]
        first, second = (f.result(60) for f in states)
    assert [first.is_completed(), second.is_completed()].count(True) == 1
    loser = second if first.is_completed() else first
    assert "Conflit de mise à jour sur l'action FA-07" in str(loser.message)
    monkeypatch.setattr(service, "before_write", None)
    # Re-running the loser as the message says records its amount too: nothing was lost.
    lost = "OPCO 2i" if first.is_completed() else "État"
    assert record_funding(
        {"number": "FA-07", "funder": lost, "year": 2024, "granted": "40000"},
        return_state=True,
    ).is_completed()
    with UnitOfWork(flow_env) as u:
        granted = u.session.exec(select(func.sum(Funding.granted))).one()
        assert str(granted) == "80000.00"
