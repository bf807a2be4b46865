"""Two sweeps of one day at once (issue 20): planning and enqueuing are serialised, so they
give exactly what one sweep gives; a day dropped by the old race is re-created on re-run.
On SQLite and PostgreSQL, counted at a real SMTP server."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows.usecases import reminders
from flows.usecases.reminders import enqueued_fr, plan_and_enqueue
from models.outbox import OutboxMessage
from notifications.outbox import deliver_pending
from tests.outbox.conftest import deliveries
from tests.reminders.conftest import QUIET, SmallPlan, add_milestone, at_8_paris, smtp_deliverer
from tests.smtp_sink import SmtpSink

D = date(2025, 3, 10)  # lundi
M = OutboxMessage.__table__  # type: ignore[attr-defined]


def outbox_rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(M).order_by(M.c.id)).all())


@pytest.fixture
def two_due(engine: Engine, plan: SmallPlan) -> SmallPlan:
    add_milestone(engine, plan.fa01, "Installation des démonstrateurs", D + timedelta(days=7))
    add_milestone(engine, plan.fa02, "Cahier des charges", D + timedelta(days=7))
    return plan


def test_two_sweeps_interleaved_between_planning_steps_enqueue_what_one_sweep_would(
    engine: Engine, two_due: SmallPlan, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = at_8_paris(D)
    at_seam, first_done = threading.Event(), threading.Event()

    def hold_the_second_sweep_between_its_two_reads() -> None:
        if threading.current_thread().name == "second":
            at_seam.set()
            # The old code let the first sweep plan, enqueue and commit right here; the
            # sweep lock makes it wait instead, so this wait only ends by its timeout.
            first_done.wait(timeout=2)

    monkeypatch.setattr(
        reminders, "between_planning_steps", hold_the_second_sweep_between_its_two_reads
    )
    results: dict[str, Any] = {}
    second = threading.Thread(
        target=lambda: results.setdefault("second", plan_and_enqueue(engine, D, QUIET, now=now)),
        name="second",
    )
    second.start()
    assert at_seam.wait(timeout=60)
    results["first"] = plan_and_enqueue(engine, D, QUIET, now=now)
    first_done.set()
    second.join(timeout=120)

    summaries = [results["first"][1], results["second"][1]]
    assert sorted(s.messages for s in summaries) == [0, 2]  # one sweep did the day
    idle = next(s for s in summaries if not s.messages)
    assert idle.already_queued == 2
    assert "déjà en file" in enqueued_fr(idle)
    rows = outbox_rows(engine)
    assert [(r.status, r.superseded_by) for r in rows] == [("pending", None)] * 2
    assert all(r.superseded_by != r.id for r in rows)

    with smtp_deliverer(smtp_sink) as deliverer:
        report = deliver_pending(engine, deliverer, now=now)
    assert report.sent == 2
    counts = deliveries(smtp_sink)
    assert len(counts) == 2 and set(counts.values()) == {1}


def test_two_sweeps_in_threads_never_drop_the_day(
    engine: Engine, two_due: SmallPlan, smtp_sink: SmtpSink
) -> None:
    now = at_8_paris(D)
    start = threading.Barrier(4)
    done: list[Any] = []

    def sweep() -> None:
        start.wait(timeout=60)
        done.append(plan_and_enqueue(engine, D, QUIET, now=now)[1])

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(s.messages for s in done) == [0, 0, 0, 2]
    assert [r.status for r in outbox_rows(engine)] == ["pending", "pending"]
    with smtp_deliverer(smtp_sink) as deliverer:
        assert deliver_pending(engine, deliverer, now=now).sent == 2
    assert set(deliveries(smtp_sink).values()) == {1}


def test_rerun_of_a_day_whose_rows_were_superseded_by_themselves_recreates_them(
    engine: Engine, two_due: SmallPlan, smtp_sink: SmtpSink
) -> None:
    now = at_8_paris(D)
    plan_and_enqueue(engine, D, QUIET, now=now)
    # What the old race left behind: every row dropped, each "superseded" by itself.
    with engine.begin() as conn:
        conn.execute(
            sa.update(M).values(status="dropped", drop_reason="superseded", superseded_by=M.c.id)
        )
    again = plan_and_enqueue(engine, D, QUIET, now=now + timedelta(hours=1))[1]
    assert (again.messages, again.recreated) == (2, 2)
    assert "recréé" in enqueued_fr(again)
    live = [r for r in outbox_rows(engine) if r.status == "pending"]
    assert len(live) == 2 and all(r.key.startswith("reminder:") for r in live)
    with smtp_deliverer(smtp_sink) as deliverer:
        assert deliver_pending(engine, deliverer, now=now + timedelta(hours=1)).sent == 2
    assert set(deliveries(smtp_sink).values()) == {1}
    # Running the day once more creates nothing: the re-created rows hold the keys now.
    assert plan_and_enqueue(engine, D, QUIET, now=now + timedelta(hours=2))[1].messages == 0


def test_the_operator_lists_a_days_messages_per_action(engine: Engine, two_due: SmallPlan) -> None:
    from models.uow import UnitOfWork
    from notifications.outbox import list_messages

    plan_and_enqueue(engine, D, QUIET, now=at_8_paris(D))
    with UnitOfWork(engine) as uow:
        about_fa01 = list_messages(uow.session, action_ids=[two_due.fa01])
        about_fa03 = list_messages(uow.session, action_ids=[two_due.fa03])
        reminders_ = list_messages(uow.session, kind="reminder", status="pending")
    assert [r.address for r in about_fa01] == ["helene.garnier@aicr.example"]
    assert about_fa03 == []
    assert len(reminders_) == 2
