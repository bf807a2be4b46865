"""One daily reminder sweep at national scale, as production runs it, against a plain baseline.

Builds a fresh database with 183 territories × 25 actions × 4 milestones (10 pilots and one
coordinator per territory; due dates spread so that every pilot has something to hear about
on the bench day and each coordinator an escalation; titles differ from one territory to the
next, as in real plans, so that what tiflow computes once per distinct line of text is not
flattered by a plan that repeats itself), starts an aiosmtpd sink on loopback in its own
process, then times, in the same run:

* tiflow: the real flow ``rappels-echeances`` on a Prefect server that is already running
  (Prefect's test harness — the same server code as ``prefect server start``, on a database
  of its own — started and warmed up by one run before any timing), **flow heartbeat on** as
  in production: compute and enqueue every message in one transaction, then one delivery
  round over the default two SMTP connections, each with its share of the addresses (each
  message claimed, marked ``data_sent`` and its outcome recorded: two commits flushed to
  disk; on PostgreSQL an outcome and the next claim are one of them, on SQLite the claim is a
  third commit, not flushed). Its parts are printed:
  planning (compute + enqueue), the delivery round (messages per second), the rest (Prefect:
  flow and task runs, heartbeat, artifact), and what one flushed commit costs on the round's
  database just before (on a shared machine, the disk makes much of the round's spread), and
  the CPU time the hypervisor gave to other machines meanwhile (``bench._common.Stolen``: a
  round with seconds stolen ran up to 2.6 times slower here, whatever the code);
* the baseline, the floor of the same work: the same reminders read with one SQL query, and
  one pre-built text + HTML e-mail per recipient (built before the clock starts) sent with
  ``smtplib`` over one reused connection. The last line's ratio is against it; for
  comparison, the same baseline over as many connections as tiflow's round (threads, the
  addresses shared alike) is printed with its own ratio.

With ``--preferences`` (the default; ``--no-preferences`` for the plain plan) the pilots get a
realistic mix of choices for their reminders (deadline reminders and « Où en êtes-vous ? »
nudges alike): 60 % none (immediately), 25 % weekly on a random day, 10 % daily at 9 h, 5 %
never. tiflow enqueues the delayed ones for their day and sends today only what is due now;
the baseline does the same work: its query leaves out the « never » pilots and it sends only
the messages whose sending time (``models.preferences.send_at``) has come.

Each round uses a fresh database (SQLite in the scratch folder, or a PostgreSQL schema of its
own) and runs both, one right after the other; noise only ever adds time, so rounds are
repeated (3 by default) and the median taken. The last line is ``ratio: N.NN`` (tiflow's time
over the baseline's, median of the rounds; goals: ≤ 1.5 idle, ≤ 2 with ``--busy``). Every
temporary folder (databases, Prefect home, outbox) is removed at the end::

    python bench/reminders.py [--rounds 3] [--busy] [--no-preferences] [--connections N]
    TIFLOW_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1/test python bench/reminders.py
"""

from __future__ import annotations

import argparse
import os
import random
import smtplib
import socket
import statistics
import subprocess
import sys
import time
import uuid
import zlib
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from html import escape
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bench._common import Stolen, busy_cores, scratch_folder
from models import clock
from models.db import make_engine, normalise_url, upgrade
from models.lifecycle import State
from models.preferences import Category, Choice, Frequency, PersonPreference, send_at
from models.tables import ActionSheet, Milestone, Person, PersonRole, Territory
from notifications.message import MIME_POLICY
from notifications.outbox import DeliverySettings

HOST = "127.0.0.1"
SENDER = "tiflow@bench.example"
TERRITORIES, ACTIONS, MILESTONES, PILOTS = 183, 25, 4, 10
AS_OF = date(2025, 3, 10)
# Due dates relative to the bench day: J-30, J-7, J-1, J0, overdue R+7 and R+14 (escalated),
# and two that call for nothing today.
SPREAD = (30, 7, 1, 0, -7, -14, 60, 3)


