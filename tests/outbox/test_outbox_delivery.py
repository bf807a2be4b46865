"""The outbox on SQLite and PostgreSQL against a real SMTP server on loopback: stored first,
delivered once, nothing lost when SMTP is down, one refused recipient does not block others."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from models.outbox import OutboxMessage, OutboxStatus
from models.uow import UnitOfWork
from notifications.message import Attachment
from notifications.outbox import (
    DeliveryPolicy,
    NewMessage,
    Recipient,
    deliver_pending,
    enqueue,
    requeue,
    status_counts,
)
from tests.outbox.conftest import deliveries, smtp_deliverer
from tests.smtp_sink import SmtpSink, body_of

PILOTS = [
    Recipient("Hélène Garnier <helene.garnier@aicr.example>"),
    Recipient("Karim Haddad <karim.haddad@cc-tev.example>"),
    Recipient("Isabelle Roux <isabelle.roux@uimm-touraine.example>"),
]
T0 = datetime(2025, 3, 10, 7, 0, tzinfo=UTC)  # lundi 10 mars 2025, 8 h à Paris


def notice(number: int, to: list[Recipient] | None = None, **extra: object) -> NewMessage:
    fields: dict = {
        "key": f"notice:fa-{number:02d}:2025-03-10",
        "kind": "notice",
        "tag": "pilots",
        "to": PILOTS if to is None else to,
        "subject": f"Action FA-{number:02d} : décision du COPIL",
        "text": f"L'action FA-{number:02d} a été validée en COPIL.",
        "html": f"<p>L'action FA-{number:02d} a été validée en COPIL.</p>",
    }
    fields.update(extra)
    return NewMessage(**fields)


def store(engine: Engine, messages: list[NewMessage], now: datetime = T0) -> list[int]:
    with UnitOfWork(engine) as uow:
        result = enqueue(uow, messages, now=now)
        uow.commit()
    return result.created


def rows(engine: Engine) -> list[OutboxMessage]:
    with UnitOfWork(engine) as uow:
        found = list(uow.session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))))
        uow.session.expunge_all()  # readable after the unit of work ends
    return found


def statuses(engine: Engine) -> dict[str, int]:
    with UnitOfWork(engine) as uow:
        return status_counts(uow)


def test_enqueuing_the_same_message_twice_stores_one_row_per_recipient(engine: Engine) -> None:
    first = store(engine, [notice(1), notice(2)])
    with UnitOfWork(engine) as uow:
        again = enqueue(uow, [notice(1), notice(2)], now=T0)
        uow.commit()
    assert len(first) == 6
    assert again.created == [] and again.existing == 6
    assert {(r.key, r.address) for r in rows(engine)} == {
        (f"notice:fa-{n:02d}:2025-03-10", p.mailbox.split("<")[1].rstrip(">"))
        for n in (1, 2)
        for p in PILOTS
    }
    assert statuses(engine) == {"pending": 6}


def test_running_the_round_twice_delivers_each_message_exactly_once(
    engine: Engine, smtp_sink: SmtpSink
) -> None:
    store(engine, [notice(n) for n in range(1, 5)])
    with smtp_deliverer(smtp_sink) as deliverer:
        first = deliver_pending(engine, deliverer, now=T0)
        second = deliver_pending(engine, deliverer, now=T0 + timedelta(hours=1))
    assert (first.sent, second.sent) == (12, 0)
    counts = deliveries(smtp_sink)
    assert len(counts) == 12 and set(counts.values()) == {1}
    assert statuses(engine) == {"sent": 12}
    assert all(r.sent_at is not None and r.attempts == 1 for r in rows(engine))


def test_round_interrupted_after_three_sends_resumes_without_sending_twice(
    engine: Engine, smtp_sink: SmtpSink
) -> None:
    store(engine, [notice(n) for n in range(1, 4)])  # 9 messages

    class Crash(Exception):
        pass

    sent: list[int] = []

    def crash_after_three(row_id: int) -> None:
        sent.append(row_id)
        if len(sent) == 3:
            raise Crash("the worker died")

    with smtp_deliverer(smtp_sink) as deliverer, pytest.raises(Crash):
        deliver_pending(engine, deliverer, now=T0, on_sent=crash_after_three)
    assert len(smtp_sink.received) == 3
    assert statuses(engine) == {"sent": 3, "pending": 6}
    with smtp_deliverer(smtp_sink) as deliverer:
        resumed = deliver_pending(engine, deliverer, now=T0 + timedelta(minutes=5))
    assert resumed.sent == 6 and resumed.in_doubt == 0
    counts = deliveries(smtp_sink)
    assert len(counts) == 9 and set(counts.values()) == {1}


KILLER = """
import os, sys
from datetime import datetime, UTC
from notifications.transports import Deliverer
from models.db import make_engine
from notifications.outbox import deliver_pending

