"""The outbox under injected faults (issue 20), on SQLite and PostgreSQL, counted at a real
SMTP server: a kill at each SMTP phase, a server dying before its 250, a 421 on DATA, a
database locked longer than its timeout, the operator's « maintenant » and « relancer »."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import models.db
from models.errors import DatabaseBusy, TiflowError
from models.outbox import DeliveryPhase, OutboxMessage, OutboxStatus
from models.uow import UnitOfWork
from notifications.outbox import DeliveryPolicy, DeliverySettings, deliver_pending, requeue_once
from tests.outbox.conftest import Locker, deliveries, smtp_deliverer
from tests.outbox.test_outbox_delivery import PILOTS, T0, notice, rows, statuses, store
from tests.smtp_sink import SmtpSink

HELENE, KARIM, ISABELLE = (p.mailbox.split("<")[1].rstrip(">") for p in PILOTS)
LATER = T0 + timedelta(hours=1)  # past the in-doubt delay: no live round owns the rows
M_TABLE = OutboxMessage.__table__  # type: ignore[attr-defined]
HOLD = DeliveryPolicy(hold_in_doubt=frozenset({"notice"}))

KILL_AT_PHASE = """
import os, sys
from datetime import datetime, UTC
import notifications.smtp
from models.db import make_engine
from notifications.outbox import deliver_pending
from notifications.transports import Deliverer

target, seen = sys.argv[3], []

def kill_at_second_message(phase):
    if phase.value == target:
        seen.append(phase)
        if len(seen) == 2:
            os._exit(9)  # like kill -9: no clean-up, no exception handler

notifications.smtp.phase_reached = kill_at_second_message
with Deliverer(sys.argv[2]) as deliverer:
    deliver_pending(make_engine(sys.argv[1]), deliverer,
                    now=datetime(2025, 3, 10, 7, 0, tzinfo=UTC))
