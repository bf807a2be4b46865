"""COPIL digests follow the members' preferences, but the convocation (a meeting's first
digest) always goes at once; counted at a real SMTP server, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pytest
from sqlalchemy.engine import Engine

from flows.usecases.bus import unit_of_work
from flows.usecases.digest import send_digests
from flows.usecases.preferences import set_preference
from models.preferences import Category, Choice, Frequency
from models.tables import FollowUpNote
from tests.digest.conftest import Scenario
from tests.digest.test_copil_digest import deliverer_for, morning
from tests.smtp_sink import SmtpSink, body_of

MARC = "marc.aubert@prefecture.example"
JEAN = "jean.lefevre@cc-castelrenaudais.example"
CLAIRE = "claire.moreau@grand-est-touraine.example"


def add_note(engine: Engine, territory: str) -> None:
    with unit_of_work(engine) as uow:
        fa01 = uow.repo.action(territory, "FA-01")
        uow.session.add(
            FollowUpNote(action_id=fa01.id, written_on=date(2024, 6, 12), text="Bail signé.")
        )
        uow.commit()


def choose(engine: Engine, scenario: Scenario, email: str, choice: Choice) -> None:
    with unit_of_work(engine) as uow:
        person = uow.repo.person_by_email(scenario.territory_id, email)
        assert person is not None
        set_preference(uow, person, Category.DIGESTS, choice, actor=person.full_name, via="test")
        uow.commit()


def test_the_convocation_goes_to_everyone_and_later_digests_follow_each_choice(
    engine: Engine,
    scenario: Scenario,
    smtp_sink: SmtpSink,
    example_plan: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIFLOW_WEB_URL", "https://tiflow.grand-est-touraine.example")
    monkeypatch.setenv("TIFLOW_WEB_SECRET_KEY", "une-cle-secrete-de-test-de-plus-de-32-caracteres")
    choose(engine, scenario, MARC, Choice(Frequency.NEVER))
    # Wednesday 19 June at 8 h: the J-3 digest of Monday 17 June waits for it.
    choose(engine, scenario, JEAN, Choice(Frequency.WEEKLY, weekday=2, hour=8))
    received: dict[date, Counter[str]] = {}
    with deliverer_for(smtp_sink) as deliverer:
        day = date(2024, 6, 1)
        while day <= date(2024, 6, 20):
            before = Counter(r for m in smtp_sink.received for r in m.rcpt_tos)
            send_digests(engine, deliverer, now=morning(day))
            after = Counter(r for m in smtp_sink.received for r in m.rcpt_tos)
            if after != before:
                received[day] = after - before
            if day == date(2024, 6, 12):  # news between J-10 and J-3 (else no J-3)
                add_note(engine, example_plan)
            day += timedelta(days=1)
    everyone = Counter({CLAIRE: 1, JEAN: 1, MARC: 1})
    assert received == {
        date(2024, 6, 10): everyone,  # J-10, the convocation: Marc too, Jean at once
        date(2024, 6, 17): Counter({CLAIRE: 1}),  # J-3
        date(2024, 6, 19): Counter({JEAN: 1}),  # J-3, on his weekly day
    }
    (convocation, late) = smtp_sink.messages_to(JEAN)
    assert "(dans 10 jours)" in body_of(convocation)
    assert "jeudi 20 juin 2024" in late["Subject"]
    # The convocation cannot be switched off: no unsubscribe link; the J-3 digest has one.
    assert convocation["List-Unsubscribe"] is None
    assert "/preferences/desabonnement/" in late["List-Unsubscribe"]
