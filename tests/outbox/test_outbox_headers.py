"""Extra headers a producer adds (``List-Unsubscribe``…): stored with each outbox row at
enqueue, per message and per recipient, and found in what the SMTP server received — on
SQLite and PostgreSQL; a bad header is refused in the caller's transaction."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from models.uow import UnitOfWork
from notifications.outbox import Recipient, deliver_pending, enqueue
from tests.outbox.conftest import smtp_deliverer
from tests.outbox.test_outbox_delivery import PILOTS, T0, notice, rows, statuses, store
from tests.smtp_sink import SmtpSink

ONE_CLICK = {"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def unsubscribe(token: str) -> dict[str, str]:
    return {"List-Unsubscribe": f"<https://tiflow.example/preferences/desabonnement/{token}>"}


def test_headers_of_the_message_and_of_each_recipient_reach_the_server(
    engine: Engine, smtp_sink: SmtpSink
) -> None:
    helene, karim, _ = PILOTS
    to = [
        Recipient(helene.mailbox, headers=unsubscribe("helene")),
        Recipient(karim.mailbox, headers=unsubscribe("karim")),
    ]
    store(engine, [notice(1, to=to, headers=ONE_CLICK)])
    with smtp_deliverer(smtp_sink) as deliverer:
        assert deliver_pending(engine, deliverer, now=T0).sent == 2
    for token, address in (
        ("helene", "helene.garnier@aicr.example"),
        ("karim", "karim.haddad@cc-tev.example"),
    ):
        (mail,) = smtp_sink.messages_to(address)
        assert mail["List-Unsubscribe"] == unsubscribe(token)["List-Unsubscribe"]
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_message_without_extra_headers_stores_none(engine: Engine) -> None:
    store(engine, [notice(2)])
    assert {r.headers for r in rows(engine)} == {None}


def test_a_bad_header_refuses_the_whole_enqueue(engine: Engine) -> None:
    bad = notice(3, headers={"Bcc": "intrus@example.com"})
    with UnitOfWork(engine) as uow, pytest.raises(ValueError, match="tiflow itself"):
        enqueue(uow, [notice(4), bad], now=T0)
    assert statuses(engine) == {}