engine = make_engine(sys.argv[1])
count = 0

def kill_after_two(row_id):
    global count
    count += 1
    if count == 2:
        os._exit(9)  # like kill -9: no clean-up, no exception handler

with Deliverer(sys.argv[2]) as deliverer:
    deliver_pending(engine, deliverer, now=datetime(2025, 3, 10, 7, 0, tzinfo=UTC),
                    on_sent=kill_after_two)
"""


def test_process_killed_mid_round_then_restarted_delivers_each_message_once(
    engine: Engine, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    store(engine, [notice(1), notice(2)])  # 6 messages
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    url = engine.url.render_as_string(hide_password=False)
    config = f"pilots={smtp_sink.url('tiflow@grand-est-touraine.example')}"
    root = Path(__file__).resolve().parents[2]
    killed = subprocess.run(
        [sys.executable, str(script), url, config],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=60,
    )
    assert killed.returncode == 9, killed.stderr.decode()
    assert len(smtp_sink.received) == 2
    with smtp_deliverer(smtp_sink) as deliverer:
        resumed = deliver_pending(engine, deliverer, now=T0 + timedelta(minutes=5))
    assert resumed.sent == 4
    counts = deliveries(smtp_sink)
    assert len(counts) == 6 and set(counts.values()) == {1}


def test_smtp_down_keeps_every_message_pending_and_the_next_run_delivers_them(
    engine: Engine, smtp_sink: SmtpSink
) -> None:
    store(engine, [notice(1), notice(2)])
    smtp_sink.stop()
    with smtp_deliverer(smtp_sink) as deliverer:
        down = deliver_pending(engine, deliverer, now=T0)
    assert (down.sent, down.retry, down.failed) == (0, 6, 0)
    pending = rows(engine)
    assert {r.status for r in pending} == {OutboxStatus.PENDING}
    assert all(r.attempts == 1 and r.next_attempt_at == T0 + timedelta(minutes=15) for r in pending)
    assert all("indisponible" in (r.last_error or "") for r in pending)

    smtp_sink.restart()  # up again, on the same port
    with smtp_deliverer(smtp_sink) as deliverer:
        too_early = deliver_pending(engine, deliverer, now=T0 + timedelta(minutes=10))
        next_run = deliver_pending(engine, deliverer, now=T0 + timedelta(days=1))
    assert too_early.attempted == 0  # the back-off is respected
    assert next_run.sent == 6
    assert set(deliveries(smtp_sink).values()) == {1} and len(smtp_sink.received) == 6
    assert all(r.status is OutboxStatus.SENT and r.attempts == 2 for r in rows(engine))


def test_refused_recipient_is_recorded_failed_while_the_others_receive_it(
    engine: Engine, smtp_sink: SmtpSink
) -> None:
    store(engine, [notice(7)])
    smtp_sink.refuse.add("karim.haddad@cc-tev.example")
    with smtp_deliverer(smtp_sink) as deliverer:
        report = deliver_pending(engine, deliverer, now=T0)
        again = deliver_pending(engine, deliverer, now=T0 + timedelta(days=1))
    assert (report.sent, report.failed, again.attempted) == (2, 1, 0)
    by_address = {r.address: r for r in rows(engine)}
    refused = by_address["karim.haddad@cc-tev.example"]
    assert refused.status is OutboxStatus.FAILED
    assert "550" in (refused.last_error or "") and "Refus définitif" in (refused.last_error or "")
    assert by_address["helene.garnier@aicr.example"].status is OutboxStatus.SENT
    assert sorted(r for m in smtp_sink.received for r in m.rcpt_tos) == [
        "helene.garnier@aicr.example",
        "isabelle.roux@uimm-touraine.example",
    ]
    assert report.failures[0].recipient == "Karim Haddad <karim.haddad@cc-tev.example>"


def test_temporary_failures_end_as_failed_after_the_last_attempt(
    engine: Engine, smtp_sink: SmtpSink
) -> None:
    store(engine, [notice(3, to=PILOTS[:1])])
    smtp_sink.defer.add("helene.garnier@aicr.example")  # 451 every time
    policy = DeliveryPolicy(max_attempts=3, retry_after=timedelta(minutes=10))
    outcomes = []
    with smtp_deliverer(smtp_sink) as deliverer:
        for hours in range(4):
            report = deliver_pending(
                engine, deliverer, policy=policy, now=T0 + timedelta(hours=hours)
            )
            outcomes.append((report.retry, report.failed))
    assert outcomes == [(1, 0), (1, 0), (0, 1), (0, 0)]
    (row,) = rows(engine)
    assert row.status is OutboxStatus.FAILED and row.attempts == 3
    assert (row.last_error or "").startswith("Abandon après 3 tentatives")
    assert "451" in (row.last_error or "")


def test_back_off_doubles_up_to_its_cap() -> None:
    policy = DeliveryPolicy(retry_after=timedelta(minutes=15), max_backoff=timedelta(hours=2))
    assert [policy.backoff(n) for n in range(1, 6)] == [
        timedelta(minutes=15),
        timedelta(minutes=30),
        timedelta(hours=1),
        timedelta(hours=2),
        timedelta(hours=2),
    ]


def _left_sending(engine: Engine, row_id: int, since: datetime) -> None:
    """What a round killed between the server's 250 and its own commit leaves behind."""
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(
            sa.update(table)
            .where(table.c.id == row_id)
            .values(status="sending", claim_token="dead-round", send_started_at=since)
        )


