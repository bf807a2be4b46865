"""A large round over several SMTP connections at once (`deliver_in_parallel`), on SQLite and
PostgreSQL against a real SMTP server on loopback: each message reaches the server once, every
message of one address goes over one connection (a period's group too), a small round keeps
one connection, a share that fails is reported once the others have ended, and the flows'
round does the same inside its Prefect task run."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from models.outbox import OutboxStatus
from models.preferences import Category, Choice, Frequency
from notifications.outbox import (
    MAX_CONNECTIONS,
    MESSAGES_PER_CONNECTION,
    DeliverySettings,
    NewMessage,
    Recipient,
    deliver_in_parallel,
    share_of,
    utcnow,
)
from notifications.transports import Deliverer
from tests.outbox.conftest import (
    HELENE,
    choose_choice,
    deliveries,
    person,
    smtp_config,
    smtp_deliverer,
)
from tests.outbox.test_outbox_delivery import T0, rows, statuses, store
from tests.outbox.test_period_grouping import message
from tests.smtp_sink import SmtpSink


def messages(count: int, addresses: int) -> list[NewMessage]:
    """``count`` notices spread over ``addresses`` mailboxes, several for each."""
    return [
        NewMessage(
            key=f"notice:parallel:{n}",
            kind="notice",
            tag="pilots",
            to=[Recipient(f"Pilote {n % addresses} <pilote{n % addresses}@cc-tev.example>")],
            subject=f"Décision n° {n}",
            text=f"Décision n° {n} du COPIL.",
            html=f"<p>Décision n° {n} du COPIL.</p>",
        )
        for n in range(count)
    ]


class _Row:
    """What share_of reads of an outbox row."""

    def __init__(self, address: str, tag: str = "pilots") -> None:
        self.address, self.tag = address, tag


def opener(sink: SmtpSink) -> Callable[[], Deliverer]:
    return lambda: smtp_deliverer(sink)


def peers_by_address(sink: SmtpSink) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for item in sink.received:
        for rcpt in item.rcpt_tos:
            found[rcpt].add(item.peer)
    return found


def test_a_large_round_goes_over_the_most_connections_each_message_once(
    engine: Engine, smtp_sink: SmtpSink
) -> None:
    store(engine, messages(440, addresses=110))

    report = deliver_in_parallel(engine, opener(smtp_sink), connections=MAX_CONNECTIONS, now=T0)

    assert (report.sent, report.retry, report.failed, report.skipped) == (440, 0, 0, 0)
    counts = deliveries(smtp_sink)
    assert len(counts) == 440 and set(counts.values()) == {1}
    assert len({item.peer for item in smtp_sink.received}) == MAX_CONNECTIONS
    by_address = peers_by_address(smtp_sink)
    assert len(by_address) == 110 and {len(peers) for peers in by_address.values()} == {1}
    assert statuses(engine) == {"sent": 440}
    assert report.backlog is not None and report.backlog.due == 0
    assert "440 envoyés" in report.summary()


def test_a_second_connection_opens_only_for_enough_messages_each(
    engine: Engine, smtp_sink: SmtpSink
) -> None:
    store(engine, messages(2 * MESSAGES_PER_CONNECTION - 1, addresses=40))

    report = deliver_in_parallel(engine, opener(smtp_sink), connections=3, now=T0)

    assert report.sent == 2 * MESSAGES_PER_CONNECTION - 1
    assert len({item.peer for item in smtp_sink.received}) == 1


def test_a_period_group_goes_as_one_e_mail_beside_a_large_round(
    engine: Engine, example_plan: str, smtp_sink: SmtpSink
) -> None:
    helene = Recipient.of(person(engine, HELENE))
    choose_choice(engine, HELENE, Category.NOTICES, Choice(Frequency.DAILY, hour=18))
    day = [message("next-steps", n, helene) for n in range(1, 5)]
    store(engine, day + messages(300, addresses=75))

    evening = T0 + timedelta(hours=11)  # 18 h in Paris
    report = deliver_in_parallel(engine, opener(smtp_sink), connections=2, now=evening)

    assert report.sent == 304  # rows: Hélène's four went in one e-mail
    (grouped,) = smtp_sink.messages_to(HELENE)
    assert "4 messages regroupés" in str(grouped["Subject"])
    assert len({item.peer for item in smtp_sink.received}) == 2
    assert set(deliveries(smtp_sink).values()) == {1}
    assert {r.status for r in rows(engine)} == {OutboxStatus.SENT}


def test_a_failing_connection_is_reported_after_the_others_and_its_share_waits(
    engine: Engine, smtp_sink: SmtpSink
) -> None:
    store(engine, messages(400, addresses=100))
    calls = itertools.count(1)  # next() is atomic: the shares open their connections at once

    def second_fails() -> Deliverer:
        if next(calls) == 2:
            raise ConnectionError("serveur SMTP injoignable")
        return smtp_deliverer(smtp_sink)

    with pytest.raises(ConnectionError, match="injoignable"):
        deliver_in_parallel(engine, second_fails, connections=2, now=T0)

    sent = statuses(engine)["sent"]
    assert 0 < sent < 400 and statuses(engine)["pending"] == 400 - sent
    report = deliver_in_parallel(engine, opener(smtp_sink), connections=2, now=T0)
    assert report.sent == 400 - sent
    counts = deliveries(smtp_sink)
    assert len(counts) == 400 and set(counts.values()) == {1}


def test_shares_follow_the_address_and_every_row_has_one() -> None:
    rows_ = [_Row(f"pilote{n}@cc-tev.example") for n in range(200)] + [_Row("", "copil")]
    for shares in (1, 2, 3, MAX_CONNECTIONS):
        taken = [share_of(row, shares) for row in rows_]
        assert set(taken) == set(range(shares))  # every share gets rows
        assert taken == [share_of(row, shares) for row in rows_]  # the same every time


def test_the_number_of_connections_is_a_french_field_of_the_flows_form() -> None:
    from flows.outbox import deliver_outbox
    from tiflow.web.flow_forms import FormProblems, parameters_of, submitted, validated

    (delivery,) = parameters_of(deliver_outbox, "grand-est-touraine")
    (field,) = [f for f in delivery.fields if f.key == "connections"]
    assert (field.title, field.kind, field.default) == ("Connexions SMTP simultanées", "integer", 2)
    assert "au moins 100 messages" in field.description

    chosen = validated(deliver_outbox, submitted([delivery], {field.path: "3"}), [delivery])
    assert chosen["delivery"]["connections"] == 3
    with pytest.raises(FormProblems) as refused:
        validated(deliver_outbox, submitted([delivery], {field.path: "5"}), [delivery])
    assert refused.value.problems == {
        field.path: ["Connexions SMTP simultanées : trop grand (au plus 4)"]
    }
    assert DeliverySettings().connections == 2


def test_the_flows_round_under_prefect_sends_a_large_backlog_over_two_connections(
    flow_env: Engine, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The threads run inside the flow's task run, as in production: the default setting."""
    from flows.outbox import deliver_outbox

    monkeypatch.setenv("TIFLOW_NOTIFY_CONFIG", smtp_config(smtp_sink))
    store(flow_env, messages(250, addresses=50), now=utcnow())

    result = deliver_outbox()

    assert (result["sent"], result["retry"], result["failed"]) == (250, 0, 0)
    assert len({item.peer for item in smtp_sink.received}) == 2
    counts = deliveries(smtp_sink)
    assert len(counts) == 250 and set(counts.values()) == {1}


def test_the_round_over_two_connections_adds_up_every_count_and_lists_failures_in_order(
    engine: Engine, smtp_sink: SmtpSink
) -> None:
    store(engine, messages(300, addresses=100))
    addresses = [f"pilote{n}@cc-tev.example" for n in range(100)]
    by_share = [[a for a in addresses if share_of(_Row(a), 2) == i] for i in (0, 1)]
    refused = {by_share[0][0], by_share[1][0]}  # one on each connection, and so on
    deferred = {by_share[0][1], by_share[1][1]}
    smtp_sink.refuse.update(refused)
    smtp_sink.defer.update(deferred)

    report = deliver_in_parallel(engine, opener(smtp_sink), connections=2, now=T0)

    assert (report.sent, report.failed, report.retry) == (288, 6, 6)
    failed = [f for f in report.failures if f.recipient.split("<")[-1].rstrip(">") in refused]
    assert len(failed) == 6
    assert [f.id for f in report.failures] == sorted(f.id for f in report.failures)
    assert len({item.peer for item in smtp_sink.received}) == 2
