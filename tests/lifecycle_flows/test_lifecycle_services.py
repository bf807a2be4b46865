"""The lifecycle services without Prefect, on SQLite and PostgreSQL (Grand Est Touraine data)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from flows.usecases import service
from flows.usecases.copil import DecisionInput, copil_awaiting_decisions, hold_copil, schedule_copil
from flows.usecases.funding import record_funding
from flows.usecases.progress import (
    IndicatorValue,
    MilestoneDone,
    abandon_action,
    complete_action,
    report_progress,
    start_action,
)
from flows.usecases.proposals import BudgetLineInput, SheetDetails, propose
from models.errors import ConcurrencyConflict, InvalidInput
from models.events import ActionTransitioned, CopilHeld, CopilScheduled, FundingRecorded
from models.lifecycle import State
from models.tables import (
    ActionSheet,
    BudgetLine,
    CopilAgendaItem,
    CopilDecision,
    CopilMeeting,
    FollowUpNote,
    Funding,
    Indicator,
    Milestone,
    TransitionRecord,
)
from models.uow import UnitOfWork
from models.vocabulary import Axis, BudgetKind, CopilStatus

UowFactory = Callable[[], UnitOfWork]
PARIS = ZoneInfo("Europe/Paris")
COPIL_AT = datetime(2024, 1, 25, 9, 30)  # naive: Europe/Paris wall clock


def _propose(uow: UowFactory, *numbers: str) -> None:
    for number in numbers:
        with uow() as u:
            propose(u, None, number, recorded_by="Claire Moreau")
            u.commit()


def _schedule(uow: UowFactory, at: datetime = COPIL_AT) -> int:
    with uow() as u:
        info = schedule_copil(u, "grand-est-touraine", held_at=at, place="Amboise")
        u.commit()
    return info.copil_id


def _state(uow: UowFactory, number: str) -> State:
    with uow() as u:
        return u.repo.action("grand-est-touraine", number).state


def _count(u: UnitOfWork, table: type) -> int:
    return u.session.exec(select(func.count()).select_from(table)).one()


def test_proposing_a_draft_moves_it_to_proposed_with_history_and_event(
    uow: UowFactory, example_plan: str
) -> None:
    with uow() as u:
        result = propose(u, example_plan, "fa-7", recorded_by="Claire Moreau", correlation_id="r1")
        u.commit()
        events = list(u.events)
    assert (result.number, result.from_state, result.created) == ("FA-07", State.DRAFT, False)
    assert result.budget_total == Decimal("140000.00")
    (event,) = events
    assert isinstance(event, ActionTransitioned) and event.name == "tiflow.action.proposed"
    with uow() as u:
        action = u.repo.action(example_plan, "FA-07")
        (record,) = u.repo.history(action.id)  # type: ignore[arg-type]
        assert (record.from_state, record.to_state, record.actor, record.correlation_id) == (
            State.DRAFT,
            State.PROPOSED,
            "Claire Moreau",
            "r1",
        )


def test_a_new_sheet_gets_the_next_number_and_joins_the_next_copil_agenda(
    uow: UowFactory, example_plan: str
) -> None:
    copil_id = _schedule(uow, datetime(2099, 3, 14, 14, 0))
    details = SheetDetails(
        title="Parcours « Industrie au féminin »",
        axis=Axis.COMPETENCES,
        pilot_email="Isabelle.Roux@uimm-touraine.example",
        budget=[BudgetLineInput(2025, BudgetKind.FONCTIONNEMENT, Decimal("18500.50"))],
        partners=["France Travail", "mission locale"],
    )
    with uow() as u:
        result = propose(u, None, None, details)
        u.commit()
    assert (result.number, result.created, result.next_copil_id) == ("FA-13", True, copil_id)
    assert result.budget_total == Decimal("18500.50")
    with uow() as u:
        action = u.repo.action(example_plan, "FA-13")
        assert action.state is State.PROPOSED
        assert u.session.get(CopilAgendaItem, (copil_id, action.id)) is not None
        assert u.repo.history(action.id)[0].actor == "Claire Moreau"  # type: ignore[arg-type]


def test_a_proposal_with_several_problems_lists_them_all_and_writes_nothing(
    uow: UowFactory, example_plan: str
) -> None:
    details = SheetDetails(
        pilot_email="inconnu@example.org",
        start_date=date(2025, 6, 1),
        end_date=date(2025, 1, 1),
        budget=[
            BudgetLineInput(2025, BudgetKind.INVESTISSEMENT, Decimal("-5.00")),
            BudgetLineInput(2025, BudgetKind.INVESTISSEMENT, Decimal("1.001")),
        ],
        partners=["Club imaginaire"],
    )
    with uow() as u, pytest.raises(InvalidInput) as refused:
        propose(u, None, "FA-40", details)
    text = str(refused.value)
    for expected in (
        "Intitulé : obligatoire",
        "Axe : obligatoire",
        "inconnu@example.org",
        "Dates : le début (01/06/2025) est après la fin (01/01/2025)",
        "Budget, ligne 1 (2025, investissement) : le montant ne peut pas être négatif",
        "Budget, ligne 2",
        "Club imaginaire",
    ):
        assert expected in text
    assert len(refused.value.problems) == 7
    with uow() as u:
        assert _count(u, ActionSheet) == 12 and _count(u, TransitionRecord) == 0


def test_proposing_an_action_already_proposed_is_refused(
    uow: UowFactory, example_plan: str
) -> None:
    _propose(uow, "FA-07")
    with uow() as u, pytest.raises(InvalidInput, match=r"FA-07.*« proposée »"):
        propose(u, None, "FA-07")


def test_scheduling_builds_the_agenda_from_actions_awaiting_a_decision(
    uow: UowFactory, example_plan: str
) -> None:
    _propose(uow, "FA-07", "FA-01", "FA-12")
    with uow() as u:
        info = schedule_copil(
            u,
            None,
            held_at=COPIL_AT,
            place="Hôtel de ville d'Amboise",
            member_emails=[
                "marc.aubert@prefecture.example",
                "SOPHIE.BERNARD@region-centre.example",
            ],
        )
        u.commit()
        (event,) = u.events
    # priority first (FA-01 and FA-07 are high), then number
    assert [i.number for i in info.agenda] == ["FA-01", "FA-07", "FA-12"]
    assert info.held_at == datetime(2024, 1, 25, 8, 30, tzinfo=UTC)
    assert [m.split(" <")[0] for m in info.members] == ["Marc Aubert", "Sophie Bernard"]
    assert isinstance(event, CopilScheduled) and event.agenda == ("FA-01", "FA-07", "FA-12")


def test_scheduling_with_an_unknown_member_names_it_and_writes_nothing(
    uow: UowFactory, example_plan: str
) -> None:
    with uow() as u, pytest.raises(InvalidInput, match=r"personne\.inconnue@example\.org"):
        schedule_copil(u, None, held_at=COPIL_AT, member_emails=["personne.inconnue@example.org"])
    with uow() as u:
        assert _count(u, CopilMeeting) == 0


def test_holding_a_copil_applies_every_decision_and_the_budget(
    uow: UowFactory, example_plan: str
) -> None:
    _propose(uow, "FA-01", "FA-07", "FA-09", "FA-12")
    copil_id = _schedule(uow)
    decisions = [
        DecisionInput("FA-07", State.VALIDATED, conditions="Bilan à 6 mois", comment="Priorité"),
        DecisionInput("FA-09", State.DEFERRED, comment="Chiffrage à préciser"),
        DecisionInput("FA-12", State.REVISION_REQUESTED),
        DecisionInput("FA-01", None),
    ]
    with uow() as u:
        outcome = hold_copil(
            u,
            copil_id,
            decisions,
            validated_budget=Decimal("1250000.00"),
            recorded_by="Claire Moreau",
            correlation_id="run-copil",
        )
        u.commit()
        events = list(u.events)
    assert [(d.number, d.outcome) for d in outcome.decisions] == [
        ("FA-07", State.VALIDATED),
        ("FA-09", State.DEFERRED),
        ("FA-12", State.REVISION_REQUESTED),
    ]
    assert [i.number for i in outcome.undecided] == ["FA-01", "FA-09"]
    assert (outcome.budget_year, outcome.validated_budget) == (2024, Decimal("1250000.00"))
    assert [e.name for e in events] == [
        "tiflow.action.validated",
        "tiflow.action.deferred",
        "tiflow.action.revision_requested",
        "tiflow.copil.held",
    ]
    assert isinstance(events[-1], CopilHeld)
    with uow() as u:
        meeting = u.repo.copil(copil_id)
        assert meeting.status is CopilStatus.HELD
        assert meeting.validated_budget == Decimal("1250000.00")
        fa07 = u.repo.action(example_plan, "FA-07")
        record = u.repo.history(fa07.id)[-1]  # type: ignore[arg-type]
        assert record.copil_id == copil_id and record.correlation_id == "run-copil"
        assert record.reason == "Conditions : Bilan à 6 mois — Priorité"
        assert record.actor == "COPIL du 25/01/2024 (saisie : Claire Moreau)"
        decision = u.session.exec(
            select(CopilDecision).where(CopilDecision.action_id == fa07.id)
        ).one()
        assert (decision.outcome, decision.conditions) == (State.VALIDATED, "Bilan à 6 mois")


def test_one_illegal_decision_names_it_and_changes_nothing(
    uow: UowFactory, example_plan: str
) -> None:
    _propose(uow, "FA-07", "FA-12")
    copil_id = _schedule(uow)
    decisions = [
        DecisionInput("FA-07", State.VALIDATED),
        DecisionInput("FA-09", State.VALIDATED),  # still a draft: never proposed
        DecisionInput("FA-12", State.REJECTED),
        DecisionInput("FA-12", State.DEFERRED),
        DecisionInput("FA-99", State.VALIDATED),
    ]
    with uow() as u, pytest.raises(InvalidInput) as refused:
        hold_copil(u, copil_id, decisions, validated_budget=Decimal("10.00"), budget_year=2024)
    problems = refused.value.problems
    assert problems[0].startswith("Décision n° 2 (FA-09) : Transition impossible")
    assert "« brouillon »" in problems[0]
    assert problems[1].startswith("Décision n° 4 (FA-12) : l'action figure déjà")
    assert problems[2].startswith("Décision n° 5 (FA-99) : Action inconnue")
    with uow() as u:
        assert _state(uow, "FA-07") is State.PROPOSED and _state(uow, "FA-12") is State.PROPOSED
        assert u.repo.copil(copil_id).status is CopilStatus.SCHEDULED
        assert u.repo.copil(copil_id).validated_budget is None
        assert _count(u, CopilDecision) == 0
        assert _count(u, TransitionRecord) == 2  # the two proposals only


def test_a_copil_cannot_be_held_twice(uow: UowFactory, example_plan: str) -> None:
    _propose(uow, "FA-07", "FA-12")
    copil_id = _schedule(uow)
    with uow() as u:
        hold_copil(u, copil_id, [DecisionInput("FA-07", State.VALIDATED)])
        u.commit()
    with uow() as u, pytest.raises(InvalidInput, match="COPIL du 25/01/2024 : déjà tenu"):
        hold_copil(u, copil_id, [DecisionInput("FA-12", State.VALIDATED)])


def _validated(uow: UowFactory, number: str = "FA-07") -> None:
    _propose(uow, number)
    copil_id = _schedule(uow)
    with uow() as u:
        hold_copil(u, copil_id, [DecisionInput(number, State.VALIDATED)])
        u.commit()


def test_partial_funding_keeps_the_action_validated_and_says_what_is_missing(
    uow: UowFactory, example_plan: str
) -> None:
    _validated(uow)
    with uow() as u:
        result = record_funding(
            u,
            None,
            "FA-07",
            funder="état",
            year=2024,  # the example's funders have a row per year: the year is required
            granted=Decimal("50000.00"),
            decision_date=date(2024, 3, 1),
            convention_ref="CONV-2024-017",
        )
        u.commit()
        (event,) = u.events
    assert result.state is State.VALIDATED and result.transition is None
    # the État's 2024 tranche of the example's request (25 000 € a year)
    assert (result.year, result.requested, result.created) == (2024, Decimal("25000.00"), False)
    assert result.missing == Decimal("90000.00")
    pending = [(p.year, p.funder, p.still_expected) for p in result.pending]
    assert pending[:2] == [
        (2024, "CC TEV", Decimal("25000.00")),
        (2024, "OPCO 2i", Decimal("20000.00")),
    ]
    assert sorted(pending[2:]) == [
        (2025, "CC TEV", Decimal("25000.00")),
        (2025, "OPCO 2i", Decimal("20000.00")),
        (2025, "État", Decimal("25000.00")),
    ]
    assert "Il manque 90\u202f000,00\u00a0€" in result.summary()
    assert isinstance(event, FundingRecorded) and event.granted_total == Decimal("50000.00")


def test_funding_that_covers_the_budget_makes_the_action_funded(
    uow: UowFactory, example_plan: str
) -> None:
    _validated(uow)
    for funder, amount in (("État", "50000.00"), ("OPCO 2i", "40000.00")):
        with uow() as u:
            record_funding(u, None, "FA-07", funder=funder, year=2024, granted=Decimal(amount))
            u.commit()
    with uow() as u:
        result = record_funding(
            u, None, "FA-07", funder="CC TEV", year=2024, granted=Decimal("50000.00")
        )
        u.commit()
        names = [e.name for e in u.events]
    assert result.state is State.FUNDED and result.transition is not None
    assert result.granted_total == result.budget_total == Decimal("140000.00")
    assert names == ["tiflow.action.funded", "tiflow.funding.recorded"]


def test_bad_funding_input_lists_every_problem_and_writes_nothing(
    uow: UowFactory, example_plan: str
) -> None:
    _validated(uow)
    with uow() as u, pytest.raises(InvalidInput) as refused:
        record_funding(
            u,
            None,
            "FA-07",
            funder="Banque imaginaire",
            granted=Decimal("-1"),
            paid=Decimal("0.001"),
        )
    text = str(refused.value)
    assert "Banque imaginaire" in text and "ADEME" in text
    assert "Montant accordé : le montant ne peut pas être négatif" in text
    assert "Montant versé : pas plus de deux décimales" in text
    with uow() as u, pytest.raises(InvalidInput, match=r"Montant versé : 60\u202f000,00"):
        record_funding(u, None, "FA-07", funder="État", year=2024, paid=Decimal("60000.00"))
    with uow() as u:
        assert sum(f.granted for f in u.session.exec(select(Funding)).all()) == 0


def test_progress_marks_milestones_records_indicators_and_writes_a_note(
    uow: UowFactory, example_plan: str
) -> None:
    with uow() as u:
        result = report_progress(
            u,
            None,
            "FA-07",
            milestones_done=[MilestoneDone("ouverture de la plateforme", date(2024, 6, 3))],
            indicator_values=[IndicatorValue("Recrutements accompagnés", Decimal("37"))],
            note="Plateforme ouverte, 37 recrutements accompagnés.",
            on=date(2024, 6, 28),
        )
        u.commit()
    assert result.milestones_done == ("Ouverture de la plateforme",)
    assert result.open_milestones == ()
    with uow() as u:
        milestone = u.session.exec(
            select(Milestone).where(Milestone.title == "Ouverture de la plateforme")
        ).one()
        assert milestone.done_on == date(2024, 6, 3)
        indicator = u.session.exec(
            select(Indicator).where(Indicator.name == "Recrutements accompagnés")
        ).one()
        assert (indicator.actual, indicator.measured_on) == (Decimal("37"), date(2024, 6, 28))
        note = u.session.exec(select(FollowUpNote)).one()
        territory_id = u.repo.territory(example_plan).id
        pilot = u.repo.person_by_email(territory_id, "isabelle.roux@uimm-touraine.example")  # type: ignore[arg-type]
        assert pilot is not None and note.author_id == pilot.id


def test_progress_on_an_unknown_milestone_lists_the_known_ones(
    uow: UowFactory, example_plan: str
) -> None:
    with uow() as u, pytest.raises(InvalidInput, match="« Ouverture de la plateforme »"):
        report_progress(u, None, "FA-07", milestones_done=[MilestoneDone("Inauguration")])


def test_start_complete_and_abandon_follow_the_lifecycle(
    uow: UowFactory, example_plan: str
) -> None:
    _validated(uow)
    with uow() as u:
        record_funding(u, None, "FA-07", funder="État", year=2024, force_reason="Avance de l'État")
        u.commit()
    with uow() as u:
        with pytest.raises(InvalidInput, match="ne peut pas passer à « terminée »"):
            complete_action(u, None, "FA-07")
        start_action(u, None, "FA-07")
        u.commit()
    with uow() as u:
        done = complete_action(u, None, "FA-07", reason="Objectifs atteints")
        u.commit()
    assert done.to_state is State.COMPLETED
    assert [m.title for m in done.open_milestones] == ["Ouverture de la plateforme"]
    with uow() as u, pytest.raises(InvalidInput, match="exige un motif"):
        abandon_action(u, None, "FA-01", reason="  ")
    with uow() as u:
        abandon_action(u, None, "FA-01", reason="Site indisponible")
        u.commit()
    assert _state(uow, "FA-01") is State.ABANDONED
    with uow() as u:
        history = u.repo.history(u.repo.action(example_plan, "FA-07").id)  # type: ignore[arg-type]
        assert [r.to_state for r in history] == [
            State.PROPOSED,
            State.VALIDATED,
            State.FUNDED,
            State.IN_PROGRESS,
            State.COMPLETED,
        ]
        assert history[2].override is True and history[2].reason == "Avance de l'État"


def test_instants_typed_without_zone_are_paris_time(uow: UowFactory, example_plan: str) -> None:
    summer = datetime(2024, 7, 2, 9, 0)
    with uow() as u:
        info = schedule_copil(u, None, held_at=summer)
        u.commit()
    assert info.held_at == datetime(2024, 7, 2, 9, 0, tzinfo=PARIS)
    assert info.held_at.astimezone(UTC).hour == 7
    with uow() as u:
        assert _count(u, BudgetLine) > 0


def test_a_held_copil_is_refused_before_anyone_types_its_decisions(
    uow: UowFactory, example_plan: str
) -> None:
    _propose(uow, "FA-07")
    copil_id = _schedule(uow)
    with uow() as u:
        assert [i.number for i in copil_awaiting_decisions(u, copil_id).agenda] == ["FA-07"]
        hold_copil(u, copil_id, [DecisionInput("FA-07", State.VALIDATED)])
        u.commit()
    with uow() as u, pytest.raises(InvalidInput, match="déjà tenu"):
        copil_awaiting_decisions(u, copil_id)
    with uow() as u, pytest.raises(InvalidInput, match="aucune réunion n° 999"):
        copil_awaiting_decisions(u, 999)


def test_two_runs_holding_the_same_copil_at_once_record_it_once(
    engine: Engine, uow: UowFactory, example_plan: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _propose(uow, "FA-07", "FA-12")
    copil_id = _schedule(uow)
    barrier = threading.Barrier(2, timeout=20)
    monkeypatch.setattr(service, "before_write", barrier.wait)

    def hold(decisions: list[DecisionInput]) -> str:
        try:
            with UnitOfWork(engine) as u:
                hold_copil(u, copil_id, decisions)
                u.commit()
        except ConcurrencyConflict as conflict:
            return str(conflict)
        return "ok"

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(
            pool.map(
                hold,
                [
                    [DecisionInput("FA-07", State.VALIDATED)],
                    [DecisionInput("FA-12", State.REJECTED)],
                ],
            )
        )
    assert sorted(results)[1] == "ok"
    assert sorted(results)[0].startswith(
        "Conflit sur le COPIL du 25/01/2024 : ses décisions ont été enregistrées"
    )
    with uow() as u:
        assert _count(u, CopilDecision) == 1
        assert u.repo.copil(copil_id).status is CopilStatus.HELD
        states = {_state(uow, "FA-07"), _state(uow, "FA-12")}
        assert State.PROPOSED in states and len(states) == 2
