"""Fixtures for the outbox tests: a real SMTP server on loopback, counting helpers, a database
that gives up on a lock quickly and another transaction to hold one; for
the preferences' tests, two people of the example plan, a JSON endpoint and the operator's
channel « canal-equipe »."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import select

from flows.usecases.preferences import set_preference
from models.db import make_engine
from models.preferences import Category, Choice
from models.tables import Person
from models.uow import UnitOfWork
from notifications.transports import Deliverer
from tests.notifications.http_sink import JsonReceiver, running_receiver
from tests.smtp_sink import SmtpSink, running_sink

HELENE = "helene.garnier@aicr.example"
KARIM = "karim.haddad@cc-tev.example"


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


@pytest.fixture
def json_receiver() -> Iterator[JsonReceiver]:
    with running_receiver() as receiver:
        yield receiver


@pytest.fixture
def second_sink() -> Iterator[SmtpSink]:
    with running_sink() as sink:
        yield sink


def person(engine: Engine, email: str) -> Person:
    with UnitOfWork(engine) as uow:
        found = uow.session.exec(select(Person).where(Person.email == email)).one()
        uow.session.expunge(found)
    return found


def choose(engine: Engine, email: str, category: Category, channel: str) -> None:
    choose_choice(engine, email, category, Choice(channel=channel))


def choose_choice(engine: Engine, email: str, category: Category, choice: Choice) -> None:
    with UnitOfWork(engine) as uow:
        someone = uow.session.merge(person(engine, email))
        set_preference(uow, someone, category, choice, actor="test", via="test")
        uow.commit()


@pytest.fixture
def people(engine: Engine, example_plan: str) -> tuple[Person, Person]:
    return person(engine, HELENE), person(engine, KARIM)


@dataclass(frozen=True)
class Team:
    """The operator's configuration (e-mail, and the channel « canal-equipe » on a JSON
    endpoint), set in the environment, and the real servers behind it."""

    engine: Engine
    people: tuple[Person, Person]
    smtp: SmtpSink
    json: JsonReceiver
    config: str


@pytest.fixture
def team(
    engine: Engine,
    people: tuple[Person, Person],
    smtp_sink: SmtpSink,
    json_receiver: JsonReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> Team:
    config = f"{smtp_config(smtp_sink)} canal-equipe={json_receiver.url}"
    monkeypatch.setenv("TIFLOW_NOTIFY_CONFIG", config)
    return Team(engine, people, smtp_sink, json_receiver, config)


@pytest.fixture
def impatient(engine: Engine) -> Iterator[Engine]:
    """The same database, waiting 0.2 s for a lock instead of 30 s."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        quick = make_engine(
            url.render_as_string(hide_password=False),
            connect_args={"check_same_thread": False, "timeout": 0.2},
        )
    else:
        options = f"{url.query.get('options', '')} -c lock_timeout=200".strip()
        quick = make_engine(
            url.render_as_string(hide_password=False), connect_args={"options": options}
        )
    yield quick
    quick.dispose()


class Locker:
    """Another process's transaction holding the outbox table (SQLite: the write lock)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.held: Any = None

    def take(self) -> None:
        if self.engine.url.get_backend_name() == "sqlite":
            raw = sqlite3.connect(str(self.engine.url.database), isolation_level=None)
            raw.execute("BEGIN IMMEDIATE")
            self.held = raw
        else:
            conn = self.engine.connect()
            conn.execute(sa.text("LOCK TABLE outbox_message IN ACCESS EXCLUSIVE MODE"))
            self.held = conn

    def release(self, *_: object) -> None:
        if self.held is not None:
            self.held.rollback()
            self.held.close()
            self.held = None
