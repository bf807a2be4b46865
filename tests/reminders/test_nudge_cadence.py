"""The « Où en êtes-vous ? » cadence through the real sweep, counted at the SMTP sink, on
SQLite and PostgreSQL: the configured period between two nudges whatever the sweep's cadence
(the demo sweeps every 4 weeks), each action on its own dates."""

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
from tests.reminders.conftest import (
    SmallPlan,
    inbox,
    run_day,
    smtp_deliverer,
)
from tests.smtp_sink import SmtpSink

KARIM = "karim.haddad@cc-tev.example"  # pilots FA-02 only: his e-mails are its nudges
HELENE = "helene.garnier@aicr.example"
START = date(2025, 1, 6)  # the actions' start, a Monday


def nudge_days(engine: Engine, sink: SmtpSink, address: str, action_id: int) -> list[date]:
    """The Paris days the action's nudges were sent to `address`, from the outbox; every one
    of them reached the SMTP sink."""
    i = OutboxItem.__table__.c  # type: ignore[attr-defined]
    m = OutboxMessage.__table__.c  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(m.subject, m.created_at)
            .join(OutboxItem, i.message_id == m.id)
            .where(
                i.ref_kind == NUDGE,
                i.ref_id == action_id,
                m.address == address,
                m.status == OutboxStatus.SENT.value,
            )
            .order_by(m.created_at)
        ).all()
    received = [str(mail["Subject"]) for mail in inbox(sink, address)]
    assert all(r.subject in received for r in rows)
    if address == KARIM:  # he pilots FA-02 only: his e-mails are its nudges, all of them
        assert len(received) == len(rows)
    return [paris_date(r.created_at) for r in rows]


@pytest.mark.parametrize("cadence", [7, 28])
def test_nudges_keep_the_configured_period_whatever_the_sweep_cadence(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink, cadence: int
) -> None:
    note = START + timedelta(days=10)  # Karim writes on 16/01
    with UnitOfWork(engine) as uow:
        uow.session.add(
            FollowUpNote(action_id=plan.fa02, author_id=plan.karim, written_on=note, text="Lancé.")
        )
        uow.commit()
    settings = ReminderSettings(catch_up_days=cadence - 1)  # as the demo: nothing is missed
    with smtp_deliverer(smtp_sink) as deliverer:
        for n in range(0, 40 * 7, cadence):
            run_day(engine, deliverer, START + timedelta(days=n), settings)
    sent = nudge_days(engine, smtp_sink, KARIM, plan.fa02)
    gaps = [(b - a).days for a, b in zip([note, *sent], sent, strict=False)]
    assert len(sent) >= 3 and all(42 <= gap < 42 + cadence for gap in gaps), (sent, gaps)
    # Hélène's two actions, silent since their start, are nudged on their own calendar too.
    helene = nudge_days(engine, smtp_sink, HELENE, plan.fa01)
    assert helene and all(
        (b - a).days >= 42 for a, b in zip([START, *helene], helene, strict=False)
    )


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
    assert nudge_days(engine, smtp_sink, KARIM, plan.fa02) == [
        START + timedelta(days=9, weeks=6),
        START + timedelta(days=9, weeks=12),
    ]
    assert nudge_days(engine, smtp_sink, HELENE, plan.fa01) == [
        START + timedelta(days=3, weeks=6),
        START + timedelta(days=3, weeks=12),
    ]
    # FA-03 (no note, since its start): on its own days, not in one burst with FA-01.
    assert nudge_days(engine, smtp_sink, HELENE, plan.fa03) == [
        START + timedelta(weeks=6),
        START + timedelta(weeks=12),
    ]