def start_sink() -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink"]
    proc = subprocess.Popen(
        [*command, "-l", f"{HOST}:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the aiosmtpd sink did not start")


def database(scratch: Path, name: str) -> tuple[str, Callable[[], None]]:
    """A fresh database URL (SQLite in ``scratch``, or a PostgreSQL schema), and its clean-up."""
    given = os.environ.get("TIFLOW_BENCH_DATABASE_URL")
    if not given:
        return f"sqlite:///{scratch / f'{name}.db'}", lambda: None
    admin = make_engine(given)
    schema = f"tiflow_bench_{uuid.uuid4().hex[:8]}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.make_url(normalise_url(given)).update_query_dict(
        {"options": f"-csearch_path={schema}"}
    )

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return url.render_as_string(hide_password=False), drop


# The mix of the pilots' choices: (share, frequency); weekly on a random day, daily at 9 h.
MIX = ((0.60, None), (0.25, Frequency.WEEKLY), (0.10, Frequency.DAILY), (0.05, Frequency.NEVER))


def preference_rows(pilots: list[int], seed: int = 17) -> list[dict[str, Any]]:
    """``person_preference`` rows for the mix (deadline reminders and nudges alike: a pilot's
    reminder e-mail follows both); none for the 60 % who chose nothing."""
    rng = random.Random(seed)
    now = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
    rows = []
    for person in pilots:
        draw, frequency = rng.random(), None
        for share, wanted in MIX:
            if draw < share:
                frequency = wanted
                break
            draw -= share
        if frequency is None:
            continue
        weekday = rng.randrange(7) if frequency is Frequency.WEEKLY else None
        hour = 9 if frequency is Frequency.DAILY else 8
        for category in (Category.DEADLINES, Category.NUDGES):
            rows.append(
                {
                    "person_id": person,
                    "category": category.value,
                    "frequency": frequency.value,
                    "weekday": weekday,
                    "hour": hour,
                    "channel": "email",
                    "updated_at": now,
                }
            )
    return rows


def build_plan(engine: Engine, preferences: bool = True) -> dict[str, int]:
    """Bulk-insert the national plan (ids chosen here: one executemany per table)."""
    now = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
    territories, people, roles, actions, milestones = [], [], [], [], []
    all_pilots: list[int] = []
    person_id = action_id = milestone_id = 0
    for t in range(1, TERRITORIES + 1):
        territories.append(
            {
                "id": t,
                "code": f"ti-{t:03d}",
                "name": f"Territoire n° {t}",
                "department": None,
                "region": None,
                "is_example": False,
            }
        )
        person_id += 1
        people.append(_person(person_id, t, "Claire Moreau", f"coordination@ti-{t:03d}.example"))
        roles.append({"person_id": person_id, "role": "coordinator"})
        pilots = []
        for p in range(PILOTS):
            person_id += 1
            email = f"pilote.{p:02d}@ti-{t:03d}.example"
            people.append(_person(person_id, t, f"Pilote {p:02d} Hélène", email))
            roles.append({"person_id": person_id, "role": "pilot"})
            pilots.append(person_id)
        all_pilots.extend(pilots)
        for a in range(ACTIONS):
            action_id += 1
            actions.append(
                {
                    "id": action_id,
                    "territory_id": t,
                    "number": f"FA-{a + 1:02d}",
                    "title": f"Action {a + 1:02d} du territoire n° {t} : usine-témoin",
                    "description": "",
                    "axis": "innovation",
                    "pilot_id": pilots[a % PILOTS],
                    "firm_commitment": a % 3 == 0,
                    "priority": 2,
                    "start_date": AS_OF - timedelta(days=100),
                    "end_date": AS_OF + timedelta(days=365),
                    "state": State.IN_PROGRESS.value,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            for m in range(MILESTONES):
                milestone_id += 1
                offset = SPREAD[(a * MILESTONES + m) % len(SPREAD)]
                milestones.append(
                    {
                        "id": milestone_id,
                        "action_id": action_id,
                        "title": f"Jalon {m + 1} de l'action {a + 1:02d} du territoire n° {t}",
                        "due_date": AS_OF + timedelta(days=offset),
                        "done_on": None,
                    }
                )
    with engine.begin() as conn:
        for model, rows in (
            (Territory, territories),
            (Person, people),
            (PersonRole, roles),
            (ActionSheet, actions),
            (Milestone, milestones),
        ):
            conn.execute(sa.insert(model.__table__), rows)  # type: ignore[union-attr]
        chosen = preference_rows(all_pilots) if preferences else []
        if chosen:
            conn.execute(sa.insert(PersonPreference.__table__), chosen)  # type: ignore[attr-defined]
        if conn.dialect.name == "postgresql":
            for table in ("territory", "person", "action_sheet", "milestone"):
                conn.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                        f" (SELECT max(id) FROM {table}))"
                    )
                )
    return {
        "territories": len(territories),
        "people": len(people),
        "actions": len(actions),
        "milestones": len(milestones),
        "preferences": len(chosen),
    }


