"""A person who chose a weekly (or daily) sending gets one e-mail per period and category for
the messages producers send one by one — notices after decisions, the budget — holding each
message once; counted at a real SMTP server, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from models.outbox import OutboxStatus
from models.preferences import Category, Choice, Frequency
from notifications.message import Attachment
from notifications.outbox import NewMessage, Recipient, deliver_pending
from notifications.transports import Deliverer
from tests.outbox.conftest import (
    HELENE,
    KARIM,
    Team,
    choose_choice,
    deliveries,
    person,
    smtp_deliverer,
)
from tests.outbox.test_outbox_delivery import rows, store
from tests.smtp_sink import SmtpSink, body_of

MONDAY = datetime(2025, 3, 10, 7, 0, tzinfo=UTC)  # 8 h in Paris
FRIDAY = MONDAY + timedelta(days=4)
WEEKLY = Choice(Frequency.WEEKLY, weekday=4, hour=8)
CANAL = "canal-equipe"


def message(kind: str, number: int, *to: Recipient, xlsx: bool = False) -> NewMessage:
    files = [Attachment(f"budget-{number}.xlsx", "application/octet-stream", b"PK")] if xlsx else []
    return NewMessage(
        key=f"{kind}:test:{number}",
        kind=kind,
        tag="pilots",
        to=list(to),
        subject=f"Message {kind} n° {number}",
        text=f"Contenu du message {kind} n° {number}.",
        html=f"<html><body><p>Contenu HTML {kind} n° {number}.</p></body></html>",
        attachments=files,
    )


@pytest.fixture
def recipients(engine: Engine, example_plan: str) -> tuple[Recipient, Recipient]:
    return Recipient.of(person(engine, HELENE)), Recipient.of(person(engine, KARIM))


def test_a_weekly_person_gets_one_e_mail_per_category_with_every_message_once(
    engine: Engine, recipients: tuple[Recipient, Recipient], smtp_sink: SmtpSink
) -> None:
    helene, karim = recipients
    choose_choice(engine, HELENE, Category.NOTICES, WEEKLY)
    choose_choice(engine, HELENE, Category.BUDGET, WEEKLY)
    week = [
        [message("next-steps", 1, helene, karim), message("budget", 2, helene, xlsx=True)],
        [message("revision", 3, helene), message("rejection", 4, helene, karim)],
        [message("budget", 5, helene, xlsx=True), message("deferral", 6, helene)],
    ]
    with smtp_deliverer(smtp_sink) as deliverer:
        for day, messages in enumerate(week):
            now = MONDAY + timedelta(days=day)
            store(engine, messages, now=now)
            deliver_pending(engine, deliverer, now=now)
        assert smtp_sink.messages_to(HELENE) == []
        assert len(smtp_sink.messages_to(KARIM)) == 2  # no preference: each on its day
        friday = deliver_pending(engine, deliverer, now=FRIDAY)
        again = deliver_pending(engine, deliverer, now=FRIDAY + timedelta(hours=1))
    assert (friday.sent, again.attempted) == (6, 0)  # six rows, sent in two e-mails
    notices, budget = sorted(smtp_sink.messages_to(HELENE), key=lambda m: str(m["Subject"]))
    assert "4 messages regroupés" in str(notices["Subject"])
    assert "2 messages regroupés" in str(budget["Subject"])
    text = body_of(notices)
    for kind, number in (("next-steps", 1), ("revision", 3), ("rejection", 4), ("deferral", 6)):
        assert text.count(f"Contenu du message {kind} n° {number}.") == 1
        assert body_of(notices, "html").count(f"Contenu HTML {kind} n° {number}.") == 1
    assert "budget" not in text
    files = sorted(part.get_filename() for part in budget.iter_attachments())
    assert files == ["budget-2.xlsx", "budget-5.xlsx"]
    assert set(deliveries(smtp_sink).values()) == {1}  # no copy twice
    assert {r.status for r in rows(engine)} == {OutboxStatus.SENT}


def test_a_daily_person_gets_one_e_mail_a_day_and_a_lone_message_goes_as_it_is(
    engine: Engine, recipients: tuple[Recipient, Recipient], smtp_sink: SmtpSink
) -> None:
    helene, _ = recipients
    choose_choice(engine, HELENE, Category.NOTICES, Choice(Frequency.DAILY, hour=18))
    with smtp_deliverer(smtp_sink) as deliverer:
        store(engine, [message("next-steps", 7, helene), message("kickoff", 8, helene)])
        store(engine, [message("revision", 9, helene)], now=MONDAY + timedelta(days=1))
        for hours in (11, 35):  # Monday and Tuesday, 18 h in Paris
            deliver_pending(engine, deliverer, now=MONDAY + timedelta(hours=hours))
    monday, tuesday = smtp_sink.messages_to(HELENE)
    assert "2 messages regroupés" in str(monday["Subject"])
    assert str(tuesday["Subject"]) == "Message revision n° 9"
    assert body_of(tuesday).strip() == "Contenu du message revision n° 9."


def test_a_weekly_person_on_a_channel_gets_the_week_there_in_one_post(
    team: Team, recipients: tuple[Recipient, Recipient]
) -> None:
    helene, _ = recipients
    choose_choice(team.engine, HELENE, Category.NOTICES, Choice(Frequency.WEEKLY, 4, 8, CANAL))
    for day in range(3):
        store(team.engine, [message("revision", 10 + day, helene)], now=MONDAY + timedelta(day))
    with Deliverer(team.config) as deliverer:
        assert deliver_pending(team.engine, deliverer, now=FRIDAY).sent == 3
        assert deliver_pending(team.engine, deliverer, now=FRIDAY).attempted == 0
    (post,) = team.json.posts
    assert "3 messages regroupés" in post["title"]
    for number in (10, 11, 12):
        assert post["message"].count(f"Contenu du message revision n° {number}.") == 1
    assert team.smtp.messages_to(HELENE) == []
