"""Reminders follow each pilot's preference, counted at a real SMTP server, on SQLite and
PostgreSQL: weekly (one e-mail a week, each item once), daily at an hour, never (while the
coordinator's alert still goes), and a preference changed in the middle of a week (no item
lost or doubled)."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows.usecases.bus import unit_of_work
from flows.usecases.preferences import PreferenceChanged, record_absence, set_preference
from models import clock
from models.outbox import OutboxItem, OutboxMessage
from models.preferences import (
    Category,
    Choice,
    Frequency,
    PersonPreferenceChange,
    read_unsubscribe_token,
)
from models.tables import Person
from notifications.outbox import deliver_pending
from tests.reminders.conftest import (
    SmallPlan,
    add_milestone,
    at_8_paris,
    inbox,
    run_day,
    smtp_deliverer,
)
from tests.smtp_sink import SmtpSink, body_of

HELENE = "helene.garnier@aicr.example"
KARIM = "karim.haddad@cc-tev.example"
CLAIRE = "claire.moreau@grand-est-touraine.example"
MONDAY = date(2025, 3, 3)
FRIDAY_8 = Choice(Frequency.WEEKLY, weekday=4, hour=8)

M = OutboxMessage.__table__  # type: ignore[attr-defined]
I = OutboxItem.__table__  # type: ignore[attr-defined]  # noqa: E741


def week_of_deadlines(engine: Engine, plan: SmallPlan) -> None:
    """Hélène's week: a J-7 on Monday, a J-1 on Tuesday and J0 on Wednesday (one milestone),
    a J-7 on Thursday. Karim: a J-1 on Tuesday and J0 on Wednesday."""
    add_milestone(engine, plan.fa01, "Cahier des charges des démonstrateurs", date(2025, 3, 10))
    add_milestone(engine, plan.fa03, "Convention avec le CFAI", date(2025, 3, 5))
    add_milestone(engine, plan.fa03, "Ouverture du tiers-lieu", date(2025, 3, 13))
    add_milestone(engine, plan.fa02, "Équipement de l'atelier", date(2025, 3, 5))


def choose(
    engine: Engine, person_id: int, category: Category, choice: Choice, actor: str = "Hélène"
) -> PreferenceChanged:
    with unit_of_work(engine) as uow:
        person = uow.session.get_one(Person, person_id)
        changed = set_preference(uow, person, category, choice, actor=actor, via="test")
        uow.commit()
    return changed


def sent_item_keys(engine: Engine, address: str) -> Counter[str]:
    with engine.connect() as conn:
        keys = conn.execute(
            sa.select(I.c.item_key)
            .join(M, M.c.id == I.c.message_id)
            .where(M.c.address == address, M.c.status == "sent")
        ).scalars()
        return Counter(keys)


def test_weekly_pilot_gets_one_email_on_friday_with_every_item_of_the_week_once(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    week_of_deadlines(engine, plan)
    choose(engine, plan.helene, Category.DEADLINES, FRIDAY_8)
    with smtp_deliverer(smtp_sink) as deliverer:
        for offset in range(4):  # Monday … Thursday
            run_day(engine, deliverer, MONDAY + timedelta(days=offset))
        assert inbox(smtp_sink, HELENE) == []
        assert len(inbox(smtp_sink, KARIM)) == 2  # no preference: J-1 on Tuesday, J0 on Wednesday
        run_day(engine, deliverer, MONDAY + timedelta(days=4))  # Friday
    (mail,) = inbox(smtp_sink, HELENE)
    body = body_of(mail)
    for title in ("Cahier des charges", "Convention avec le CFAI", "Ouverture du tiers-lieu"):
        assert body.count(title) == 1, title
    assert "en retard de 2 jours" in body  # counted from Friday, the day it is read
    keys = sent_item_keys(engine, HELENE)
    assert len(keys) == 4 and set(keys.values()) == {1}  # J-7, J-1, J0, J-7: each once


def test_daily_pilot_gets_the_morning_sweep_at_the_hour_chosen(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    week_of_deadlines(engine, plan)
    choose(engine, plan.helene, Category.DEADLINES, Choice(Frequency.DAILY, hour=10))
    tuesday = MONDAY + timedelta(days=1)
    with smtp_deliverer(smtp_sink) as deliverer:
        run_day(engine, deliverer, tuesday)
        assert inbox(smtp_sink, HELENE) == []
        report = deliver_pending(engine, deliverer, now=at_8_paris(tuesday, hour=10))
    assert report.sent == 1
    (mail,) = inbox(smtp_sink, HELENE)
    assert "Convention avec le CFAI" in body_of(mail)


def test_opted_out_pilot_gets_nothing_while_the_coordinators_alert_still_goes(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    week_of_deadlines(engine, plan)
    choose(engine, plan.helene, Category.DEADLINES, Choice(Frequency.NEVER))
    with smtp_deliverer(smtp_sink) as deliverer:
        for offset in range(5):
            run_day(engine, deliverer, MONDAY + timedelta(days=offset))
        run_day(engine, deliverer, date(2025, 3, 19))  # the CFAI convention 14 days late
    assert inbox(smtp_sink, HELENE) == []
    (alert,) = inbox(smtp_sink, CLAIRE)
    assert "Convention avec le CFAI" in body_of(alert)
    assert "Hélène Garnier" in body_of(alert)


def test_weekly_changed_to_daily_on_wednesday_loses_and_doubles_nothing(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    week_of_deadlines(engine, plan)
    choose(engine, plan.helene, Category.DEADLINES, FRIDAY_8)
    wednesday = MONDAY + timedelta(days=2)
    with smtp_deliverer(smtp_sink) as deliverer:
        for offset in range(3):  # Monday … Wednesday 08:00: all held for Friday
            run_day(engine, deliverer, MONDAY + timedelta(days=offset))
        assert inbox(smtp_sink, HELENE) == []
        with clock.frozen(at_8_paris(wednesday, hour=9)):
            changed = choose(engine, plan.helene, Category.DEADLINES, Choice(Frequency.DAILY))
        assert changed.moved == 1  # the one pending e-mail holding Monday … Wednesday
        deliver_pending(engine, deliverer, now=at_8_paris(wednesday, hour=9))
        assert len(inbox(smtp_sink, HELENE)) == 1
        for offset in range(3, 5):  # Thursday, Friday
            run_day(engine, deliverer, MONDAY + timedelta(days=offset))
    mails = inbox(smtp_sink, HELENE)
    assert len(mails) == 2  # Wednesday's (Monday … Wednesday), Thursday's J-7
    assert "Ouverture du tiers-lieu" in body_of(mails[1])
    keys = sent_item_keys(engine, HELENE)
    assert len(keys) == 4 and set(keys.values()) == {1}


def test_weekly_changed_to_never_mid_week_sends_none_and_history_says_who(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    week_of_deadlines(engine, plan)
    choose(engine, plan.helene, Category.DEADLINES, FRIDAY_8)
    with smtp_deliverer(smtp_sink) as deliverer:
        for offset in range(2):
            run_day(engine, deliverer, MONDAY + timedelta(days=offset))
        changed = choose(
            engine, plan.helene, Category.DEADLINES, Choice(Frequency.NEVER), "Claire Moreau"
        )
        assert changed.dropped == 1
        for offset in range(2, 5):
            run_day(engine, deliverer, MONDAY + timedelta(days=offset))
    assert inbox(smtp_sink, HELENE) == []
    with engine.connect() as conn:
        table = PersonPreferenceChange.__table__  # type: ignore[attr-defined]
        history = conn.execute(
            sa.select(table.c.frequency, table.c.actor).order_by(table.c.id)
        ).all()
        reasons = conn.execute(
            sa.select(M.c.drop_reason).where(M.c.address == HELENE, M.c.status == "dropped")
        ).scalars()
        # Monday's e-mail was folded into Tuesday's, which the change then called off.
        assert sorted(reasons) == ["opted_out", "superseded"]
    assert [tuple(h) for h in history] == [("weekly", "Hélène"), ("never", "Claire Moreau")]


def away(
    engine: Engine, plan: SmallPlan, ends_on: date, delegate: int | None, hold: bool = False
) -> str:
    with unit_of_work(engine) as uow:
        helene = uow.session.get_one(Person, plan.helene)
        other = uow.session.get_one(Person, delegate) if delegate else None
        text = record_absence(
            uow, helene, MONDAY, ends_on, delegate=other, hold=hold, actor="Hélène Garnier"
        )
        uow.commit()
    return text


def test_absent_pilots_reminders_go_to_the_delegate_on_her_behalf(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    week_of_deadlines(engine, plan)
    summary = away(engine, plan, date(2025, 3, 7), plan.karim)
    assert summary == (
        "Hélène Garnier : absence du 03/03/2025 au 07/03/2025, rappels à Karim Haddad"
    )
    with smtp_deliverer(smtp_sink) as deliverer:
        for offset in range(2):  # Monday, Tuesday
            run_day(engine, deliverer, MONDAY + timedelta(days=offset))
        assert inbox(smtp_sink, HELENE) == []
        monday, tuesday = inbox(smtp_sink, KARIM)
        assert "Cahier des charges" in body_of(monday)
        assert "pour le compte de Hélène Garnier, pendant son absence" in body_of(monday)
        assert "Équipement de l'atelier" in body_of(tuesday)  # his own, in the same e-mail
        assert "Convention avec le CFAI" in body_of(tuesday)
        run_day(engine, deliverer, MONDAY + timedelta(days=2))  # Wednesday: the J0, away
    (alert,) = inbox(smtp_sink, CLAIRE)
    assert "pendant l'absence de leur pilote" in body_of(alert)
    assert "Convention avec le CFAI" in body_of(alert) and "Hélène Garnier" in body_of(alert)


def test_absent_pilot_who_chose_to_wait_gets_everything_once_on_her_return(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    week_of_deadlines(engine, plan)
    summary = away(engine, plan, date(2025, 3, 5), plan.karim, hold=True)
    assert summary.endswith("rappels gardés jusqu'au retour")
    with smtp_deliverer(smtp_sink) as deliverer:
        for offset in range(3):  # Monday … Wednesday: away
            run_day(engine, deliverer, MONDAY + timedelta(days=offset))
        assert inbox(smtp_sink, HELENE) == []
        assert all("Cahier" not in body_of(m) for m in inbox(smtp_sink, KARIM))
        run_day(engine, deliverer, MONDAY + timedelta(days=3))  # Thursday: back
    (mail,) = inbox(smtp_sink, HELENE)
    body = body_of(mail)
    for title in ("Cahier des charges", "Convention avec le CFAI", "Ouverture du tiers-lieu"):
        assert body.count(title) == 1, title
    assert len(inbox(smtp_sink, CLAIRE)) == 1  # told of the J0 that fell while she was away
    keys = sent_item_keys(engine, HELENE)
    assert len(keys) == 4 and set(keys.values()) == {1}


def test_reminders_carry_a_one_click_unsubscribe_and_the_alert_does_not(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "une-cle-secrete-de-test-longue-de-plus-de-32-caracteres"
    monkeypatch.setenv("TIFLOW_WEB_URL", "https://tiflow.grand-est-touraine.example")
    monkeypatch.setenv("TIFLOW_WEB_SECRET_KEY", secret)
    add_milestone(engine, plan.fa03, "Convention avec le CFAI", date(2025, 3, 5))
    with smtp_deliverer(smtp_sink) as deliverer:
        run_day(engine, deliverer, date(2025, 3, 19))  # 14 days late: reminder and alert
    (reminder,) = inbox(smtp_sink, HELENE)
    (alert,) = inbox(smtp_sink, CLAIRE)
    url = reminder["List-Unsubscribe"].strip("<>")
    prefix = "https://tiflow.grand-est-touraine.example/preferences/desabonnement/"
    assert url.startswith(prefix)
    token = url.removeprefix(prefix)
    assert read_unsubscribe_token(secret.encode(), token) == (plan.helene, Category.DEADLINES)
    assert reminder["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert alert["List-Unsubscribe"] is None  # an obligation: nothing to unsubscribe from