def _person(pid: int, territory: int, name: str, email: str) -> dict[str, Any]:
    return {
        "id": pid,
        "territory_id": territory,
        "full_name": name,
        "email": email,
        "organisation_id": None,
        "position": None,
    }


BASELINE_QUERY = """
SELECT p.email, p.full_name, a.number, a.title, m.title AS milestone, m.due_date, 'pilot' AS who,
       pp.frequency, pp.weekday, pp.hour
  FROM milestone m
  JOIN action_sheet a ON a.id = m.action_id
  JOIN person p ON p.id = a.pilot_id
  LEFT JOIN person_preference pp ON pp.person_id = p.id AND pp.category = 'deadlines'
 WHERE m.done_on IS NULL AND a.state IN :open AND m.due_date IN :pilot_days
   AND (pp.frequency IS NULL OR pp.frequency <> 'never')
UNION ALL
SELECT p.email, p.full_name, a.number, a.title, m.title, m.due_date, 'coordinator',
       NULL, NULL, NULL
  FROM milestone m
  JOIN action_sheet a ON a.id = m.action_id
  JOIN personrole r ON r.role = 'coordinator'
  JOIN person p ON p.id = r.person_id AND p.territory_id = a.territory_id
 WHERE m.done_on IS NULL AND a.state IN :open AND m.due_date = :escalation_day
"""


def _phrase(due: date) -> str:
    days = (due - AS_OF).days
    return f"dans {days} jours" if days >= 0 else f"en retard de {-days} jours"


def baseline_query(engine: Engine) -> list[Any]:
    pilot_days = [AS_OF + timedelta(days=o) for o in (30, 7, 1, 0)]
    pilot_days += [AS_OF - timedelta(days=7 * k) for k in range(1, 53)]
    query = (
        sa.text(BASELINE_QUERY)
        .bindparams(
            sa.bindparam("open", expanding=True), sa.bindparam("pilot_days", expanding=True)
        )
        .columns(due_date=sa.Date)  # SQLite returns dates as text otherwise
    )
    with engine.connect() as conn:
        return list(
            conn.execute(
                query,
                {
                    "open": [s.value for s in State if s.is_open],
                    "pilot_days": pilot_days,
                    "escalation_day": AS_OF - timedelta(days=14),
                },
            ).all()
        )


def due_now(row: Any, now: datetime) -> bool:
    """Whether the recipient's message goes out now under their choice (none: immediately)."""
    if row.frequency is None:
        return True
    choice = Choice(Frequency(row.frequency), row.weekday, row.hour)
    at = send_at(choice, now)
    return at is not None and at <= now


def prebuilt_messages(rows: list[Any]) -> list[tuple[str, bytes]]:
    """One e-mail per recipient whose message is due now (the same information as tiflow's:
    a line per item, text and HTML), as bytes: built before the baseline's clock starts."""
    grouped: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
    now = clock.now()
    for row in rows:
        if due_now(row, now):
            grouped[(row.who, row.email, row.full_name)].append(row)
    messages = []
    for (_who, email, name), items in grouped.items():
        lines = [
            f"{r.number} {r.title} : jalon « {r.milestone} », échéance le"
            f" {r.due_date:%d/%m/%Y} ({_phrase(r.due_date)})"
            for r in items
        ]
        msg = EmailMessage(policy=MIME_POLICY)
        msg["From"], msg["To"] = SENDER, f"{name} <{email}>"
        msg["Subject"] = f"Rappel : {len(items)} échéance(s) pour vos actions"
        msg.set_content(
            f"Bonjour {name},\n\nVos échéances au {AS_OF:%d/%m/%Y} :\n\n"
            + "\n".join(f"  - {line}" for line in lines)
            + "\n\n-- \nMessage envoyé automatiquement.\n"
        )
        msg.add_alternative(
            f"<html><body><p>Bonjour {escape(name)},</p>"
            f"<p>Vos échéances au {AS_OF:%d/%m/%Y} :</p><ul>"
            + "".join(f"<li>{escape(line)}</li>" for line in lines)
            + "</ul><p>Message envoyé automatiquement.</p></body></html>",
            subtype="html",
        )
        messages.append((email, msg.as_bytes()))
    return messages


