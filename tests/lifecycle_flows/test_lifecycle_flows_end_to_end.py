"""The lifecycle through the real flows under the Prefect harness (SQLite and PostgreSQL)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from lifecycle_helpers import read_events  # type: ignore[import-not-found]
from prefect.artifacts import Artifact
from prefect.states import State as PrefectState
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from flows.copil import hold_copil, schedule_copil
from flows.funding import record_funding
from flows.progress import complete_action, report_progress, start_action
from flows.proposals import propose_action
from models.lifecycle import State
from models.tables import CopilDecision, TransitionRecord
from models.uow import UnitOfWork
from models.vocabulary import CopilStatus

T = "grand-est-touraine"


def _run(flow: Any, form: dict[str, Any]) -> tuple[str, Any]:
    """Run a flow with its form; returns (flow run id, result). Fails the test if it failed."""
    state: PrefectState = flow(form, return_state=True)
    assert state.is_completed(), state.message
    return str(state.state_details.flow_run_id), state.result()


def test_one_action_lives_from_proposal_to_completion_through_the_flows(
    flow_env: Engine, example_plan: str, copil_at: str
) -> None:
    runs: dict[str, str] = {}
    runs["propose"], proposal = _run(
        propose_action, {"number": "FA-07", "recorded_by": "Claire Moreau"}
    )
    assert proposal.from_state is State.DRAFT
    _run(propose_action, {"number": "FA-12"})
    runs["schedule"], info = _run(
        schedule_copil, {"held_at": copil_at, "place": "Hôtel de ville d'Amboise"}
    )
    assert [item.number for item in info.agenda] == ["FA-07", "FA-12"]
    runs["copil"], outcome = _run(
        hold_copil,
        {
            "copil_id": info.copil_id,
            "decisions": [
                {"number": "FA-07", "outcome": "validée", "conditions": "Bilan à six mois"},
                {"number": "FA-12", "outcome": "révision demandée", "comment": "Chiffrer"},
            ],
            "validated_budget": "1 250 000,00 €",
            "recorded_by": "Claire Moreau",
        },
    )
    assert outcome.validated_budget == Decimal("1250000.00")
    funding_runs = []
    for funder, granted in (("État", "50 000"), ("OPCO 2i", "40000.00"), ("CC TEV", "50000")):
        run_id, result = _run(
            record_funding,
            {
                "number": "FA-07",
                "funder": funder,
                "year": 2024,  # one row per funder and year in the example
                "granted": granted,
                "decision_date": "2024-03-01",
            },
        )
        funding_runs.append(run_id)
    assert result.state is State.FUNDED and result.missing == 0
    runs["funded"] = funding_runs[-1]
    runs["start"], _ = _run(start_action, {"number": "FA-07"})
    _run(
        report_progress,
        {
            "number": "FA-07",
            "milestones_done": [{"title": "Ouverture de la plateforme", "done_on": "2024-06-03"}],
            "indicator_values": [{"name": "Recrutements accompagnés", "value": "120"}],
            "note": "Objectif de recrutements atteint.",
        },
    )
    runs["complete"], done = _run(complete_action, {"number": "FA-07", "reason": "Bilan fait"})
    assert done.open_milestones == ()

    with UnitOfWork(flow_env) as u:
        action = u.repo.action(T, "FA-07")
        assert action.state is State.COMPLETED
        history = u.repo.history(action.id)  # type: ignore[arg-type]
        assert [(r.to_state, r.correlation_id) for r in history] == [
            (State.PROPOSED, runs["propose"]),
            (State.VALIDATED, runs["copil"]),
            (State.FUNDED, runs["funded"]),
            (State.IN_PROGRESS, runs["start"]),
            (State.COMPLETED, runs["complete"]),
        ]
        assert history[1].copil_id == info.copil_id
        assert u.repo.copil(info.copil_id).status is CopilStatus.HELD

    (scheduled,) = read_events(runs["schedule"], 1)
    assert scheduled.event == "tiflow.copil.scheduled"
    assert scheduled.resource.id == f"tiflow.copil.{info.copil_id}"
    assert scheduled.payload["agenda"] == ["FA-07", "FA-12"]
    assert scheduled.payload["held_at"].startswith("2024-01-25T08:30:00")  # 09:30 in Paris

    copil_events = read_events(runs["copil"], 3)
    assert [e.event for e in copil_events] == [
        "tiflow.action.validated",
        "tiflow.action.revision_requested",
        "tiflow.copil.held",
    ]
    validated = copil_events[0]
    assert validated.resource.id == f"tiflow.action.{T}.FA-07"
    assert validated.resource.get("tiflow.action.number") == "FA-07"
    roles = {r.role: r.id for r in validated.related}
    assert roles["pilot"] == "tiflow.person.isabelle.roux@uimm-touraine.example"
    assert roles["copil"] == f"tiflow.copil.{info.copil_id}"
    assert roles["flow-run"] == f"prefect.flow-run.{runs['copil']}"
    assert roles["territory"] == f"tiflow.territory.{T}"
    assert validated.payload["from_state"] == "proposed"
    assert validated.payload["to_state"] == "validated"
    assert validated.payload["reason"] == "Conditions : Bilan à six mois"
    assert validated.payload["actor"] == "COPIL du 25/01/2024 (saisie : Claire Moreau)"
    assert copil_events[2].payload["validated_budget"] == "1250000.00"

    funded = read_events(runs["funded"], 2)
    assert [e.event for e in funded] == ["tiflow.action.funded", "tiflow.funding.recorded"]
    assert funded[1].payload["granted_total"] == funded[1].payload["budget_total"] == "140000.00"
    assert [e.event for e in read_events(runs["complete"], 1)] == ["tiflow.action.completed"]

    summary = Artifact.get("copil-grand-est-touraine-2024-01-25-decisions")
    assert summary is not None and isinstance(summary.data, str)
    assert "| FA-07 | Plateforme Ressources humaines" in summary.data
    assert "**validée**" in summary.data and "Bilan à six mois" in summary.data
    assert "Budget 2024 validé : **1\u202f250\u202f000,00\u00a0€**" in summary.data


def test_a_copil_with_one_illegal_decision_fails_naming_it_and_changes_nothing(
    flow_env: Engine, example_plan: str, copil_at: str
) -> None:
    _run(propose_action, {"number": "FA-07"})
    _run(propose_action, {"number": "FA-12"})
    _, info = _run(schedule_copil, {"held_at": copil_at})
    state = hold_copil(
        {
            "copil_id": info.copil_id,
            "decisions": [
                {"number": "FA-07", "outcome": "validée"},
                {"number": "FA-09", "outcome": "validée"},  # a draft: never proposed
                {"number": "FA-12", "outcome": "rejetée"},
            ],
            "validated_budget": "900000",
        },
        return_state=True,
    )
    assert state.is_failed()
    assert "Décision n° 2 (FA-09) : Transition impossible" in str(state.message)
    assert "« brouillon »" in str(state.message)
    with UnitOfWork(flow_env) as u:
        assert u.repo.action(T, "FA-07").state is State.PROPOSED
        assert u.repo.action(T, "FA-12").state is State.PROPOSED
        meeting = u.repo.copil(info.copil_id)
        assert meeting.status is CopilStatus.SCHEDULED and meeting.validated_budget is None
        assert u.session.exec(select(func.count()).select_from(CopilDecision)).one() == 0
        assert u.session.exec(select(func.count()).select_from(TransitionRecord)).one() == 2
