"""A COPIL is one event whether a calendar got it from the digest's invitation (.ics) or from
the member's private feed: same UID, and SEQUENCE on one scale, so the latest facts win
(read with `icalendar`), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import icalendar
from sqlalchemy.engine import Engine

from flows.usecases.calendar_feed import feed_ics, new_feed
from flows.usecases.digest import DigestSettings, invitation
from models import clock
from models.tables import CopilMeeting
from models.uow import UnitOfWork
from tests.digest.conftest import Scenario
from tests.digest.test_copil_digest import J10, digests_on, morning

JEAN = "jean.lefevre@cc-castelrenaudais.example"


def copil_event(ics: bytes) -> icalendar.Event:
    (event,) = [e for e in icalendar.Calendar.from_ical(ics).walk("VEVENT")]
    return event


def served(engine: Engine, token: str) -> icalendar.Event:
    with UnitOfWork(engine) as uow:
        ics = feed_ics(uow, token)
        uow.commit()
    assert ics is not None
    events = icalendar.Calendar.from_ical(ics).walk("VEVENT")
    (event,) = [e for e in events if str(e["uid"]).startswith("copil-")]
    return event


def test_the_feed_and_the_invitation_are_one_event_and_the_latest_facts_win(
    engine: Engine, scenario: Scenario
) -> None:
    with UnitOfWork(engine) as uow:
        jean = uow.repo.person_by_email(scenario.territory_id, JEAN)
        assert jean is not None
        token = new_feed(uow, jean)
        uow.commit()
    with clock.frozen(morning(J10) - timedelta(days=1)):  # the feed, the day before J-10
        before = served(engine, token)
    (digest,) = digests_on(engine, J10)
    sent = copil_event(invitation(digest, DigestSettings(), now=morning(J10)))
    assert str(before["uid"]) == str(sent["uid"])
    assert str(sent["uid"]) == f"copil-{scenario.copil}-grand-est-touraine@tiflow"
    assert before.decoded("dtstart") == sent.decoded("dtstart")
    assert before.decoded("dtend") == sent.decoded("dtend")
    assert str(before["location"]) == str(sent["location"])
    assert before["sequence"] < sent["sequence"]  # the invitation came later: it wins
    with clock.frozen(morning(J10) + timedelta(days=1)):
        again = served(engine, token)
    assert again["sequence"] == before["sequence"]  # same facts: the feed does not bump

    with UnitOfWork(engine) as uow:  # the meeting moves an hour later, after the invitation
        copil = uow.session.get_one(CopilMeeting, scenario.copil)
        copil.held_at += timedelta(hours=1)
        uow.commit()
    with clock.frozen(morning(J10) + timedelta(days=2)):
        moved = served(engine, token)
    assert str(moved["uid"]) == str(sent["uid"])
    assert moved["sequence"] > sent["sequence"]  # the feed's new facts supersede the e-mail
    assert moved.decoded("dtstart") == sent.decoded("dtstart") + timedelta(hours=1)
