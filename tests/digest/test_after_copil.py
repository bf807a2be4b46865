"""After a COPIL: the record of its decisions the day after, to the members and the pilots
concerned, once; the minutes reminder to the coordinator at J+3 and J+7 until the minutes are
recorded. Counted at the real SMTP sink, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows.usecases.after_copil import (
    DECISION_RECORD,
    MINUTES_REMINDER,
    AfterCopil,
    enqueue_after_copil,
    record_minutes,
)
from flows.usecases.bus import unit_of_work
from flows.usecases.copil import DecisionInput, hold_copil
from models import clock
from models.errors import InvalidInput
from models.lifecycle import State
from models.outbox import OutboxMessage
from models.tables import ActionSheet, CopilMeeting, Person
from notifications.outbox import DeliveryReport, deliver_pending
from notifications.transports import Deliverer
from tests.digest.conftest import JUNE, Scenario
from tests.smtp_sink import SmtpSink, body_of

PARIS = ZoneInfo("Europe/Paris")
COORDINATOR = "claire.moreau@grand-est-touraine.example"
KINDS = [DECISION_RECORD, MINUTES_REMINDER]


def morning(day: date) -> datetime:
    return datetime.combine(day, time(8, 15), tzinfo=PARIS).astimezone(UTC)


def deliverer_for(sink: SmtpSink) -> Deliverer:
    return Deliverer(f"copil,pilots,coordinator={sink.url('tiflow@grand-est-touraine.example')}")


def run_day(engine: Engine, sink: SmtpSink, day: date) -> tuple[AfterCopil, DeliveryReport]:
    """One « suites-copil » run of `day`: enqueue what is due, then one delivery round."""
    with clock.frozen(morning(day)):
        with unit_of_work(engine) as uow:
            done = enqueue_after_copil(uow, day)
            uow.commit()
        with deliverer_for(sink) as deliverer:
            report = deliver_pending(engine, deliverer, kinds=KINDS, now=morning(day))
    return done, report


def hold_june_copil(engine: Engine, scenario: Scenario) -> list[str]:
    """The June COPIL validates FA-03 with a condition, asks FA-04 for a revision and
    validates the 2024 budget; returns the pilots' addresses."""
    with clock.frozen(JUNE + timedelta(hours=3)), unit_of_work(engine) as uow:
        hold_copil(
            uow,
            scenario.copil,
            [
                DecisionInput("FA-03", State.VALIDATED, conditions="Bilan d'étape en octobre"),
                DecisionInput("FA-04", State.REVISION_REQUESTED, comment="Chiffrer la 5G"),
            ],
            budget_year=2024,
            validated_budget=Decimal("1035000"),
        )
        uow.commit()
        pilots = []
        for number in ("FA-03", "FA-04"):
            action = uow.session.execute(
                sa.select(ActionSheet).where(ActionSheet.number == number)  # type: ignore[arg-type]
            ).scalar_one()
            pilots.append(uow.session.get_one(Person, action.pilot_id).email)
        return pilots


def test_the_day_after_the_copil_members_and_pilots_get_its_record_of_decisions_once(
    engine: Engine, scenario: Scenario, smtp_sink: SmtpSink
) -> None:
    pilots = hold_june_copil(engine, scenario)
    same_day, _ = run_day(engine, smtp_sink, date(2024, 6, 20))
    assert same_day.records == [] and smtp_sink.received == []
    for day in (date(2024, 6, 21), date(2024, 6, 21), date(2024, 6, 22)):  # re-run, next day
        run_day(engine, smtp_sink, day)
    per_person = Counter(r for m in smtp_sink.received for r in m.rcpt_tos)
    assert per_person == Counter({email: 1 for email in {*scenario.members, *pilots}})
    (mail,) = smtp_sink.messages_to("marc.aubert@prefecture.example")
    assert mail["Subject"] == "Relevé de décisions du COPIL du 20/06/2024 (Grand Est Touraine)"
    assert mail["Reply-To"] == f"Claire Moreau <{COORDINATOR}>"
    text = body_of(mail).replace("\u00a0", " ").replace("\u202f", " ")
    assert "s'est réuni le jeudi 20 juin 2024 à 10 h, Salle du conseil, Château-Renault" in text
    assert "Il a pris 2 décisions" in text
    assert "FA-03 « Lieu d'accueil de start-up" in text
    assert "» : validée ; conditions : Bilan d'étape en octobre" in text
    assert "» : révision demandée ; commentaire : Chiffrer la 5G" in text
    assert "Budget 2024 validé : 1 035 000,00 €." in text