def baseline(engine: Engine, port: int, connections: int = 1) -> tuple[int, float, float]:
    """The floor: the query, then the pre-built messages over one SMTP connection (or over
    ``connections`` at once, each in its thread with its share of the addresses, as tiflow
    shares them). Returns (messages, query seconds, total seconds)."""
    messages = prebuilt_messages(baseline_query(engine))  # not timed
    start = time.perf_counter()
    rows = baseline_query(engine)
    queried = time.perf_counter() - start

    def send(share: list[tuple[str, bytes]]) -> None:
        with smtplib.SMTP(HOST, port) as smtp:
            for address, data in share:
                smtp.sendmail(SENDER, [address], data)

    if connections == 1:  # the floor as it always was: no thread in the way
        send(messages)
    else:
        shares: list[list[tuple[str, bytes]]] = [[] for _ in range(connections)]
        for address, data in messages:
            shares[zlib.crc32(address.encode()) % connections].append((address, data))
        with ThreadPoolExecutor(connections) as pool:
            list(pool.map(send, shares))
    assert len(prebuilt_messages(rows)) == len(messages)  # after the clock: same work read
    return len(messages), queried, time.perf_counter() - start


class Timed:
    """Wraps a function of a module and adds up the time spent in it (the flow's parts)."""

    def __init__(self, module: Any, name: str) -> None:
        self.module, self.name, self.seconds = module, name, 0.0
        self.original = getattr(module, name)

    def __enter__(self) -> Timed:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return self.original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        setattr(self.module, self.name, timed)
        return self

    def __exit__(self, *_: object) -> None:
        setattr(self.module, self.name, self.original)


