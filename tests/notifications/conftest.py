"""Fixtures for the notification tests: a real SMTP sink and a tiny HTTP receiver."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.notifications.http_sink import JsonReceiver, running_receiver
from tests.smtp_sink import SmtpSink, running_sink


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """Plain SMTP on 127.0.0.1, no TLS, no AUTH."""
    with running_sink() as sink:
        yield sink


@pytest.fixture
def make_sink(tmp_path: Path) -> Iterator[Callable[..., SmtpSink]]:
    """Factory for more sinks, with AUTH (``credentials=``) or TLS (``tls="starttls"|"ssl"``)."""
    with ExitStack() as stack:

        def make(**kwargs: Any) -> SmtpSink:
            return stack.enter_context(running_sink(cert_dir=tmp_path, **kwargs))

        yield make


@pytest.fixture
def json_receiver() -> Iterator[JsonReceiver]:
    """HTTP endpoint for apprise's ``json://`` plugin: proves non-e-mail channels."""
    with running_receiver() as receiver:
        yield receiver
