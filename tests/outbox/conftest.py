"""Fixtures for the outbox tests: a real SMTP server on loopback, and counting helpers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from notifications.transports import Deliverer
from tests.smtp_sink import SmtpSink, running_sink


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    with running_sink() as sink:
        yield sink


def smtp_config(sink: SmtpSink) -> str:
    """TIFLOW_NOTIFY_CONFIG for the sink: every tiflow tag goes to it."""
    return f"pilots,copil,coordinator={sink.url('tiflow@grand-est-touraine.example')}"


def smtp_deliverer(sink: SmtpSink) -> Deliverer:
    return Deliverer(smtp_config(sink))


def deliveries(sink: SmtpSink) -> Counter[tuple[str, str]]:
    """How many times each (recipient, Message-ID) reached the server."""
    counts: Counter[tuple[str, str]] = Counter()
    with sink.lock:
        received = list(sink.received)
    for item in received:
        for rcpt in item.rcpt_tos:
            counts[(rcpt, str(item.message["Message-ID"]))] += 1
    return counts
