"""Holding a COPIL by typing its decisions into the paused run's form (Prefect harness)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from lifecycle_helpers import wait_until  # type: ignore[import-not-found]
from prefect import get_client
from prefect.flow_runs import resume_flow_run
from sqlalchemy.engine import Engine

from flows.copil import hold_copil_interactively, schedule_copil
from flows.proposals import propose_action
from models.lifecycle import State
from models.uow import UnitOfWork
from models.vocabulary import CopilStatus


def _paused(run_id: uuid.UUID) -> bool:
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run_id).state
    return state is not None and state.is_paused()


def test_the_paused_copil_run_applies_the_decisions_typed_in_its_form(
    flow_env: Engine, example_plan: str, copil_at: str
) -> None:
    for number in ("FA-07", "FA-12", "FA-01"):
        propose_action({"number": number})
    info = schedule_copil({"held_at": copil_at})
    started: list[uuid.UUID] = []
    watched = hold_copil_interactively.with_options(
        on_running=[lambda _flow, run, _state: started.append(run.id)]
    )
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(
            watched, {"copil_id": info.copil_id, "poll_seconds": 1}, return_state=True
        )
        wait_until(lambda: bool(started) or future.done(), what="the run to start")
        assert started, future.result().message
        run_id = started[0]
        wait_until(lambda: _paused(run_id) or future.done(), what="the run to pause")
        assert not future.done(), future.result().message

        # The form is pre-filled with the agenda; a value outside its choices is refused
        # by the server and the run stays paused.
        bad: dict[str, Any] = {"decisions": [{"number": "FA-07", "outcome": "peut-être"}]}
        with pytest.raises(RuntimeError) as refused:
            resume_flow_run(run_id, run_input=bad)
        assert "decisions[0].outcome" in str(refused.value)
        assert "'peut-être' is not one of" in str(refused.value)
        assert _paused(run_id)
        with UnitOfWork(flow_env) as u:
            assert u.repo.action(example_plan, "FA-07").state is State.PROPOSED

        resume_flow_run(
            run_id,
            run_input={
                "decisions": [
                    {"number": "FA-07", "outcome": "validée", "conditions": "Bilan à 6 mois"},
                    {"number": "FA-12", "outcome": "ajournée", "comment": "À chiffrer"},
                    {"number": "FA-01", "outcome": "non examinée"},
                ],
                "validated_budget": "1 250 000,00",
                "recorded_by": "Claire Moreau",
            },
        )
        state = future.result(timeout=60)
    assert state.is_completed(), state.message
    outcome = state.result()
    assert [(d.number, d.outcome) for d in outcome.decisions] == [
        ("FA-07", State.VALIDATED),
        ("FA-12", State.DEFERRED),
    ]
    with UnitOfWork(flow_env) as u:
        assert u.repo.action(example_plan, "FA-07").state is State.VALIDATED
        assert u.repo.action(example_plan, "FA-12").state is State.DEFERRED
        assert u.repo.action(example_plan, "FA-01").state is State.PROPOSED
        meeting = u.repo.copil(info.copil_id)
        assert meeting.status is CopilStatus.HELD and meeting.budget_year == 2024
        fa07 = u.repo.action(example_plan, "FA-07")
        record = u.repo.history(fa07.id)[-1]  # type: ignore[arg-type]
        assert record.correlation_id == str(run_id)
        assert record.actor == "COPIL du 25/01/2024 (saisie : Claire Moreau)"