def flushed_commit_ms(engine: Engine, count: int = 30) -> float:
    """What one commit flushed to disk costs now, on this round's database: the outbox needs
    two per message (``data_sent`` before the content, the outcome after the reply), so on a
    shared machine this figure, not tiflow's code, is most of the delivery round's spread."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("CREATE TABLE bench_flush (id INTEGER PRIMARY KEY, n INTEGER)"))
        conn.execute(sa.text("INSERT INTO bench_flush VALUES (1, 0)"))
        started = time.perf_counter()
        for _ in range(count):
            conn.execute(sa.text("UPDATE bench_flush SET n = n + 1 WHERE id = 1"))
        elapsed = time.perf_counter() - started
        conn.execute(sa.text("DROP TABLE bench_flush"))
    return elapsed / count * 1000


def one_round(
    number: int, port: int, scratch: Path, preferences: bool, connections: int
) -> dict[str, float]:
    """A fresh national plan, one sweep through the flow (its round over up to
    ``connections`` SMTP connections), then the baseline."""
    import flows.reminders
    from flows.reminders import deadline_reminders

    url, drop = database(scratch, f"round-{number}")
    os.environ["TIFLOW_DATABASE_URL"] = url
    try:
        engine = make_engine(url)
        upgrade(engine)
        started = time.perf_counter()
        sizes = build_plan(engine, preferences)
        print(
            f"round {number}: {sizes['territories']} territoires, {sizes['actions']} actions,"
            f" {sizes['milestones']} jalons, {sizes['people']} personnes,"
            f" {sizes['preferences']} préférences"
            f" ({engine.dialect.name}, built in {time.perf_counter() - started:.1f} s)"
        )
        flush = flushed_commit_ms(engine)
        with Timed(flows.reminders, "plan_and_enqueue") as planning, Stolen() as stolen:
            started = time.perf_counter()
            result = deadline_reminders(
                as_of=AS_OF, delivery=DeliverySettings(connections=connections)
            )
            tiflow = time.perf_counter() - started
        sent = int(result["sent"])
        delivery = float(result["delivery_seconds"])
        rest = tiflow - delivery - planning.seconds
        print(
            f"  (a) tiflow flow rappels-echeances: {sent} e-mails ({result['items']} items) in"
            f" {tiflow:.2f} s = {sent / tiflow:.0f} msg/s\n"
            f"      planning (compute + enqueue) {planning.seconds:.2f} s, delivery round"
            f" {delivery:.2f} s = {sent / delivery:.0f} msg/s, Prefect and the rest"
            f" {rest:.2f} s; one flushed commit {flush:.2f} ms (2 per message); {stolen}"
        )
        with Stolen() as stolen_plain:
            messages, queried, plain = baseline(engine, port)
        print(
            f"  (b) baseline 1 query + pre-built messages over 1 SMTP connection: {messages}"
            f" e-mails in {plain:.2f} s (query {queried:.2f} s) = {messages / plain:.0f} msg/s;"
            f" {stolen_plain}   -> ratio {tiflow / plain:.2f}"
        )
        with Stolen() as stolen_over:
            _, _, over = baseline(engine, port, connections)
        print(
            f"  (c) the same over {connections} SMTP connections at once, as tiflow's round:"
            f" {over:.2f} s = {messages / over:.0f} msg/s; {stolen_over}"
            f"   -> ratio {tiflow / over:.2f}"
        )
        if messages != sent or result["failed"] or result["retry"]:
            print(
                f"  warning: tiflow sent {sent} (failed {result['failed']}, retry"
                f" {result['retry']}), the baseline {messages}"
            )
        engine.dispose()
        figures = {
            "ratio": tiflow / plain,
            "ratio_over": tiflow / over,
            "rate": sent / delivery,
            "tiflow": tiflow,
            "plain": plain,
        }
        if stolen.seconds is not None:  # not known off Linux
            figures["stolen"] = stolen.seconds
        return figures
    finally:
        drop()


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--busy", action="store_true", help="one spinning process per core")
    parser.add_argument(
        "--preferences",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the pilots' mix of preferences (default on)",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=DeliverySettings().connections,
        help="SMTP connections of the delivery round (default: the flows' default)",
    )
    args = parser.parse_args()
    with scratch_folder() as scratch:
        proc, port = start_sink()
        try:
            os.environ.update(
                PREFECT_SERVER_ANALYTICS_ENABLED="false",
                PREFECT_HOME=str(scratch / "prefect"),
                TIFLOW_DATA_DIR=str(scratch / "data"),
                TIFLOW_NOTIFY_CONFIG=(
                    f"pilots,copil,coordinator=mailto://{HOST}:{port}?from={SENDER}"
                ),
            )
            print(f"load average at start: {load()}{' (--busy)' if args.busy else ''}")
            figures = run_rounds(
                args.rounds, port, scratch, args.busy, args.preferences, args.connections
            )
            print(f"load average at the end: {load()}")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    ratios = sorted(f["ratio"] for f in figures)
    rates = [f["rate"] for f in figures]
    print(
        f"delivery round: median {statistics.median(rates):.0f} msg/s"
        f" (rounds: {', '.join(f'{r:.0f}' for r in rates)}; goal >= 150 idle)"
    )
    print(
        f"ratios: {', '.join(f'{r:.2f}' for r in ratios)} (median below;"
        " goal <= 1.5 idle, <= 2 busy)"
    )
    over = statistics.median(f["ratio_over"] for f in figures)
    print(
        f"ratio against the baseline over {args.connections} connections (c): median {over:.2f}"
        " (for comparison; the ratio below is against one connection, the issue's floor)"
    )
    if all("stolen" in f for f in figures):
        stolen = ", ".join(f"{f['stolen']:.1f}" for f in figures)
        print(f"CPU seconds stolen by the hypervisor during tiflow's runs: {stolen}")
    print(f"ratio: {statistics.median(ratios):.2f}")


def run_rounds(
    rounds: int, port: int, scratch: Path, busy: bool, preferences: bool, connections: int
) -> list[dict[str, float]]:
    """The server started and warmed up first (on a loaded 2-core machine it can take more
    than a minute), then the spinners of ``--busy``, then the timed rounds."""
    from prefect.testing.utilities import prefect_test_harness

    from flows.reminders import deadline_reminders

    started = time.perf_counter()
    with prefect_test_harness(server_startup_timeout=300):
        url, drop = database(scratch, "warm-up")
        os.environ["TIFLOW_DATABASE_URL"] = url
        upgrade(make_engine(url))
        deadline_reminders(as_of=AS_OF)  # warm-up on an empty plan: imports, templates
        drop()
        warm = time.perf_counter() - started
        print(
            f"Prefect test server started and warmed up in {warm:.1f} s (not timed; heartbeat on)"
        )
        with busy_cores(busy):
            return [
                one_round(n, port, scratch, preferences, connections) for n in range(1, rounds + 1)
            ]


if __name__ == "__main__":
    main()
