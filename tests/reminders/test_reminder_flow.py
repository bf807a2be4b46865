"""The « rappels-echeances » flow under the Prefect harness, on both databases, sending to a
real SMTP server on loopback through TIFLOW_NOTIFY_CONFIG."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows.reminders import deadline_reminders
from models.outbox import OutboxMessage
from models.tables import ActionSheet
from models.uow import UnitOfWork
from notifications.outbox import DeliverySettings
from tests.reminders.conftest import QUIET, SmallPlan, add_milestone, inbox
from tests.smtp_sink import SmtpSink, body_of

HELENE = "helene.garnier@aicr.example"
KARIM = "karim.haddad@cc-tev.example"
D = date(2025, 3, 10)  # lundi 10 mars 2025


@pytest.fixture
def smtp_env(flow_env: Engine, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch) -> SmtpSink:
    config = f"pilots,copil,coordinator={smtp_sink.url('tiflow@grand-est-touraine.example')}"
    monkeypatch.setenv("TIFLOW_NOTIFY_CONFIG", config)
    return smtp_sink


def retitle(engine: Engine, action_id: int, title: str) -> None:
    with UnitOfWork(engine) as uow:
        uow.session.get_one(ActionSheet, action_id).title = title
        uow.commit()


def test_flow_sends_encoded_french_subjects_escaped_html_and_no_injected_header(
    flow_env: Engine, plan: SmallPlan, smtp_env: SmtpSink
) -> None:
    retitle(flow_env, plan.fa01, "Usine-témoin <script>alert('pwned')</script>")
    retitle(flow_env, plan.fa02, "Industry-lab\r\nBcc: intrus@example.com\r\n\r\nfaux corps")
    add_milestone(flow_env, plan.fa01, "Installation des démonstrateurs", D + timedelta(days=7))
    add_milestone(flow_env, plan.fa02, "Cahier des charges", D + timedelta(days=7))

    result = deadline_reminders(as_of=D, reminders=QUIET)

    assert (result["enqueued"], result["sent"], result["failed"]) == (2, 2, 0)
    raw = next(r for r in smtp_env.received if r.rcpt_tos == (HELENE,))
    head = raw.data.split(b"\r\n\r\n", 1)[0]
    head.decode("ascii")  # RFC 2047: nothing but ASCII in the headers...
    assert b"=?utf-8?" in head
    (mail,) = inbox(smtp_env, HELENE)
    assert mail["Subject"] == (  # ...and the accents come back intact
        "Rappel FA-01 «\u00a0Usine-témoin"
        " <script>alert('pwned')</script>\u00a0»\u00a0: dans 7 jours"
    )
    html = body_of(mail, "html")
    assert "Usine-témoin &lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in html
    assert "<script>" not in html
    assert "Usine-témoin <script>alert('pwned')</script>" in body_of(mail)  # text part as is

    injected = next(r for r in smtp_env.received if KARIM in r.rcpt_tos)
    assert injected.rcpt_tos == (KARIM,)  # nobody else in the envelope
    assert all("intrus" not in rcpt for r in smtp_env.received for rcpt in r.rcpt_tos)
    message = injected.message
    assert message["Bcc"] is None
    assert message["Subject"] == (
        "Rappel FA-02 «\u00a0Industry-lab Bcc: intrus@example.com"
        " faux corps\u00a0»\u00a0: dans 7 jours"
    )


def test_running_the_flow_twice_for_a_day_delivers_each_reminder_once(
    flow_env: Engine, plan: SmallPlan, smtp_env: SmtpSink
) -> None:
    add_milestone(flow_env, plan.fa01, "Installation des démonstrateurs", D + timedelta(days=7))
    add_milestone(flow_env, plan.fa02, "Cahier des charges", D + timedelta(days=1))
    first = deadline_reminders(as_of=D, reminders=QUIET)
    second = deadline_reminders(as_of=D, reminders=QUIET)
    assert (first["sent"], second["enqueued"], second["sent"]) == (2, 0, 0)
    assert len(smtp_env.received) == 2


def test_smtp_down_for_a_run_loses_nothing_and_the_next_run_delivers(
    flow_env: Engine, plan: SmallPlan, smtp_env: SmtpSink
) -> None:
    add_milestone(flow_env, plan.fa01, "Installation des démonstrateurs", D + timedelta(days=7))
    add_milestone(flow_env, plan.fa02, "Cahier des charges", D + timedelta(days=7))
    smtp_env.stop()
    # The next run comes the next morning in real life; here it comes at once, so no back-off.
    retry_now = DeliverySettings(retry_after_minutes=0)
    down = deadline_reminders(as_of=D, reminders=QUIET, delivery=retry_now)
    assert (down["enqueued"], down["sent"], down["retry"]) == (2, 0, 2)
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    with flow_env.connect() as conn:
        rows = conn.execute(sa.select(table.c.status, table.c.attempts, table.c.last_error)).all()
    assert [(r.status, r.attempts) for r in rows] == [("pending", 1), ("pending", 1)]
    assert all("indisponible" in r.last_error for r in rows)

    smtp_env.restart()
    up = deadline_reminders(as_of=D + timedelta(days=1), reminders=QUIET, delivery=retry_now)
    assert (up["sent"], up["retry"]) == (2, 0)
    assert len(inbox(smtp_env, HELENE)) == 1 and len(inbox(smtp_env, KARIM)) == 1
    assert "lundi 17 mars 2025 (dans 7 jours)" in body_of(inbox(smtp_env, HELENE)[0])
