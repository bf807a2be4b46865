"""The Grand Est Touraine example a few months into phase 2: a COPIL held in January (it
validated a 2024 budget of 500 000 €), decisions and funding since, and the next COPIL
scheduled for jeudi 20 juin 2024 à 10 h (Paris) with three listed members."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from models.lifecycle import State
from models.tables import CopilMeeting, CopilMember, Funding
from models.transitions import transition_action
from models.uow import UnitOfWork
from models.vocabulary import CopilStatus
from tests.smtp_sink import SmtpSink, running_sink

JANUARY = datetime(2024, 1, 25, 13, 30, tzinfo=UTC)  # 14 h 30 à Paris
JUNE = datetime(2024, 6, 20, 8, 0, tzinfo=UTC)  # 10 h à Paris (heure d'été)


@dataclass
class Scenario:
    territory_id: int
    previous: int
    copil: int
    members: list[str]


def _at(month: int, day: int) -> datetime:
    return datetime(2024, month, day, 9, 0, tzinfo=UTC)


@pytest.fixture
def scenario(engine: Engine, example_plan: str) -> Scenario:
    with UnitOfWork(engine) as uow:
        territory = uow.repo.territory(example_plan)
        assert territory.id is not None
        previous = CopilMeeting(
            territory_id=territory.id,
            held_at=JANUARY,
            place="Hôtel communautaire, Amboise",
            status=CopilStatus.HELD,
            budget_year=2024,
            validated_budget=Decimal("500000.00"),
        )
        copil = CopilMeeting(
            territory_id=territory.id,
            held_at=JUNE,
            place="Salle du conseil, Château-Renault",
            budget_year=2024,
        )
        uow.session.add_all([previous, copil])
        uow.flush()

        def move(number: str, *targets: State, at: datetime) -> None:
            action = uow.repo.action(example_plan, number)
            for target in targets:
                copil_id = previous.id if target in (State.VALIDATED, State.DEFERRED) else None
                transition_action(
                    uow, action, target, actor="Claire Moreau", at=at, copil_id=copil_id
                )

        move("FA-01", State.PROPOSED, State.VALIDATED, at=_at(1, 10))  # before January's COPIL
        move("FA-02", State.PROPOSED, at=_at(1, 10))
        move("FA-02", State.VALIDATED, at=_at(2, 5))  # since: shown in the digest
        move("FA-03", State.PROPOSED, at=_at(5, 2))
        move("FA-04", State.PROPOSED, State.DEFERRED, at=_at(5, 3))
        fa01 = uow.repo.action(example_plan, "FA-01")
        region = uow.repo.organisation(territory.id, "Région")
        assert region is not None
        funding = uow.session.exec(
            select(Funding).where(
                Funding.action_id == fa01.id, Funding.funder_id == region.id, Funding.year == 2024
            )
        ).one()
        funding.granted = Decimal("250000.00")
        funding.decision_date = datetime(2024, 3, 15).date()
        emails = [
            "claire.moreau@grand-est-touraine.example",
            "jean.lefevre@cc-castelrenaudais.example",
            "marc.aubert@prefecture.example",
        ]
        for email in emails:
            person = uow.repo.person_by_email(territory.id, email)
            assert person is not None and person.id is not None and copil.id is not None
            uow.session.add(CopilMember(copil_id=copil.id, person_id=person.id))
        uow.commit()
        assert previous.id is not None and copil.id is not None
        return Scenario(territory.id, previous.id, copil.id, emails)


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    with running_sink() as sink:
        yield sink