def test_message_interrupted_while_sending_is_reported_in_doubt_and_not_resent(
    engine: Engine, smtp_sink: SmtpSink
) -> None:
    (first, *_) = store(engine, [notice(4)])
    # Holding in-doubt messages is a choice since issue 20 (the default resends them).
    hold = DeliveryPolicy(resend_in_doubt=False)
    with smtp_deliverer(smtp_sink) as deliverer:
        deliver_pending(engine, deliverer, ids=[first], now=T0)
        _left_sending(engine, first, T0)
        soon = deliver_pending(engine, deliverer, policy=hold, now=T0 + timedelta(minutes=5))
        later = deliver_pending(engine, deliverer, policy=hold, now=T0 + timedelta(hours=1))
    # Within the in-doubt delay the row may still belong to a live round: left alone.
    assert (soon.in_doubt, soon.sent) == (0, 2)
    assert (later.in_doubt, later.sent) == (1, 0)
    row = next(r for r in rows(engine) if r.id == first)
    assert row.status is OutboxStatus.FAILED and row.drop_reason == "in_doubt"
    assert "pas renvoyé automatiquement" in (row.last_error or "")
    assert len(smtp_sink.messages_to(row.address)) == 1


def test_resending_in_doubt_messages_keeps_their_message_id(
    engine: Engine, smtp_sink: SmtpSink
) -> None:
    (first, *_) = store(engine, [notice(5)])
    policy = DeliveryPolicy(resend_in_doubt=True)
    with smtp_deliverer(smtp_sink) as deliverer:
        deliver_pending(engine, deliverer, ids=[first], now=T0)
        _left_sending(engine, first, T0)
        report = deliver_pending(engine, deliverer, policy=policy, now=T0 + timedelta(hours=1))
    assert report.in_doubt == 1
    address = next(r.address for r in rows(engine) if r.id == first)
    copies = smtp_sink.messages_to(address)
    assert len(copies) == 2  # the duplicate the operator accepted...
    assert copies[0]["Message-ID"] == copies[1]["Message-ID"]  # ...is recognisable as one