"""


def kill_round_at(engine: Engine, sink: SmtpSink, tmp_path: Path, phase: str) -> None:
    script = tmp_path / "kill_at_phase.py"
    script.write_text(KILL_AT_PHASE)
    root = Path(__file__).resolve().parents[2]
    killed = subprocess.run(
        [
            sys.executable,
            str(script),
            engine.url.render_as_string(hide_password=False),
            f"pilots={sink.url('tiflow@grand-est-touraine.example')}",
            phase,
        ],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=120,
    )
    assert killed.returncode == 9, killed.stderr.decode()


@pytest.mark.parametrize("phase", ["connected", "accepted"])
def test_kill_before_the_content_left_resends_the_message_once(
    engine: Engine, smtp_sink: SmtpSink, tmp_path: Path, phase: str
) -> None:
    store(engine, [notice(1)])  # 3 messages; the round is killed during the second
    kill_round_at(engine, smtp_sink, tmp_path, phase)
    assert len(smtp_sink.received) == 1
    killed = next(r for r in rows(engine) if r.status is OutboxStatus.SENDING)
    assert killed.delivery_phase == DeliveryPhase.CLAIMED.value  # durable: never reached DATA
    with smtp_deliverer(smtp_sink) as deliverer:
        soon = deliver_pending(engine, deliverer, now=T0 + timedelta(minutes=5))
        later = deliver_pending(engine, deliverer, now=LATER)
    assert (soon.sent, soon.resumed) == (1, 0)  # within the delay: the row may be live
    assert (later.sent, later.resumed, later.in_doubt) == (1, 1, 0)
    counts = deliveries(smtp_sink)
    assert len(counts) == 3 and set(counts.values()) == {1}
    assert statuses(engine) == {"sent": 3}


@pytest.mark.parametrize("phase", ["data_sent", "replied"])
def test_kill_after_the_content_left_is_in_doubt_and_resent_with_its_message_id(
    engine: Engine, smtp_sink: SmtpSink, tmp_path: Path, phase: str
) -> None:
    store(engine, [notice(1)])
    kill_round_at(engine, smtp_sink, tmp_path, phase)
    killed = next(r for r in rows(engine) if r.status is OutboxStatus.SENDING)
    assert killed.delivery_phase == DeliveryPhase.DATA_SENT.value
    with smtp_deliverer(smtp_sink) as deliverer:
        later = deliver_pending(engine, deliverer, now=LATER)
    assert (later.in_doubt, later.resumed, later.sent) == (1, 0, 2)
    copies = smtp_sink.messages_to(killed.address)
    assert len(copies) == 2  # the server had it: the one duplicate SMTP cannot exclude...
    assert copies[0]["Message-ID"] == copies[1]["Message-ID"]  # ...recognisable as one
    assert statuses(engine) == {"sent": 3}
    others = [c for (rcpt, _), c in deliveries(smtp_sink).items() if rcpt != killed.address]
    assert others == [1, 1]


def test_kill_after_the_content_left_of_a_held_kind_waits_for_the_operator(
    engine: Engine, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    store(engine, [notice(1)])
    kill_round_at(engine, smtp_sink, tmp_path, "data_sent")
    with smtp_deliverer(smtp_sink) as deliverer:
        later = deliver_pending(engine, deliverer, policy=HOLD, now=LATER)
    assert (later.in_doubt, later.sent) == (1, 1)
    held = next(r for r in rows(engine) if r.status is OutboxStatus.FAILED)
    assert held.drop_reason == "in_doubt"
    assert f"tiflow envois --relancer {held.id}" in (held.last_error or "")
    assert set(deliveries(smtp_sink).values()) == {1}
    assert later.backlog is not None and later.backlog.held_in_doubt == 1
    assert "1 incertain à vérifier" in later.summary()


def test_server_dying_before_its_250_is_resent_with_the_same_message_id(
    engine: Engine, smtp_sink: SmtpSink
) -> None:
    store(engine, [notice(2)])
    smtp_sink.die_before_250.add(KARIM)
    with smtp_deliverer(smtp_sink) as deliverer:
        first = deliver_pending(engine, deliverer, now=T0)
        second = deliver_pending(engine, deliverer, now=T0 + timedelta(days=1))
    assert (first.sent, first.retry, second.sent) == (2, 1, 1)
    karim = smtp_sink.messages_to(KARIM)
    assert len(karim) == 2 and karim[0]["Message-ID"] == karim[1]["Message-ID"]
    assert len(smtp_sink.messages_to(HELENE)) == len(smtp_sink.messages_to(ISABELLE)) == 1


def test_server_dying_before_its_250_for_a_held_kind_is_requeued_by_hand_once(
    engine: Engine, smtp_sink: SmtpSink
) -> None:
    store(engine, [notice(3)])
    smtp_sink.die_before_250.add(KARIM)
    with smtp_deliverer(smtp_sink) as deliverer:
        first = deliver_pending(engine, deliverer, policy=HOLD, now=T0)
    (held,) = [r for r in rows(engine) if r.status is OutboxStatus.FAILED]
    assert (first.sent, first.failed, held.drop_reason) == (2, 1, "in_doubt")
    assert held.delivery_phase == DeliveryPhase.DATA_SENT.value
    assert "aucune réponse du serveur après l'envoi du contenu" in (held.last_error or "")
    with UnitOfWork(engine) as uow:
        requeue_once(uow, held.id or 0, now=T0 + timedelta(hours=2))
        uow.commit()
    with smtp_deliverer(smtp_sink) as deliverer:
        again = deliver_pending(engine, deliverer, policy=HOLD, now=T0 + timedelta(hours=2))
    assert again.sent == 1 and len(smtp_sink.messages_to(KARIM)) == 2
    with UnitOfWork(engine) as uow, pytest.raises(TiflowError, match="seul un message en échec"):
        requeue_once(uow, held.id or 0)


def test_requeue_by_hand_happens_only_once(engine: Engine, smtp_sink: SmtpSink) -> None:
    smtp_sink.refuse.add(ISABELLE)
    store(engine, [notice(4)])
    with smtp_deliverer(smtp_sink) as deliverer:
        deliver_pending(engine, deliverer, now=T0)
        (refused,) = [r for r in rows(engine) if r.status is OutboxStatus.FAILED]
        with UnitOfWork(engine) as uow:
            requeue_once(uow, refused.id or 0, now=T0)
            uow.commit()
        deliver_pending(engine, deliverer, now=T0)
    with UnitOfWork(engine) as uow, pytest.raises(TiflowError, match="déjà été remis en file"):
        requeue_once(uow, refused.id or 0)
    row = next(r for r in rows(engine) if r.id == refused.id)
    assert "destinataire refusé" in (row.last_error or "")
    assert "Recipient address rejected" in (row.last_error or "")  # the server's own words


def test_421_on_data_abandons_the_connection_and_doubles_nothing(
    engine: Engine, smtp_sink: SmtpSink
) -> None:
    store(engine, [notice(5)])
    smtp_sink.data_reply[HELENE] = "421 4.3.2 Service shutting down"
    with smtp_deliverer(smtp_sink) as deliverer:
        first = deliver_pending(engine, deliverer, now=T0)
        helene = next(r for r in rows(engine) if r.address == HELENE)
        second = deliver_pending(engine, deliverer, now=T0 + timedelta(days=1))
    assert "message refusé (réponse du serveur : 421" in (helene.last_error or "")
    assert (first.sent, first.retry, second.sent) == (2, 1, 1)
    ((refused_on, _, _),) = smtp_sink.refused_data
    assert refused_on not in {m.peer for m in smtp_sink.received}  # never reused
    counts = deliveries(smtp_sink)
    assert len(counts) == 3 and set(counts.values()) == {1}


def test_maintenant_sends_what_waits_for_its_back_off_but_not_what_is_scheduled(
    engine: Engine, smtp_sink: SmtpSink
) -> None:
    store(engine, [notice(6)])
    store(engine, [notice(7, not_before=T0 + timedelta(days=3))])
    smtp_sink.stop()
    with smtp_deliverer(smtp_sink) as deliverer:
        down = deliver_pending(engine, deliverer, now=T0)
    assert down.retry == 3 and down.backlog is not None and down.backlog.waiting == 6
    assert "6 messages en attente (prochain envoi le lundi 10 mars 2025 à 8 h 15" in down.summary()
    assert "dernier le jeudi 13 mars 2025 à 8 h" in down.summary()  # notice 7, scheduled
    smtp_sink.restart()
    now = DeliverySettings(now=True).policy()
    with smtp_deliverer(smtp_sink) as deliverer:
        plain = deliver_pending(engine, deliverer, now=T0 + timedelta(minutes=1))
        at_once = deliver_pending(engine, deliverer, policy=now, now=T0 + timedelta(minutes=1))
    assert (plain.attempted, at_once.sent) == (0, 3)
    assert statuses(engine) == {"sent": 3, "pending": 3}  # notice 7 keeps its date
    assert set(deliveries(smtp_sink).values()) == {1}


# ---------------------------------------------------------------------------------------------
# A database locked longer than its timeout


def test_a_lock_longer_than_every_retry_ends_with_one_french_error_and_nothing_failed(
    engine: Engine, impatient: Engine, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models.db, "BUSY_PAUSE", 0.01)
    store(engine, [notice(8)])
    locker = Locker(engine)
    locker.take()
    try:
        with smtp_deliverer(smtp_sink) as deliverer, pytest.raises(DatabaseBusy) as busy:
            deliver_pending(impatient, deliverer, now=T0)
    finally:
        locker.release()
    message = str(busy.value)
    assert message.startswith("Base de données occupée") and "\n" not in message
    assert "relancez la commande" in message
    assert smtp_sink.received == [] and statuses(engine) == {"pending": 3}
    with smtp_deliverer(smtp_sink) as deliverer:
        assert deliver_pending(engine, deliverer, now=T0).sent == 3
    assert set(deliveries(smtp_sink).values()) == {1}


def test_a_lock_longer_than_the_timeout_mid_round_is_waited_for_and_nothing_is_lost(
    engine: Engine, impatient: Engine, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models.db, "BUSY_PAUSE", 0.01)
    store(engine, [notice(9)])
    locker = Locker(engine)
    retries: list[str] = []

    def lock_after_first_send(row_id: int) -> None:
        if locker.held is None and not retries:
            locker.take()  # the next claim waits past the driver's timeout

    def release_on_retry(what: str) -> None:
        retries.append(what)
        locker.release()

    monkeypatch.setattr(models.db, "on_busy_retry", release_on_retry)
    try:
        with smtp_deliverer(smtp_sink) as deliverer:
            report = deliver_pending(impatient, deliverer, now=T0, on_sent=lock_after_first_send)
    finally:
        locker.release()
    assert retries and (report.sent, report.failed) == (3, 0)
    counts = deliveries(smtp_sink)
    assert len(counts) == 3 and set(counts.values()) == {1}
    assert statuses(engine) == {"sent": 3}


def test_a_lock_on_the_data_sent_record_stops_before_the_content_and_fails_nothing(
    engine: Engine, impatient: Engine, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    import notifications.smtp

    monkeypatch.setattr(models.db, "BUSY_PAUSE", 0.01)
    store(engine, [notice(10)])
    locker = Locker(engine)
    accepted: list[DeliveryPhase] = []

    def lock_once_the_second_recipient_is_accepted(phase: DeliveryPhase) -> None:
        if phase == DeliveryPhase.ACCEPTED:
            accepted.append(phase)
            if len(accepted) == 2:
                locker.take()  # held past every retry of the data_sent record

    monkeypatch.setattr(
        notifications.smtp, "phase_reached", lock_once_the_second_recipient_is_accepted
    )
    try:
        with smtp_deliverer(smtp_sink) as deliverer, pytest.raises(DatabaseBusy):
            deliver_pending(impatient, deliverer, now=T0)
    finally:
        locker.release()
    monkeypatch.setattr(notifications.smtp, "phase_reached", None)
    assert len(smtp_sink.received) == 1  # the second message's content never left
    assert statuses(engine) == {"sent": 1, "sending": 1, "pending": 1}
    stuck = next(r for r in rows(engine) if r.status is OutboxStatus.SENDING)
    assert stuck.delivery_phase == DeliveryPhase.CLAIMED.value  # so: not in doubt
    with smtp_deliverer(smtp_sink) as deliverer:
        later = deliver_pending(engine, deliverer, now=LATER)
    assert (later.resumed, later.in_doubt, later.sent, later.failed) == (1, 0, 2, 0)
    counts = deliveries(smtp_sink)
    assert len(counts) == 3 and set(counts.values()) == {1}


def test_an_address_broken_by_hand_in_the_table_fails_with_a_french_error(
    engine: Engine, smtp_sink: SmtpSink
) -> None:
    (first, *_) = store(engine, [notice(11)])
    table = M_TABLE
    with engine.begin() as conn:
        conn.execute(
            sa.update(table).where(table.c.id == first).values(recipient="Hélène <helene@@aicr>")
        )
    with smtp_deliverer(smtp_sink) as deliverer:
        report = deliver_pending(engine, deliverer, now=T0)
    assert (report.sent, report.failed) == (2, 1)
    (failure,) = report.failures
    assert failure.error.startswith("Message non envoyé : adresse e-mail invalide « ")
    assert "e-mail address" not in failure.error and "(détail" not in failure.error
