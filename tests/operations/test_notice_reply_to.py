"""Funders' notices: a reply reaches the pilot; the pilot's notice: the coordinator."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from flows.usecases.notices import next_steps_notice
from models.lifecycle import State
from models.tables import CopilMeeting
from models.transitions import transition_action
from models.uow import UnitOfWork

UowFactory = Callable[[], UnitOfWork]


def test_next_steps_notices_reply_to_the_coordinator_or_to_the_pilot(
    uow: UowFactory, example_plan: str
) -> None:
    with uow() as u:
        territory = u.repo.territory(example_plan)
        copil = CopilMeeting(
            territory_id=territory.id,  # type: ignore[arg-type]
            held_at=datetime(2024, 1, 25, 10, 0, tzinfo=UTC),
        )
        u.session.add(copil)
        u.flush()
        action = u.repo.action(example_plan, "FA-02")
        transition_action(u, action, State.PROPOSED, actor="Claire Moreau")
        transition_action(u, action, State.VALIDATED, actor="COPIL", copil_id=copil.id)
        u.commit()
    with uow() as u:
        pilot, funders = next_steps_notice(u, example_plan, "FA-02")
    assert pilot.reply_to == "Claire Moreau <claire.moreau@grand-est-touraine.example>"
    assert 'href="mailto:claire.moreau@grand-est-touraine.example"' in (pilot.html or "")
    assert funders.reply_to == "Isabelle Roux <isabelle.roux@uimm-touraine.example>"
    assert 'href="mailto:isabelle.roux@uimm-touraine.example"' in (funders.html or "")