def test_attachments_are_stored_with_the_message_and_sent_byte_for_byte(
    engine: Engine, smtp_sink: SmtpSink
) -> None:
    csv = "\ufeffN°;Intitulé;Budget (€)\r\nFA-07;Plateforme RH;12500,00\r\n".encode()
    xlsx = bytes(range(256)) * 40  # binary content, as an XLSX would be
    files = [
        Attachment("ordre-du-jour.csv", "text/csv; charset=utf-8", csv),
        Attachment(
            "budget-2025.xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            xlsx,
        ),
    ]
    store(engine, [notice(6, to=PILOTS[:1], attachments=files)])
    with smtp_deliverer(smtp_sink) as deliverer:
        assert deliver_pending(engine, deliverer, now=T0).sent == 1
    (message,) = smtp_sink.messages_to("helene.garnier@aicr.example")
    got = {part.get_filename(): part.get_content() for part in message.iter_attachments()}
    assert got["budget-2025.xlsx"] == xlsx
    assert got["ordre-du-jour.csv"].encode() == csv or got["ordre-du-jour.csv"] == csv


def test_invalid_address_is_stored_failed_and_does_not_stop_the_others(
    engine: Engine, smtp_sink: SmtpSink
) -> None:
    bad = Recipient("Jean Lefèvre <jean.lefevre@cc-castelrenaudais>")  # no TLD
    with UnitOfWork(engine) as uow:
        result = enqueue(uow, [notice(8, to=[bad, PILOTS[0]])], now=T0)
        uow.commit()
    assert result.invalid == ["Jean Lefèvre <jean.lefevre@cc-castelrenaudais>"]
    with smtp_deliverer(smtp_sink) as deliverer:
        assert deliver_pending(engine, deliverer, now=T0).sent == 1
    failed = next(r for r in rows(engine) if r.status is OutboxStatus.FAILED)
    assert "Adresse e-mail invalide" in (failed.last_error or "")
    assert "jean.lefevre@cc-castelrenaudais" in (failed.last_error or "")


def test_two_rounds_running_at_once_never_send_the_same_row_twice(
    engine: Engine, smtp_sink: SmtpSink
) -> None:
    store(engine, [notice(n) for n in range(1, 11)])  # 30 messages
    reports = []
    errors: list[BaseException] = []

    def round_() -> None:
        try:
            with smtp_deliverer(smtp_sink) as deliverer:
                reports.append(deliver_pending(engine, deliverer, now=T0))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=round_) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert sum(r.sent for r in reports) == 30
    counts = deliveries(smtp_sink)
    assert len(counts) == 30 and set(counts.values()) == {1}


def test_requeue_gives_a_failed_message_another_chance(engine: Engine, smtp_sink: SmtpSink) -> None:
    store(engine, [notice(9, to=PILOTS[:1])])
    smtp_sink.refuse.add("helene.garnier@aicr.example")
    with smtp_deliverer(smtp_sink) as deliverer:
        assert deliver_pending(engine, deliverer, now=T0).failed == 1
        smtp_sink.refuse.clear()
        with UnitOfWork(engine) as uow:
            assert requeue(uow, [r.id for r in rows(engine) if r.id], now=T0) == 1
            uow.commit()
        assert deliver_pending(engine, deliverer, now=T0).sent == 1
    (message,) = smtp_sink.messages_to("helene.garnier@aicr.example")
    assert "validée en COPIL" in body_of(message)


def test_a_message_without_recipient_or_channel_is_refused(engine: Engine) -> None:
    with UnitOfWork(engine) as uow, pytest.raises(ValueError, match="no recipient"):
        enqueue(uow, [notice(1, to=[])])


def test_recipients_by_role_are_the_territorys_people(engine: Engine, example_plan: str) -> None:
    from models.vocabulary import Role
    from notifications.outbox import recipients_with_role

    with UnitOfWork(engine) as uow:
        territory = uow.repo.territory(example_plan)
        assert territory.id is not None
        coordinators = recipients_with_role(uow, territory.id, Role.COORDINATOR)
    assert [r.mailbox for r in coordinators] == [
        "Claire Moreau <claire.moreau@grand-est-touraine.example>"
    ]
    assert coordinators[0].person_id is not None
