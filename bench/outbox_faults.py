"""Randomised fault injection on the outbox, counted at a real SMTP server (issue 20).

Each run stores a batch of messages of several kinds in a fresh database (SQLite, and
PostgreSQL when it answers), then delivers them through rounds hit by random faults:

* the delivering process killed (``os._exit``) at a random SMTP phase of a random message;
* the SMTP server stopped for a round, then restarted;
* bursts of 421/451 answers to DATA, and a server that stores a message then dies before
  its 250;
* the database locked by another transaction while a round runs, shorter or longer than the
  round's patience (then the round ends with the French ``DatabaseBusy`` line).

Then clean rounds (``--maintenant`` policy, clock past the in-doubt delay) until nothing
waits. Per kind it prints expected / delivered once / doubled / lost; a double is *explained*
when its message was in doubt (a kill after its content left, or the server dying before its
250) and carries one Message-ID. The promise: 0 lost, 0 unexplained doubles::

    python bench/outbox_faults.py [--runs 20] [--pg-runs 4] [--messages 24] [--max-seconds 240]

There is no baseline to divide by (a fault-free run gives N once, 0 doubled, 0 lost), so the
last line states the counts.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench._common import busy_cores, scratch_folder  # noqa: E402
from flows.usecases.bus import unit_of_work  # noqa: E402
from models.db import make_engine, normalise_url, upgrade  # noqa: E402
from models.outbox import OutboxMessage  # noqa: E402
from notifications.outbox import (  # noqa: E402
    DeliveryPolicy,
    NewMessage,
    deliver_pending,
    enqueue,
)
from notifications.transports import Deliverer  # noqa: E402
from tests.smtp_sink import SmtpSink  # noqa: E402

KINDS = ("reminder", "escalation", "digest", "budget")
PHASES = ("connected", "accepted", "data_sent", "replied")
T0 = datetime(2025, 3, 10, 7, 0, tzinfo=UTC)
M = OutboxMessage.__table__  # type: ignore[attr-defined]
PG_URL = os.environ.get(
    "TIFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

CHILD = """
import os, sys
from datetime import datetime
import models.db, notifications.smtp
from models.db import make_engine
from models.errors import DatabaseBusy
from notifications.outbox import DeliveryPolicy, deliver_pending
from notifications.transports import Deliverer

url, config, phase, nth, now, connect = sys.argv[1:7]
models.db.BUSY_PAUSE = 0.2
seen = []

def kill(reached):
    if reached.value == phase:
        seen.append(reached)
        if len(seen) == int(nth):
            os._exit(9)

notifications.smtp.phase_reached = kill
engine = make_engine(url, connect_args=eval(connect))
try:
    with Deliverer(config) as deliverer:
        deliver_pending(engine, deliverer, policy=DeliveryPolicy(ignore_backoff=True),
                        now=datetime.fromisoformat(now))
except DatabaseBusy as busy:
    print(busy, file=sys.stderr)
    sys.exit(3)
