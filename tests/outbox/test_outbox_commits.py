"""What a delivery round writes per message (issue 18): on PostgreSQL each outcome travels with
the next claim, one statement and one round trip; on SQLite each is its own commit. Counted on
the real databases, with the statements as the driver receives them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import models.db
import notifications.smtp
from models.outbox import DeliveryPhase
from notifications.outbox import deliver_pending
from tests.outbox.conftest import Locker, deliveries, smtp_deliverer
from tests.outbox.test_outbox_delivery import T0, notice, statuses, store
from tests.smtp_sink import SmtpSink


@contextmanager
def outbox_writes(engine: Engine) -> Iterator[list[str]]:
    """The statements that change ``outbox_message``, in the order the driver got them."""
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *_: object) -> None:
        text = " ".join(statement.split())
        if text.startswith(("UPDATE outbox_message", "WITH recorded AS")):
            seen.append(text)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def writes_for(engine: Engine, smtp_sink: SmtpSink, notices: range) -> list[str]:
    store(engine, [notice(n) for n in notices])  # 3 messages each
    with smtp_deliverer(smtp_sink) as deliverer, outbox_writes(engine) as seen:
        report = deliver_pending(engine, deliverer, now=T0)
    assert report.sent == 3 * len(notices)
    return seen


def test_each_further_message_costs_two_writes_on_postgresql_and_three_on_sqlite(
    engine: Engine, smtp_sink: SmtpSink
) -> None:
    few = writes_for(engine, smtp_sink, range(1, 2))  # 3 messages
    many = writes_for(engine, smtp_sink, range(2, 5))  # 9 messages
    per_message = 2 if engine.dialect.name == "postgresql" else 3
    assert len(many) - len(few) == 6 * per_message
    paired = [s for s in many if s.startswith("WITH recorded AS")]
    if engine.dialect.name == "postgresql":
        assert len(paired) == 8  # every claim but the first carries the previous outcome
    else:
        assert paired == []
    assert statuses(engine) == {"sent": 12}
    assert set(deliveries(smtp_sink).values()) == {1}


def test_a_lock_taken_right_after_a_reply_is_waited_for_and_each_message_goes_once(
    engine: Engine, impatient: Engine, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outcome of the first message is written (with the next claim, on PostgreSQL) while
    another transaction holds the table past the driver's timeout: retried, not lost."""
    monkeypatch.setattr(models.db, "BUSY_PAUSE", 0.01)
    store(engine, [notice(12)])
    locker = Locker(engine)
    retries: list[str] = []

    def lock_at_the_first_reply(phase: DeliveryPhase) -> None:
        if phase == DeliveryPhase.REPLIED and not retries and locker.held is None:
            locker.take()

    def release_on_retry(what: str) -> None:
        retries.append(what)
        locker.release()

    monkeypatch.setattr(notifications.smtp, "phase_reached", lock_at_the_first_reply)
    monkeypatch.setattr(models.db, "on_busy_retry", release_on_retry)
    try:
        with smtp_deliverer(smtp_sink) as deliverer:
            report = deliver_pending(impatient, deliverer, now=T0)
    finally:
        locker.release()
    waited = "l'enregistrement du résultat"
    if engine.dialect.name == "postgresql":
        waited += " et la prise en charge"
    assert retries[0] == waited
    assert (report.sent, report.failed, report.in_doubt) == (3, 0, 0)
    assert statuses(engine) == {"sent": 3}
    counts = deliveries(smtp_sink)
    assert len(counts) == 3 and set(counts.values()) == {1}
