"""A person who chose an operator's channel (``canal-…``) instead of e-mail gets their
messages there, through the outbox exactly once — at a real HTTP endpoint (apprise's
``json://``) and at a second real SMTP server (a ``mailto://`` channel), never a mock; on
SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from models.outbox import OutboxStatus
from models.preferences import Category, PreferenceError
from models.tables import Person
from notifications.outbox import NewMessage, Recipient, deliver_pending
from notifications.transports import Deliverer
from tests.notifications.http_sink import JsonReceiver
from tests.outbox.conftest import HELENE, KARIM, Team, choose, smtp_config
from tests.outbox.test_outbox_delivery import T0, rows, store
from tests.smtp_sink import SmtpSink

SECRETARIAT = "secretariat@aicr.example"


def next_steps(number: int, *people: Person, kind: str = "next-steps") -> NewMessage:
    return NewMessage(
        key=f"{kind}:fa-{number:02d}",
        kind=kind,
        tag="pilots",
        to=[Recipient.of(p) for p in people],
        subject=f"Action FA-{number:02d}\u00a0: validée en COPIL",
        text=f"L'action FA-{number:02d} a été validée en COPIL.",
    )


def test_a_person_on_a_json_channel_gets_it_there_once_and_others_by_e_mail(team: Team) -> None:
    engine, smtp_sink, json_receiver = team.engine, team.smtp, team.json
    choose(engine, HELENE, Category.NOTICES, "canal-equipe")
    store(engine, [next_steps(1, *team.people)])
    with Deliverer(team.config) as deliverer:
        first = deliver_pending(engine, deliverer, now=T0)
        again = deliver_pending(engine, deliverer, now=T0)
    assert (first.sent, again.sent, again.attempted) == (2, 0, 0)
    (post,) = json_receiver.posts
    assert post["title"] == "Action FA-01\u00a0: validée en COPIL"
    assert "FA-01 a été validée" in post["message"]
    # Hélène's copy went to her channel only; Karim, who chose nothing, by e-mail.
    assert smtp_sink.messages_to(HELENE) == []
    assert len(smtp_sink.messages_to(KARIM)) == 1
    sent = {r.address: r for r in rows(engine)}
    assert sent[HELENE].status == OutboxStatus.SENT and sent[HELENE].channel != "email"
    assert sent[KARIM].channel == "email"


def test_a_mailto_channel_writes_to_its_own_address_and_other_kinds_stay_e_mail(
    engine: Engine,
    people: tuple[Person, Person],
    smtp_sink: SmtpSink,
    second_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    office = second_sink.url("tiflow@aicr.example", to=SECRETARIAT)
    config = f"{smtp_config(smtp_sink)} canal-secretariat={office}"
    monkeypatch.setenv("TIFLOW_NOTIFY_CONFIG", config)
    choose(engine, HELENE, Category.BUDGET, "canal-secretariat")
    helene = people[0]
    store(engine, [next_steps(2, helene, kind="budget"), next_steps(3, helene)])
    with Deliverer(config) as deliverer:
        assert deliver_pending(engine, deliverer, now=T0).sent == 2
        assert deliver_pending(engine, deliverer, now=T0).attempted == 0
    (budget,) = second_sink.messages_to(SECRETARIAT)
    assert budget["Subject"] == "Action FA-02\u00a0: validée en COPIL"
    assert second_sink.messages_to(HELENE) == []
    # Her notices still follow their own choice (e-mail), on the main server.
    (notice,) = smtp_sink.messages_to(HELENE)
    assert notice["Subject"] == "Action FA-03\u00a0: validée en COPIL"


def test_a_channel_the_operator_removed_falls_back_to_e_mail(team: Team) -> None:
    choose(team.engine, HELENE, Category.NOTICES, "canal-equipe")
    store(team.engine, [next_steps(4, team.people[0])])
    with Deliverer(smtp_config(team.smtp)) as deliverer:  # canal-equipe is gone
        assert deliver_pending(team.engine, deliverer, now=T0).sent == 1
    assert team.json.posts == []
    assert len(team.smtp.messages_to(HELENE)) == 1


def test_only_a_configured_channel_name_can_be_chosen(
    engine: Engine,
    people: tuple[Person, Person],
    json_receiver: JsonReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIFLOW_NOTIFY_CONFIG", f"canal-equipe={json_receiver.url}")
    for wanted in ("canal-autre", "json://attacker.example/", "pilots"):
        with pytest.raises(PreferenceError, match=r"canal .* inconnu"):
            choose(engine, HELENE, Category.NOTICES, wanted)
