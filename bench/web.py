"""The main pages of `tiflow web` on the national dataset, against their database queries alone.

Builds the national plan of bench/reminders.py (183 territories × 25 actions × 4 milestones,
10 pilots and a coordinator per territory; plus a COPIL member and a scheduled COPIL in the
first territory), signs three people in (sessions opened directly: no e-mail), then for each
page:

* tiflow: the whole request in process (FastAPI's TestClient): session and roles, the route
  table's check, the page's reads, Jinja2 rendering, security headers. Each client is opened
  as a context manager, so that its requests share one event loop as a server's do (used
  bare, TestClient starts a thread and an event loop for every request: about 3 ms of the
  harness's own per request on this machine, not the application's);
* the baseline: the very SQL statements that request ran (captured with SQLAlchemy's
  ``before_cursor_execute``), replayed as they are on a raw connection.

Prints median and 95th percentile per page for both; the last line is ``ratio: N.NN``, the
sum of the pages' medians over the sum of their queries' medians (goal: p95 under 200 ms,
ratio under 3)::

    python bench/web.py [--requests 40] [--busy]   # fresh SQLite database
    TIFLOW_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1/test python bench/web.py

The coordinator's dashboard (counts, late and at risk, next COPIL, three charts) and the COPIL
page (agenda and digest preview) are measured with the other pages; each line also gives that
page's own ratio. ``--busy`` keeps every core spinning meanwhile (bench/_common.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa
from _common import busy_cores, scratch_folder
from fastapi.testclient import TestClient
from reminders import build_plan, database  # bench/reminders.py: the national dataset
from sqlalchemy.engine import Engine

from flows.usecases.bus import unit_of_work
from flows.usecases.copil import schedule_copil
from models import clock
from models.db import make_engine, upgrade
from models.settings import load_settings
from models.tables import Person, PersonRole
from models.vocabulary import Role
from tiflow.web.app import SESSION_COOKIE, create_app
from tiflow.web.config import WebSettings
from tiflow.web.sessions import open_session

TERRITORY = "ti-001"
PILOT = "pilote.00@ti-001.example"
COORDINATOR = "coordination@ti-001.example"
MEMBER = "copil@ti-001.example"


def prepare(engine: Engine) -> int:
    counts = build_plan(engine)
    print(", ".join(f"{n} {what}" for what, n in counts.items()))
    with unit_of_work(engine) as uow:
        territory = uow.repo.territory(TERRITORY)
        assert territory.id is not None
        member = Person(territory_id=territory.id, full_name="Jean Lefèvre", email=MEMBER)
        uow.session.add(member)
        uow.session.flush()
        assert member.id is not None
        uow.session.add(PersonRole(person_id=member.id, role=Role.COPIL_MEMBER))
        uow.commit()
    with unit_of_work(engine) as uow:
        # In three weeks: the next COPIL of the dashboard, with its digest preview.
        held_at = (clock.paris_now() + timedelta(days=21)).replace(hour=9, minute=30)
        info = schedule_copil(uow, TERRITORY, held_at=held_at.replace(tzinfo=None))
        uow.commit()
    return info.copil_id


def signed_in(
    stack: ExitStack, app: Any, web: WebSettings, engine: Engine, address: str
) -> TestClient:
    """A client with its own event loop for all its requests (closed with `stack`)."""
    client = stack.enter_context(TestClient(app, base_url="http://bench"))
    client.cookies.set(SESSION_COOKIE, open_session(engine, web, address, datetime.now(UTC)))
    return client


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def time_calls(call: Callable[[], object], requests: int) -> list[float]:
    call()  # warm-up: caches, compiled statements, template compilation
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return timings


def captured(engine: Engine, call: Callable[[], object]) -> list[tuple[str, Any]]:
    statements: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", keep)
    try:
        call()
    finally:
        sa.event.remove(engine, "before_cursor_execute", keep)
    return statements


def replay(engine: Engine, statements: list[tuple[str, Any]]) -> Callable[[], object]:
    def run() -> None:
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            cursor = raw.cursor()
            for statement, parameters in statements:
                if statement.lstrip().upper().startswith(("SELECT", "WITH")):
                    cursor.execute(statement, parameters)
                    cursor.fetchall()
            cursor.close()
            conn.rollback()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=40, help="requests per page")
    parser.add_argument("--busy", action="store_true", help="keep every core spinning")
    arguments = parser.parse_args()
    with scratch_folder() as scratch, busy_cores(arguments.busy):
        run(arguments.requests, scratch)


def run(requests: int, scratch: Path) -> None:
    url, drop = database(scratch, "web")
    engine = make_engine(url)
    stack = ExitStack()
    try:
        upgrade(engine)
        copil_id = prepare(engine)
        web = WebSettings(
            b"bench-secret-key-0123456789-abcdefghijkl", "http://bench", settings=load_settings()
        )
        app = create_app(web, engine)
        pilot = signed_in(stack, app, web, engine, PILOT)
        coordinator = signed_in(stack, app, web, engine, COORDINATOR)
        member = signed_in(stack, app, web, engine, MEMBER)
        pages = {
            "Mes actions (pilote)": (pilot, f"/t/{TERRITORY}/mes-actions"),
            "Page d'une action": (pilot, f"/t/{TERRITORY}/actions/FA-01"),
            "Plan du territoire": (coordinator, f"/t/{TERRITORY}/plan"),
            "Plan filtré (en retard)": (member, f"/t/{TERRITORY}/plan?retard=1"),
            "Tableau de bord (graphiques)": (coordinator, f"/t/{TERRITORY}/tableau-de-bord"),
            "COPIL : ordre du jour et synthèse": (member, f"/t/{TERRITORY}/copil/{copil_id}"),
        }
        print(f"{engine.dialect.name}, {requests} requêtes par page")
        print(
            f"{'page':36} {'médiane':>9} {'p95':>9} {'requêtes SQL':>13} {'médiane':>9} {'p95':>9}"
            f" {'rapport':>8}"
        )
        page_medians, query_medians = [], []
        for name, (client, path) in pages.items():

            def get(client: TestClient = client, path: str = path) -> None:
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code)

            page = time_calls(get, requests)
            statements = captured(engine, get)
            queries = time_calls(replay(engine, statements), requests)
            page_medians.append(statistics.median(page))
            query_medians.append(statistics.median(queries))
            print(
                f"{name:36} {statistics.median(page) * 1000:7.1f}ms"
                f" {percentile(page, 0.95) * 1000:7.1f}ms {len(statements):13d}"
                f" {statistics.median(queries) * 1000:7.1f}ms"
                f" {percentile(queries, 0.95) * 1000:7.1f}ms"
                f" {statistics.median(page) / statistics.median(queries):8.2f}"
            )
        print(f"ratio: {sum(page_medians) / sum(query_medians):.2f}")
    finally:
        stack.close()
        engine.dispose()
        drop()


if __name__ == "__main__":
    main()