def test_the_minutes_are_reminded_at_j3_and_j7_then_never_once_recorded(
    engine: Engine, scenario: Scenario, smtp_sink: SmtpSink
) -> None:
    hold_june_copil(engine, scenario)
    days = [date(2024, 6, 21) + timedelta(days=n) for n in range(10)]  # daily, to 30/06
    reminders = [run_day(engine, smtp_sink, day)[0].reminders for day in days]
    assert [(d, r) for d, r in zip(days, reminders, strict=True) if r] == [
        (date(2024, 6, 23), ["COPIL du 20/06/2024 (J+3)"]),
        (date(2024, 6, 27), ["COPIL du 20/06/2024 (J+7)"]),
    ]
    mails = smtp_sink.messages_to(COORDINATOR)
    subjects = [m["Subject"] for m in mails if "Compte rendu" in m["Subject"]]
    assert (
        subjects == ["Compte rendu du COPIL du 20/06/2024 à enregistrer (Grand Est Touraine)"] * 2
    )
    assert "s'est tenu il y a 3 jours" in body_of(mails[1]).replace("\u00a0", " ")
    assert "tiflow copil compte-rendu" in body_of(mails[1])


def test_minutes_recorded_before_the_reminder_leaves_drop_it_and_stop_the_next(
    engine: Engine, scenario: Scenario, smtp_sink: SmtpSink
) -> None:
    hold_june_copil(engine, scenario)
    run_day(engine, smtp_sink, date(2024, 6, 21))  # the record of decisions went out
    smtp_sink.stop()
    done, down = run_day(engine, smtp_sink, date(2024, 6, 23))  # J+3, SMTP down
    assert done.reminders and down.retry == 1
    with clock.frozen(morning(date(2024, 6, 24))), unit_of_work(engine) as uow:
        record_minutes(uow, scenario.copil, "Compte rendu relu par les élus.")
        uow.commit()
    smtp_sink.restart()
    _, after = run_day(engine, smtp_sink, date(2024, 6, 24))
    j7, _ = run_day(engine, smtp_sink, date(2024, 6, 27))
    assert after.dropped == 1 and j7.reminders == []
    assert [m for m in smtp_sink.received if "Compte rendu" in m.message["Subject"]] == []
    with engine.connect() as conn:
        copil = conn.execute(
            sa.select(CopilMeeting.__table__).where(  # type: ignore[attr-defined]
                CopilMeeting.__table__.c.id == scenario.copil  # type: ignore[attr-defined]
            )
        ).one()
    assert copil.minutes == "Compte rendu relu par les élus."
    assert copil.minutes_recorded_at is not None


def test_minutes_of_a_copil_not_held_or_empty_are_refused_and_nothing_written(
    engine: Engine, scenario: Scenario
) -> None:
    with unit_of_work(engine) as uow, pytest.raises(InvalidInput) as not_held:
        record_minutes(uow, scenario.copil, "Compte rendu")
    assert "COPIL du 20/06/2024 (n° " in str(not_held.value) and "prévu" in str(not_held.value)
    with unit_of_work(engine) as uow, pytest.raises(InvalidInput) as empty:
        record_minutes(uow, scenario.previous, "   ")
    assert str(empty.value) == "Compte rendu : le texte est vide."
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        minutes = conn.execute(sa.select(CopilMeeting.__table__.c.minutes)).scalars()  # type: ignore[attr-defined]
        assert set(minutes) == {None}
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0
