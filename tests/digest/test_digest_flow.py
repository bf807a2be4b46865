"""The « synthese-copil » flow under the Prefect harness, sending to a real SMTP server."""

from __future__ import annotations

from datetime import date

import icalendar
import pytest
from sqlalchemy.engine import Engine

from flows.digest import copil_digest
from tests.digest.conftest import Scenario
from tests.smtp_sink import SmtpSink, body_of


@pytest.fixture
def smtp_env(flow_env: Engine, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch) -> SmtpSink:
    config = f"copil,pilots,coordinator={smtp_sink.url('tiflow@grand-est-touraine.example')}"
    monkeypatch.setenv("TIFLOW_NOTIFY_CONFIG", config)
    return smtp_sink


def test_digest_flow_mails_every_member_once_with_an_invitation(
    flow_env: Engine, scenario: Scenario, smtp_env: SmtpSink
) -> None:
    first = copil_digest(as_of=date(2024, 6, 10))
    again = copil_digest(as_of=date(2024, 6, 10))
    nothing = copil_digest(as_of=date(2024, 6, 11))
    assert (first["enqueued"], first["sent"], first["copils"]) == (3, 3, [scenario.copil])
    assert (again["enqueued"], again["sent"], nothing["copils"]) == (0, 0, [])
    assert sorted(r for m in smtp_env.received for r in m.rcpt_tos) == sorted(scenario.members)
    raw = smtp_env.received[0].data.split(b"\r\n\r\n", 1)[0]
    raw.decode("ascii")
    assert b"=?utf-8?" in raw  # « à », « synthèse »: RFC 2047 in the header
    (mail,) = smtp_env.messages_to("marc.aubert@prefecture.example")
    assert mail["Subject"] == (
        "COPIL du jeudi 20 juin 2024 à 10 h\u00a0: ordre du jour et synthèse (Grand Est Touraine)"
    )
    assert "1. Ordre du jour\u00a0: actions à décider" in body_of(mail)
    invite = next(p for p in mail.walk() if p.get_content_type() == "text/calendar")
    payload = invite.get_payload(decode=True)
    assert isinstance(payload, bytes)
    (event,) = icalendar.Calendar.from_ical(payload).walk("VEVENT")
    assert event.decoded("dtstart").isoformat() == "2024-06-20T10:00:00+02:00"
