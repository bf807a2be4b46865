"""A person's private calendar feed, served by `tiflow web`: parses with `icalendar`, holds
the person's milestones and COPILs, keeps each UID and raises SEQUENCE when a date moves,
and stops working once revoked. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import icalendar

from flows.usecases.bus import unit_of_work
from flows.usecases.calendar_feed import new_feed, revoke_feeds
from models.tables import Milestone, Person
from tests.web.conftest import ONLY_PILOT, PILOT, Web, person_id


def feed(web: Web, token: str) -> dict[str, icalendar.Event]:
    answer = web.client().get(f"/calendrier/{token}.ics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(answer.content)
    return {str(e["uid"]): e for e in calendar.walk("VEVENT")}


def token_for(web: Web, address: str) -> str:
    with unit_of_work(web.engine) as uow:
        token = new_feed(uow, uow.session.get_one(Person, person_id(web.engine, address)))
        uow.commit()
    return token


def test_a_copil_members_feed_holds_the_copil(web: Web) -> None:
    events = feed(web, token_for(web, PILOT))  # Hélène sits in the COPIL
    (copil,) = [e for uid, e in events.items() if uid.startswith("copil-")]
    assert "COPIL Territoire d'industrie" in str(copil["summary"])


def test_the_feed_keeps_its_uids_and_raises_sequence_when_a_date_moves(web: Web) -> None:
    token = token_for(web, ONLY_PILOT)  # FA-01's pilot
    events = feed(web, token)
    milestones = sorted(uid for uid in events if uid.startswith("milestone-"))
    assert milestones
    uid = milestones[0]
    assert events[uid]["sequence"] == 0
    before = events[uid].decoded("dtstart")
    with unit_of_work(web.engine) as uow:
        milestone = uow.session.get_one(Milestone, int(uid.split("-")[1].split("@")[0]))
        milestone.due_date += timedelta(days=7)
        uow.commit()
    moved = feed(web, token)
    assert set(moved) == set(events)  # same UIDs: calendars replace, never duplicate
    assert moved[uid]["sequence"] == 1
    assert moved[uid].decoded("dtstart") == before + timedelta(days=7)
    assert all(moved[u]["sequence"] == 0 for u in moved if u != uid)
    assert feed(web, token)[uid]["sequence"] == 1  # served again, unchanged: same SEQUENCE


def test_a_revoked_feed_answers_nothing(web: Web) -> None:
    with unit_of_work(web.engine) as uow:
        person = uow.session.get_one(Person, person_id(web.engine, PILOT))
        first = new_feed(uow, person)
        second = new_feed(uow, person)  # a new one revokes the first
        uow.commit()
    assert web.client().get(f"/calendrier/{first}.ics").status_code == 404
    assert feed(web, second)
    with unit_of_work(web.engine) as uow:
        assert revoke_feeds(uow, uow.session.get_one(Person, person_id(web.engine, PILOT))) == 1
        uow.commit()
    assert web.client().get(f"/calendrier/{second}.ics").status_code == 404
