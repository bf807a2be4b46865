"""The « Où en êtes-vous ? » cadence through the real sweep, counted at the SMTP sink, on
SQLite and PostgreSQL: nudges exactly every configured period from the last note whatever the
sweep's cadence (the demo sweeps every 4 weeks: the nudges due in between are enqueued ahead
and the delivery rounds send them on their day), each action on its own dates."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows.usecases.reminders import ReminderSettings
from models.deadlines import NUDGE, paris_date
from models.outbox import OutboxItem, OutboxMessage, OutboxStatus
from models.tables import FollowUpNote
from models.uow import UnitOfWork
from notifications.outbox import deliver_pending
from tests.reminders.conftest import (
    SmallPlan,
    at_8_paris,
    inbox,
    run_day,
    smtp_deliverer,
)
from tests.smtp_sink import SmtpSink

KARIM = "karim.haddad@cc-tev.example"  # pilots FA-02 only: his e-mails are its nudges
HELENE = "helene.garnier@aicr.example"
START = date(2025, 1, 6)  # the actions' start, a Monday


def sent_days(engine: Engine, sink: SmtpSink, address: str, action_id: int) -> list[date]:
    """The Paris days the action's nudges were sent to `address`, from the outbox; every one
    of them reached the SMTP sink."""
    i = OutboxItem.__table__.c  # type: ignore[attr-defined]
    m = OutboxMessage.__table__.c  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(m.subject, m.sent_at)
            .join(OutboxItem, i.message_id == m.id)
            .where(
                i.ref_kind == NUDGE,
                i.ref_id == action_id,
                m.address == address,
                m.status == OutboxStatus.SENT.value,
            )
            .order_by(m.sent_at)
        ).all()
    received = [str(mail["Subject"]) for mail in inbox(sink, address)]
    assert all(r.subject in received for r in rows)
    if address == KARIM:  # he pilots FA-02 only: his e-mails are its nudges, all of them
        assert len(received) == len(rows)
    return [paris_date(r.sent_at) for r in rows]


@pytest.mark.parametrize("cadence", [7, 28])
def test_nudges_go_out_exactly_every_period_whatever_the_sweep_cadence(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink, cadence: int
) -> None:
    note = START + timedelta(days=10)  # Karim writes on 16/01
    with UnitOfWork(engine) as uow:
        uow.session.add(
            FollowUpNote(action_id=plan.fa02, author_id=plan.karim, written_on=note, text="Lancé.")
        )
        uow.commit()
    settings = ReminderSettings(catch_up_days=max(cadence - 1, 3))  # as the demo
    with smtp_deliverer(smtp_sink) as deliverer:
        for n in range(0, 26 * 7):
            day = START + timedelta(days=n)
            if n % cadence == 0:
                run_day(engine, deliverer, day, settings)
            else:  # the outbox's own delivery rounds (every 15 minutes in production)
                deliver_pending(engine, deliverer, now=at_8_paris(day, 8, 5))
    assert sent_days(engine, smtp_sink, KARIM, plan.fa02) == [
        note + timedelta(weeks=w) for w in (6, 12, 18, 24)
    ]
    # Hélène's two actions, silent since their start, on their own calendar too (the same
    # days as a daily sweep, below).
    for action in (plan.fa01, plan.fa03):
        assert sent_days(engine, smtp_sink, HELENE, action) == [
            START + timedelta(weeks=w) for w in (6, 12, 18, 24)
        ]


def test_with_a_daily_sweep_each_action_is_nudged_exactly_six_weeks_after_its_last_note(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    with UnitOfWork(engine) as uow:
        for action_id, author, day in (
            (plan.fa01, plan.helene, START + timedelta(days=3)),
            (plan.fa02, plan.karim, START + timedelta(days=9)),
        ):
            uow.session.add(
                FollowUpNote(action_id=action_id, author_id=author, written_on=day, text="Point.")
            )
        uow.commit()
    settings = ReminderSettings(catch_up_days=3)
    with smtp_deliverer(smtp_sink) as deliverer:
        for n in range(0, 15 * 7):
            run_day(engine, deliverer, START + timedelta(days=n), settings)
    assert sent_days(engine, smtp_sink, KARIM, plan.fa02) == [
        START + timedelta(days=9, weeks=6),
        START + timedelta(days=9, weeks=12),
    ]
    assert sent_days(engine, smtp_sink, HELENE, plan.fa01) == [
        START + timedelta(days=3, weeks=6),
        START + timedelta(days=3, weeks=12),
    ]
    # FA-03 (no note, since its start): on its own days, not in one burst with FA-01.
    assert sent_days(engine, smtp_sink, HELENE, plan.fa03) == [
        START + timedelta(weeks=6),
        START + timedelta(weeks=12),
    ]


def test_a_note_before_the_day_of_a_nudge_enqueued_ahead_leaves_the_other_actions_on_time(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    # Hélène's FA-01 and FA-03, silent since their start, are nudged in one e-mail enqueued
    # 3 days ahead; she writes on FA-01 two days before, and the sweep does not run on the day
    # itself: FA-03's nudge still goes on its day, enqueued again by the sweep in between.
    due = START + timedelta(weeks=6)
    note = due - timedelta(days=2)
    settings = ReminderSettings(catch_up_days=3)
    with smtp_deliverer(smtp_sink) as deliverer:
        for n in range(0, 12 * 7):
            day = START + timedelta(days=n)
            if day == note:
                with UnitOfWork(engine) as uow:
                    uow.session.add(
                        FollowUpNote(
                            action_id=plan.fa01, author_id=plan.helene, written_on=note, text="Ok."
                        )
                    )
                    uow.commit()
            if day == due:
                deliver_pending(engine, deliverer, now=at_8_paris(day, 8, 5))
            else:
                run_day(engine, deliverer, day, settings)
    assert sent_days(engine, smtp_sink, HELENE, plan.fa03) == [due]
    assert sent_days(engine, smtp_sink, HELENE, plan.fa01) == [note + timedelta(weeks=6)]