"""


@dataclass
class Tally:
    expected: Counter[str] = field(default_factory=Counter)
    once: Counter[str] = field(default_factory=Counter)
    doubled_explained: Counter[str] = field(default_factory=Counter)
    doubled_unexplained: Counter[str] = field(default_factory=Counter)
    lost: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)


def fresh_database(backend: str, folder: Path) -> tuple[str, dict[str, Any]]:
    """(URL, connect_args of an impatient child) of an empty, migrated database."""
    if backend == "sqlite":
        url = f"sqlite:///{folder / f'{uuid.uuid4().hex[:8]}.db'}"
        patience: dict[str, Any] = {"check_same_thread": False, "timeout": 0.5}
    else:
        schema = f"tiflow_bench_{uuid.uuid4().hex[:10]}"
        admin = make_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        options = f"-csearch_path={schema}"
        url = (
            sa.make_url(normalise_url(PG_URL))
            .update_query_dict({"options": options})
            .render_as_string(hide_password=False)
        )
        patience = {"options": f"{options} -c lock_timeout=500"}
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url, patience


def store(url: str, count: int, rng: random.Random) -> None:
    engine = make_engine(url)
    messages = [
        NewMessage(
            key=f"bench:{n}",
            kind=rng.choice(KINDS),
            tag="pilots",
            to=[f"Pilote {n} <pilote{n}@territoire.example>"],
            subject=f"Message n° {n} : échéance dans 7 jours",
            text=f"Bonjour, l'échéance n° {n} approche.",
        )
        for n in range(count)
    ]
    with unit_of_work(engine) as uow:
        enqueue(uow, messages, now=T0)
        uow.commit()
    engine.dispose()


class Lock:
    """Another transaction holding the outbox for ``seconds``, from a thread."""

    def __init__(self, url: str, seconds: float) -> None:
        self.url, self.seconds = url, seconds
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self) -> None:
        if self.url.startswith("sqlite"):
            raw = sqlite3.connect(sa.make_url(self.url).database or "", isolation_level=None)
            raw.execute("BEGIN IMMEDIATE")
            self.ready.set()
            time.sleep(self.seconds)
            raw.rollback()
            raw.close()
            return
        engine = make_engine(self.url)
        with engine.connect() as conn:
            conn.execute(sa.text("LOCK TABLE outbox_message IN ACCESS EXCLUSIVE MODE"))
            self.ready.set()
            time.sleep(self.seconds)
            conn.rollback()
        engine.dispose()

    def __enter__(self) -> Lock:
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        self.thread.join(30)


def faulty_round(
    url: str,
    patience: dict[str, Any],
    sink: SmtpSink,
    now: datetime,
    rng: random.Random,
    messages: int,
) -> tuple[str, set[str]]:
    """One round in a child process with random faults; returns (fault, in-doubt addresses)."""
    addresses = [f"pilote{n}@territoire.example" for n in range(messages)]
    fault = rng.choice(["kill", "kill", "smtp-down", "4xx-burst", "die-before-250", "lock"])
    doubt: set[str] = set()
    phase, nth = rng.choice(PHASES), rng.randint(1, 6)
    if fault != "kill":
        phase = "none"
    if fault == "4xx-burst":
        for address in rng.sample(addresses, min(6, messages)):
            sink.data_reply[address] = rng.choice(["421 4.3.2 Shutting down", "451 4.3.0 Busy"])
    if fault == "die-before-250":
        died = set(rng.sample(addresses, min(3, messages)))
        sink.die_before_250.update(died)
        doubt |= died
    if fault == "smtp-down":
        sink.stop()
    config = f"pilots={sink.url('tiflow@territoire.example')}"
    command = [sys.executable, "-c", CHILD, url, config, phase, str(nth), now.isoformat()]
    command.append(repr(patience))
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    if fault == "lock":
        with Lock(url, rng.choice([0.3, 1.0, 2.0, 8.0])):
            child = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=300)
    else:
        child = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=300)
    if fault == "smtp-down":
        sink.restart()
    if child.returncode not in (0, 9, 3):
        raise SystemExit(f"round crashed ({child.returncode}): {child.stderr.decode()[-2000:]}")
    if child.returncode == 3:
        fault = "lock-too-long"
    if child.returncode == 9:
        doubt |= in_doubt_rows(url)
    else:
        fault = fault if fault != "kill" else "kill-not-reached"
    return fault, doubt


def in_doubt_rows(url: str) -> set[str]:
    """Addresses left ``sending`` after their content left: the window SMTP cannot close."""
    engine = make_engine(url)
    with engine.connect() as conn:
        found = set(
            conn.execute(
                sa.select(M.c.address).where(
                    M.c.status == "sending", M.c.delivery_phase == "data_sent"
                )
            ).scalars()
        )
    engine.dispose()
    return found


def finish(url: str, sink: SmtpSink, now: datetime) -> None:
    """Clean rounds, past the in-doubt delay, until nothing waits (bounded)."""
    engine = make_engine(url)
    policy = DeliveryPolicy(ignore_backoff=True, max_attempts=50)
    sink.data_reply.clear()
    sink.die_before_250.clear()
    for step in range(6):
        with Deliverer(f"pilots={sink.url('tiflow@territoire.example')}") as deliverer:
            report = deliver_pending(
                engine, deliverer, policy=policy, now=now + timedelta(hours=1 + step)
            )
        left = report.backlog
        if left and not (left.waiting + left.due + left.sending):
            break
    engine.dispose()


def count(url: str, sink: SmtpSink, doubt: set[str], tally: Tally) -> None:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(M.c.address, M.c.kind, M.c.subject)).all()
    engine.dispose()
    got: Counter[tuple[str, str]] = Counter()
    ids: dict[tuple[str, str], set[str]] = defaultdict(set)
    with sink.lock:
        received = list(sink.received)
    for item in received:
        message = item.message
        for rcpt in item.rcpt_tos:
            got[(rcpt, str(message["Subject"]))] += 1
            ids[(rcpt, str(message["Subject"]))].add(str(message["Message-ID"]))
    for row in rows:
        key = (row.address, row.subject)
        tally.expected[row.kind] += 1
        n = got.get(key, 0)
        if n == 0:
            tally.lost[row.kind] += 1
        elif n == 1:
            tally.once[row.kind] += 1
        elif row.address in doubt and len(ids[key]) == 1:
            tally.doubled_explained[row.kind] += 1
        else:
            tally.doubled_unexplained[row.kind] += 1


def one_run(backend: str, folder: Path, messages: int, rng: random.Random, tally: Tally) -> None:
    url, patience = fresh_database(backend, folder)
    store(url, messages, rng)
    sink = SmtpSink().start()
    doubt: set[str] = set()
    try:
        now = T0
        for _ in range(rng.randint(1, 3)):
            fault, in_doubt = faulty_round(url, patience, sink, now, rng, messages)
            tally.faults[f"{backend}:{fault}"] += 1
            doubt |= in_doubt
            now += timedelta(hours=1)  # past the in-doubt delay: the next round recovers
        finish(url, sink, now)
        count(url, sink, doubt, tally)
    finally:
        sink.stop()


def postgres_answers() -> bool:
    try:
        engine = make_engine(PG_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return True
    except sa.exc.OperationalError:
        return False


def report(tally: Tally, runs: int, elapsed: float) -> None:
    print(f"\n{runs} runs in {elapsed:.0f} s; faults injected:")
    for name, n in sorted(tally.faults.items()):
        print(f"  {name:32} {n}")
    print(
        f"\n{'kind':12} {'expected':>9} {'once':>7} {'doubled (in doubt)':>19}"
        f" {'doubled (other)':>16} {'lost':>6}"
    )
    for kind in KINDS:
        print(
            f"{kind:12} {tally.expected[kind]:9} {tally.once[kind]:7}"
            f" {tally.doubled_explained[kind]:19} {tally.doubled_unexplained[kind]:16}"
            f" {tally.lost[kind]:6}"
        )
    total = sum(tally.expected.values())
    print(
        f"counts: expected {total}, delivered once {sum(tally.once.values())}, doubled in doubt"
        f" {sum(tally.doubled_explained.values())} (same Message-ID), doubled otherwise"
        f" {sum(tally.doubled_unexplained.values())}, lost {sum(tally.lost.values())}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--pg-runs", type=int, default=4)
    parser.add_argument("--messages", type=int, default=24)
    parser.add_argument("--max-seconds", type=float, default=240)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--busy", action="store_true", help="keep both cores spinning")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    tally = Tally()
    started = time.monotonic()
    plan = ["sqlite"] * args.runs + (["postgresql"] * args.pg_runs if postgres_answers() else [])
    done = 0
    with scratch_folder("outbox-faults-") as folder, busy_cores(args.busy):
        for backend in plan:
            if time.monotonic() - started > args.max_seconds:
                print(f"time bound reached after {done} runs")
                break
            one_run(backend, folder, args.messages, rng, tally)
            done += 1
    report(tally, done, time.monotonic() - started)
    if sum(tally.lost.values()) or sum(tally.doubled_unexplained.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
