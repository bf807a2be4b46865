"""An absence cancelled or shortened: the reminders held for the return then go as normal,
each item once, counted at a real SMTP server; the history says who; bad requests are
refused in French and change nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from flows.usecases.bus import unit_of_work
from flows.usecases.preferences import end_absence
from models import clock
from models.preferences import PersonAbsence, PersonAbsenceChange, PreferenceError
from models.tables import Person
from notifications.transports import Deliverer
from tests.reminders.conftest import (
    SmallPlan,
    add_milestone,
    at_8_paris,
    inbox,
    run_day,
    smtp_deliverer,
)
from tests.reminders.test_reminder_preferences import (
    HELENE,
    MONDAY,
    away,
    sent_item_keys,
)
from tests.smtp_sink import SmtpSink, body_of

TUESDAY, WEDNESDAY = MONDAY + timedelta(days=1), MONDAY + timedelta(days=2)


def end(engine: Engine, plan: SmallPlan, on: date, ends_on: date | None) -> str:
    """Hélène's only absence ended at noon on ``on`` by Claire, on her request."""
    with clock.frozen(at_8_paris(on, 12)), unit_of_work(engine) as uow:
        helene = uow.session.get_one(Person, plan.helene)
        (absence,) = uow.session.exec(select(PersonAbsence)).all()
        assert absence.id is not None
        text = end_absence(
            uow, helene, absence.id, ends_on=ends_on, actor="Claire Moreau", via="test"
        )
        uow.commit()
    return text


def one_reminder_held(
    engine: Engine, plan: SmallPlan, deliverer: Deliverer, sink: SmtpSink
) -> None:
    """Hélène away Monday … Friday, keeping her reminders: the J-7 of her one milestone
    (Monday) is held; nothing else falls due before Sunday."""
    add_milestone(engine, plan.fa01, "Cahier des charges des démonstrateurs", date(2025, 3, 10))
    away(engine, plan, date(2025, 3, 7), None, hold=True)
    run_day(engine, deliverer, MONDAY)
    assert inbox(sink, HELENE) == []


def test_a_cancelled_absence_lets_the_held_reminders_go_with_the_next_sweep(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    with smtp_deliverer(smtp_sink) as deliverer:
        one_reminder_held(engine, plan, deliverer, smtp_sink)
        text = end(engine, plan, MONDAY, None)
        assert text == (
            "Hélène Garnier : absence du 03/03/2025 au 07/03/2025 annulée ; 1 rappel gardé"
            " repart normalement"
        )
        run_day(engine, deliverer, TUESDAY)  # not Saturday: she is back
        (mail,) = inbox(smtp_sink, HELENE)
        for day in range(2, 5):
            run_day(engine, deliverer, MONDAY + timedelta(days=day))
    assert len(inbox(smtp_sink, HELENE)) == 1
    assert body_of(mail).count("Cahier des charges") == 1
    assert "dans 6 jours" in body_of(mail)  # written for Tuesday, the day she reads it
    assert set(sent_item_keys(engine, HELENE).values()) == {1}  # every item once
    with unit_of_work(engine) as uow:
        (change,) = uow.session.exec(select(PersonAbsenceChange)).all()
        assert (change.actor, change.via, change.ends_on) == ("Claire Moreau", "test", None)
        assert change.previous_ends_on == date(2025, 3, 7)
        assert uow.session.exec(select(PersonAbsence)).one().cancelled_at is not None


def test_a_shortened_absence_sends_what_was_held_on_the_new_day_of_return(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    with smtp_deliverer(smtp_sink) as deliverer:
        one_reminder_held(engine, plan, deliverer, smtp_sink)
        text = end(engine, plan, MONDAY, TUESDAY)  # back on Wednesday instead of Saturday
        assert "écourtée au 04/03/2025 ; 1 rappel gardé repart normalement" in text
        run_day(engine, deliverer, TUESDAY)
        assert inbox(smtp_sink, HELENE) == []  # still away on Tuesday
        run_day(engine, deliverer, WEDNESDAY)
        (mail,) = inbox(smtp_sink, HELENE)
        run_day(engine, deliverer, WEDNESDAY + timedelta(days=1))
    assert len(inbox(smtp_sink, HELENE)) == 1
    assert body_of(mail).count("Cahier des charges") == 1
    assert set(sent_item_keys(engine, HELENE).values()) == {1}


def test_an_absence_that_is_over_or_a_date_that_does_not_shorten_it_is_refused(
    engine: Engine, plan: SmallPlan
) -> None:
    away(engine, plan, date(2025, 3, 7), None, hold=True)
    with pytest.raises(PreferenceError, match="pour la prolonger"):
        end(engine, plan, MONDAY, date(2025, 3, 10))
    with pytest.raises(PreferenceError, match="ne peut précéder le premier"):
        end(engine, plan, MONDAY, date(2025, 3, 2))
    with pytest.raises(PreferenceError, match="déjà terminée"):
        end(engine, plan, date(2025, 3, 10), None)
    with unit_of_work(engine) as uow:
        assert uow.session.exec(select(PersonAbsenceChange)).all() == []
        assert uow.session.exec(select(PersonAbsence)).one().ends_on == date(2025, 3, 7)
