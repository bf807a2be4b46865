"""A small, controlled plan for the reminder tests (people from the Grand Est Touraine example),
a real SMTP server on loopback, and helpers to run daily sweeps at 08:00 Paris time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine

from flows.usecases.reminders import ReminderSettings, SweepReport, sweep
from models.lifecycle import State
from models.tables import ActionSheet, Milestone, Person, PersonRole, Territory
from models.uow import UnitOfWork
from models.vocabulary import Axis, Role
from notifications.transports import Deliverer
from tests.smtp_sink import SmtpSink, running_sink

PARIS = ZoneInfo("Europe/Paris")


@dataclass
class SmallPlan:
    territory_id: int
    claire: int  # coordinator
    helene: int  # pilot of FA-01 and FA-03
    karim: int  # pilot of FA-02
    fa01: int  # in progress
    fa02: int  # validated
    fa03: int  # in progress


def person(uow: UnitOfWork, territory_id: int, name: str, email: str, *roles: Role) -> int:
    row = Person(territory_id=territory_id, full_name=name, email=email)
    uow.session.add(row)
    uow.session.flush()
    assert row.id is not None
    for role in roles:
        uow.session.add(PersonRole(person_id=row.id, role=role))
    return row.id


def action(
    uow: UnitOfWork,
    territory_id: int,
    number: str,
    title: str,
    pilot_id: int | None,
    state: State,
    start: date = date(2025, 1, 6),
) -> int:
    # Test set-up, like tiflow.example: the action is created in the state we need.
    row = ActionSheet(
        territory_id=territory_id,
        number=number,
        title=title,
        axis=Axis.INNOVATION,
        pilot_id=pilot_id,
        state=state,
        start_date=start,
    )
    uow.session.add(row)
    uow.session.flush()
    assert row.id is not None
    return row.id


@pytest.fixture
def plan(engine: Engine) -> SmallPlan:
    with UnitOfWork(engine) as uow:
        territory = Territory(code="grand-est-touraine", name="Grand Est Touraine")
        uow.session.add(territory)
        uow.session.flush()
        tid = territory.id
        assert tid is not None
        claire = person(
            uow, tid, "Claire Moreau", "claire.moreau@grand-est-touraine.example", Role.COORDINATOR
        )
        helene = person(uow, tid, "Hélène Garnier", "helene.garnier@aicr.example", Role.PILOT)
        karim = person(uow, tid, "Karim Haddad", "karim.haddad@cc-tev.example", Role.PILOT)
        fa01 = action(
            uow, tid, "FA-01", "Usine-témoin de l'industrie du futur", helene, State.IN_PROGRESS
        )
        fa02 = action(uow, tid, "FA-02", "Industry-lab au CFAI d'Amboise", karim, State.VALIDATED)
        fa03 = action(uow, tid, "FA-03", "Tiers-lieu « Le Rubixco »", helene, State.IN_PROGRESS)
        uow.commit()
    return SmallPlan(tid, claire, helene, karim, fa01, fa02, fa03)


def add_milestone(engine: Engine, action_id: int, title: str, due: date) -> int:
    with UnitOfWork(engine) as uow:
        row = Milestone(action_id=action_id, title=title, due_date=due)
        uow.session.add(row)
        uow.commit()
    assert row.id is not None
    return row.id


def at_8_paris(day: date, hour: int = 8, minute: int = 0) -> datetime:
    """The instant of ``day`` at HH:MM in Paris (the flow's schedule), as aware UTC."""
    return datetime.combine(day, time(hour, minute), tzinfo=PARIS).astimezone(UTC)


# Quiet by default: no nudges, no catch-up, unless a test asks for them.
QUIET = ReminderSettings(nudge_after_weeks=52, catch_up_days=0)


def run_day(
    engine: Engine,
    deliverer: Deliverer,
    day: date,
    settings: ReminderSettings = QUIET,
    hour: int = 8,
    minute: int = 0,
) -> SweepReport:
    """The sweep as the 08:00 Europe/Paris schedule runs it: as_of is derived from now."""
    return sweep(engine, deliverer, settings=settings, now=at_8_paris(day, hour, minute))


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    with running_sink() as sink:
        yield sink


def smtp_deliverer(sink: SmtpSink, **params: str) -> Deliverer:
    return Deliverer(
        f"pilots,copil,coordinator={sink.url('tiflow@grand-est-touraine.example', **params)}"
    )


def inbox(sink: SmtpSink, address: str) -> list[EmailMessage]:
    return sink.messages_to(address)
