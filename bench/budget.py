"""Annual budget consolidation at national scale: tiflow against one raw SQL GROUP BY.

Builds a fresh database — SQLite in a temporary folder, or PostgreSQL (a schema of its own,
dropped at the end) if TIFLOW_BENCH_DATABASE_URL is set — with 183 territories, 6 years,
~25 new actions per territory and year (multi-year budget lines, several funders each,
history and milestones), then, for the middle year and all territories, times (best of N):

* raw SQL: the same aggregation written as ONE ``GROUP BY`` over budget lines ∪ funding;
* tiflow: ``consolidate()`` — every view (axis, funder, action, state, commitment,
  territory), late actions and median delays — into exact Decimals;
* the other steps of the flow (snapshot, XLSX + CSV), and the whole flow under a Prefect test
  server, whose difference with its steps is the fixed flow overhead.

The last line is ``ratio: N.NN`` = tiflow consolidation / raw SQL::

    python bench/budget.py [--territories 183] [--years 6] [--actions 25] [--repeat 5] [--no-flow]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows.usecases.budget.consolidation import Consolidation, View, consolidate
from flows.usecases.budget.reports import csv_bytes, workbook_bytes
from flows.usecases.budget.snapshots import store_snapshot
from flows.usecases.bus import unit_of_work
from models.db import make_engine, normalise_url, upgrade
from models.lifecycle import State
from models.money import format_eur
from models.tables import (
    ActionSheet,
    BudgetLine,
    Funding,
    Milestone,
    Organisation,
    Territory,
    TransitionRecord,
)
from models.vocabulary import Axis, BudgetKind, OrganisationKind

FIRST_YEAR = 2021
EMPTY_YEAR = 2099  # no action: the flow does its fixed work only
NATIONAL_FUNDERS = [
    ("État", OrganisationKind.ETAT),
    ("Agence nationale de la cohésion des territoires", OrganisationKind.AGENCE_NATIONALE),
    ("ADEME", OrganisationKind.AGENCE_NATIONALE),
    ("Banque des Territoires", OrganisationKind.AGENCE_NATIONALE),
]
REGIONS = ["Centre-Val de Loire", "Grand Est", "Hauts-de-France", "Occitanie", "Bretagne"]

RAW_SQL = """
SELECT a.territory_id, a.id, a.axis, a.state, a.firm_commitment,
       SUM(f.planned_investment), SUM(f.planned_operating),
       SUM(f.requested), SUM(f.granted), SUM(f.paid)
FROM (
    SELECT action_id,
           CASE WHEN kind = 'investissement' THEN amount ELSE 0 END AS planned_investment,
           CASE WHEN kind = 'fonctionnement' THEN amount ELSE 0 END AS planned_operating,
           0 AS requested, 0 AS granted, 0 AS paid
    FROM budget_line WHERE year = :year
    UNION ALL
    SELECT action_id, 0, 0, requested, granted, paid FROM funding WHERE year = :year
) AS f
JOIN action_sheet AS a ON a.id = f.action_id
GROUP BY a.territory_id, a.id, a.axis, a.state, a.firm_commitment
"""

# Everything tiflow reads, hand-written as one statement: the per-action sums with the inputs of
# the delays and of lateness, rolled up per axis, state, commitment and territory, and the funders.
RAW_EVERY_VIEW = """
WITH sums AS (
    SELECT action_id, SUM(pi) AS pi, SUM(pf) AS pf, SUM(rq) AS rq, SUM(gr) AS gr, SUM(pd) AS pd
    FROM (
        SELECT action_id,
               CASE WHEN kind = 'investissement' THEN amount ELSE 0 END AS pi,
               CASE WHEN kind = 'fonctionnement' THEN amount ELSE 0 END AS pf,
               0 AS rq, 0 AS gr, 0 AS pd
        FROM budget_line WHERE year = :year
        UNION ALL
        SELECT action_id, 0, 0, requested, granted, paid FROM funding WHERE year = :year
    ) AS facts
    GROUP BY action_id
), per_action AS (
    SELECT t.code AS territory, t.name AS territory_name, a.number, a.title, a.axis, a.state,
           a.firm_commitment AS firm, s.pi, s.pf, s.rq, s.gr, s.pd, a.end_date,
           h.proposed_at, h.validated_at, h.funded_at, m.overdue, m.oldest_due
    FROM sums AS s
    JOIN action_sheet AS a ON a.id = s.action_id
    JOIN territory AS t ON t.id = a.territory_id
    LEFT JOIN (
        SELECT action_id,
               MIN(CASE WHEN to_state = 'proposed' THEN at END) AS proposed_at,
               MIN(CASE WHEN to_state = 'validated' THEN at END) AS validated_at,
               MIN(CASE WHEN to_state = 'funded' THEN at END) AS funded_at
        FROM transition_record
        WHERE to_state IN ('proposed', 'validated', 'funded')
          AND action_id IN (SELECT action_id FROM sums)
        GROUP BY action_id
    ) AS h ON h.action_id = a.id
    LEFT JOIN (
        SELECT action_id, COUNT(*) AS overdue, MIN(due_date) AS oldest_due
        FROM milestone
        WHERE done_on IS NULL AND due_date < :as_of
          AND action_id IN (SELECT action_id FROM sums)
        GROUP BY action_id
    ) AS m ON m.action_id = a.id
)
SELECT 'action', territory, number, title, axis, state,
       CASE WHEN firm THEN 'ferme' ELSE 'non-ferme' END,
       1, pi, pf, rq, gr, pd, end_date, proposed_at, validated_at, funded_at, overdue, oldest_due
FROM per_action
UNION ALL
SELECT 'axis', '', axis, NULL, axis, NULL, NULL, COUNT(*), SUM(pi), SUM(pf), SUM(rq), SUM(gr),
       SUM(pd), NULL, NULL, NULL, NULL, NULL, NULL
FROM per_action GROUP BY axis
UNION ALL
SELECT 'state', '', state, NULL, NULL, state, NULL, COUNT(*), SUM(pi), SUM(pf), SUM(rq),
       SUM(gr), SUM(pd), NULL, NULL, NULL, NULL, NULL, NULL
FROM per_action GROUP BY state
UNION ALL
SELECT 'commitment', '', CASE WHEN firm THEN 'ferme' ELSE 'non-ferme' END, NULL, NULL, NULL,
       CASE WHEN firm THEN 'ferme' ELSE 'non-ferme' END, COUNT(*), SUM(pi), SUM(pf), SUM(rq),
       SUM(gr), SUM(pd), NULL, NULL, NULL, NULL, NULL, NULL
FROM per_action GROUP BY firm
UNION ALL
SELECT 'territory', territory, territory, territory_name, NULL, NULL, NULL, COUNT(*), SUM(pi),
       SUM(pf), SUM(rq), SUM(gr), SUM(pd), NULL, NULL, NULL, NULL, NULL, NULL
FROM per_action GROUP BY territory, territory_name
UNION ALL
SELECT 'funder', '', o.name, o.name, NULL, NULL, NULL, COUNT(DISTINCT f.action_id), 0, 0,
       SUM(f.requested), SUM(f.granted), SUM(f.paid), NULL, NULL, NULL, NULL, NULL, NULL
FROM funding AS f JOIN organisation AS o ON o.id = f.funder_id
WHERE f.year = :year
GROUP BY o.name
"""


@contextmanager
def bench_database() -> Iterator[Engine]:
    url = os.environ.get("TIFLOW_BENCH_DATABASE_URL")
    if not url:
        with tempfile.TemporaryDirectory() as folder:
            engine = make_engine(f"sqlite:///{folder}/bench.db")
            yield engine
            engine.dispose()
        return
    admin = make_engine(url)
    schema = f"tiflow_bench_{uuid.uuid4().hex[:10]}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    bench_url = sa.make_url(normalise_url(url)).update_query_dict(
        {"options": f"-csearch_path={schema}"}
    )
    engine = make_engine(bench_url.render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def populate(engine: Engine, territories: int, years: int, actions: int) -> dict[str, int]:
    """Insert the national plan with Core executemany (fast, and the Money type still binds)."""
    rng = random.Random(183)
    counts = dict.fromkeys(("budget lines", "funding rows", "history rows", "milestones"), 0)
    states = [State.DRAFT, State.PROPOSED, State.VALIDATED, State.FUNDED, State.IN_PROGRESS]
    states += [State.COMPLETED, State.ABANDONED]
    action_id = 0
    with engine.begin() as conn:
        conn.execute(
            sa.insert(Territory),
            [
                {
                    "id": t,
                    "code": f"territoire-{t:03d}",
                    "name": f"Territoire d'industrie n° {t}",
                    "region": REGIONS[t % len(REGIONS)],
                    "is_example": True,
                }
                for t in range(1, territories + 1)
            ],
        )
        org_rows: list[dict[str, Any]] = []
        funders: dict[int, list[int]] = {}
        org_id = 0
        for t in range(1, territories + 1):
            names = [
                *NATIONAL_FUNDERS,
                (f"Région {REGIONS[t % len(REGIONS)]}", OrganisationKind.REGION),
            ]
            names += [
                (f"Communauté de communes {t}-{c}", OrganisationKind.COMMUNAUTE_DE_COMMUNES)
                for c in range(1, 4)
            ]
            funders[t] = []
            for name, org_kind in names:
                org_id += 1
                org_rows.append(
                    {
                        "id": org_id,
                        "territory_id": t,
                        "name": name,
                        "kind": org_kind,
                        "is_funder": True,
                    }
                )
                funders[t].append(org_id)
        conn.execute(sa.insert(Organisation), org_rows)
        for year in range(FIRST_YEAR, FIRST_YEAR + years):
            action_rows: list[dict[str, Any]] = []
            budget_rows: list[dict[str, Any]] = []
            funding_rows: list[dict[str, Any]] = []
            history_rows: list[dict[str, Any]] = []
            milestone_rows: list[dict[str, Any]] = []
            for t in range(1, territories + 1):
                for n in range(rng.randint(actions - 5, actions + 5)):
                    action_id += 1
                    span = rng.choice((1, 1, 2, 3))
                    state = rng.choice(states)
                    action_rows.append(
                        {
                            "id": action_id,
                            "territory_id": t,
                            "number": f"FA-{year}-{n + 1:02d}",
                            "title": f"Action {n + 1} de {year}",
                            "description": "",
                            "axis": rng.choice(list(Axis)),
                            "firm_commitment": rng.random() < 0.4,
                            "priority": 2,
                            "start_date": date(year, rng.randint(1, 12), 1),
                            "end_date": date(year + span - 1, 12, 31),
                            "state": state,
                            "version": 1,
                            "created_at": datetime(year, 1, 1, tzinfo=UTC),
                            "updated_at": datetime(year, 1, 1, tzinfo=UTC),
                        }
                    )
                    for y in range(year, year + span):
                        for kind in BudgetKind:
                            if rng.random() < 0.7:
                                budget_rows.append(
                                    {
                                        "action_id": action_id,
                                        "year": y,
                                        "kind": kind,
                                        "amount": _amount(rng),
                                    }
                                )
                        for funder in rng.sample(funders[t], rng.randint(2, 4)):
                            requested = _amount(rng)
                            share = rng.choice((Decimal(0), Decimal("0.8"), Decimal(1)))
                            granted = (requested * share).quantize(Decimal("0.01"))
                            funding_rows.append(
                                {
                                    "action_id": action_id,
                                    "funder_id": funder,
                                    "year": y,
                                    "requested": requested,
                                    "granted": granted,
                                    "paid": (granted / 2).quantize(Decimal("0.01")),
                                    "updated_at": datetime(y, 1, 1, tzinfo=UTC),
                                }
                            )
                    history_rows += _history(rng, action_id, year, state)
                    for m in range(2):
                        due = date(year, 3 + 4 * m, 15)
                        done = due if rng.random() < 0.6 else None
                        milestone_rows.append(
                            {
                                "action_id": action_id,
                                "title": f"Jalon {m + 1}",
                                "due_date": due,
                                "done_on": done,
                            }
                        )
            conn.execute(sa.insert(ActionSheet), action_rows)
            conn.execute(sa.insert(BudgetLine), budget_rows)
            conn.execute(sa.insert(Funding), funding_rows)
            if history_rows:
                conn.execute(sa.insert(TransitionRecord), history_rows)
            conn.execute(sa.insert(Milestone), milestone_rows)
            counts["budget lines"] += len(budget_rows)
            counts["funding rows"] += len(funding_rows)
            counts["history rows"] += len(history_rows)
            counts["milestones"] += len(milestone_rows)
    counts["actions"] = action_id
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
    return counts


def _amount(rng: random.Random) -> Decimal:
    return Decimal(rng.randint(100_000, 50_000_000)) / 100  # 1 000,00 € to 500 000,00 €, cents


def _history(rng: random.Random, action_id: int, year: int, state: State) -> list[dict[str, Any]]:
    path = {
        State.DRAFT: [],
        State.PROPOSED: [State.PROPOSED],
        State.VALIDATED: [State.PROPOSED, State.VALIDATED],
        State.FUNDED: [State.PROPOSED, State.VALIDATED, State.FUNDED],
        State.IN_PROGRESS: [State.PROPOSED, State.VALIDATED, State.FUNDED, State.IN_PROGRESS],
        State.COMPLETED: [
            State.PROPOSED,
            State.VALIDATED,
            State.FUNDED,
            State.IN_PROGRESS,
            State.COMPLETED,
        ],
        State.ABANDONED: [State.PROPOSED, State.ABANDONED],
    }[state]
    at = datetime(year - 1, 10, 1, 9, tzinfo=UTC)
    rows, source = [], State.DRAFT
    for target in path:
        at += timedelta(days=rng.randint(5, 90), hours=rng.randint(0, 8))
        rows.append(
            {
                "action_id": action_id,
                "from_state": source,
                "to_state": target,
                "at": at,
                "actor": "bench",
                "override": False,
            }
        )
        source = target
    return rows


def best_of(repeat: int, *works: Callable[[], object]) -> list[float]:
    """Best time of each work, the works interleaved so that load on the machine hits all."""
    times: list[list[float]] = [[] for _ in works]
    for _ in range(repeat):
        for work, spent in zip(works, times, strict=True):
            start = time.perf_counter()
            work()
            spent.append(time.perf_counter() - start)
    return [min(spent) for spent in times]


def checkpoint(engine: Engine) -> None:
    """Fold SQLite's write-ahead log into the database and refresh planner statistics, as a
    database that has lived a while would be (reads through a 100 MB WAL are slower)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("ANALYZE"))
        return
    with engine.connect() as conn:
        conn.execute(sa.text("ANALYZE"))
        conn.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))
        conn.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--territories", type=int, default=183)
    parser.add_argument("--years", type=int, default=6)
    parser.add_argument("--actions", type=int, default=25, help="new actions per territory/year")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--no-flow", action="store_true", help="skip the Prefect flow runs")
    args = parser.parse_args()
    year = FIRST_YEAR + args.years // 2
    as_of = date(year, 12, 31)

    with bench_database() as engine:
        print(f"database: {engine.dialect.name}")
        upgrade(engine)
        start = time.perf_counter()
        counts = populate(engine, args.territories, args.years, args.actions)
        checkpoint(engine)
        print(
            f"populated in {time.perf_counter() - start:.1f} s: {args.territories} territories, "
            + ", ".join(f"{v} {k}" for k, v in counts.items())
        )

        def raw() -> Sequence[Any]:
            with engine.connect() as conn:
                return conn.execute(sa.text(RAW_SQL), {"year": year}).all()

        def raw_every_view() -> Sequence[Any]:
            with engine.connect() as conn:
                return conn.execute(sa.text(RAW_EVERY_VIEW), {"year": year, "as_of": as_of}).all()

        def tiflow() -> Consolidation:
            with unit_of_work(engine) as uow:
                return consolidate(uow, year, None, as_of=as_of)

        raw_rows, figures = raw(), tiflow()
        raw_planned = sum(int(r[5]) + int(r[6]) for r in raw_rows)
        assert len(raw_rows) == figures.governance.action_count, "both see the same actions"
        assert raw_planned == int(figures.total().planned * 100), "same planned total, to the cent"
        every = raw_every_view()
        assert len(every) == len(figures.lines) - figures.governance.late_count
        t_raw, t_every, t_tiflow = best_of(args.repeat, raw, raw_every_view, tiflow)
        print(
            f"year {year}, all territories: {len(raw_rows)} actions, {len(figures.lines)} lines"
            f" in {len(View)} views, planned {format_eur(figures.total().planned)}"
        )
        print(
            f"raw SQL, the money of each action, one GROUP BY (best of {args.repeat}):"
            f" {t_raw * 1000:.1f} ms"
        )
        print(
            "raw SQL, the same aggregation as tiflow (every view, funders, the inputs of the"
            f" delays and of lateness) in one statement: {t_every * 1000:.1f} ms"
        )
        print(
            f"tiflow consolidate(): the same, as exact Decimal lines + governance figures:"
            f" {t_tiflow * 1000:.1f} ms"
        )

        def tiflow_one() -> Consolidation:
            with unit_of_work(engine) as uow:
                return consolidate(uow, year, "territoire-001", as_of=as_of)

        t_one_raw, t_one = best_of(args.repeat, lambda: _raw_one(engine, year), tiflow_one)
        print(f"one territory: raw SQL {t_one_raw * 1000:.1f} ms, tiflow {t_one * 1000:.1f} ms")

        start = time.perf_counter()
        snapshot = store_snapshot(lambda: unit_of_work(engine), figures, "bench")
        t_store = time.perf_counter() - start
        start = time.perf_counter()
        xlsx, csv_data = workbook_bytes(snapshot), csv_bytes(snapshot)
        t_reports = time.perf_counter() - start
        print(
            f"store snapshot ({len(figures.lines)} lines): {t_store * 1000:.0f} ms; "
            f"XLSX {len(xlsx) // 1024} KiB + CSV {len(csv_data) // 1024} KiB: "
            f"{t_reports * 1000:.0f} ms"
        )
        if not args.no_flow:
            print(flow_overhead(engine, year))
        print(f"tiflow / raw money-per-action GROUP BY: {t_tiflow / t_raw:.2f}")
        print(f"ratio: {t_tiflow / t_every:.2f}")


def _raw_one(engine: Engine, year: int) -> Sequence[Any]:
    """The raw query for territory 1, filtered inside the facts like tiflow does."""
    in_territory = "action_id IN (SELECT id FROM action_sheet WHERE territory_id = 1)"
    sql = RAW_SQL.replace("WHERE year = :year", f"WHERE year = :year AND {in_territory}")
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), {"year": year}).all()


def run_flow(year: int) -> tuple[float, dict[str, float]]:
    """One run of the real flow for all territories: wall time, and each task's run time."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.budget import BudgetParameters, consolidate_budget

    start = time.perf_counter()
    state = consolidate_budget(BudgetParameters(year=year), return_state=True)
    wall = time.perf_counter() - start
    state.result()
    run = FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=run)
    return wall, {r.name.rsplit("-", 1)[0]: r.total_run_time.total_seconds() for r in runs}


def flow_overhead(engine: Engine, year: int) -> str:
    """Flow runs under a Prefect test server (heartbeat off, as in the tests): the overhead is
    the wall time not spent inside the tasks; an empty year shows it is fixed."""
    from prefect.testing.utilities import prefect_test_harness

    from flows.runtime import without_heartbeat

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no telemetry writes
    with tempfile.TemporaryDirectory() as data_dir:
        os.environ["TIFLOW_DATABASE_URL"] = engine.url.render_as_string(hide_password=False)
        os.environ["TIFLOW_DATA_DIR"] = data_dir
        with (
            prefect_test_harness(server_startup_timeout=90),
            without_heartbeat(),
        ):
            run_flow(EMPTY_YEAR)  # warm-up: imports, first connections
            empty = [run_flow(EMPTY_YEAR) for _ in range(3)]
            wall, tasks = run_flow(year)
    overheads = sorted(w - sum(t.values()) for w, t in empty)
    parts = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in tasks.items())
    print(f"flow, all territories, {year}: {wall:.2f} s wall ({parts})")
    print(
        f"flow on an empty year: {statistics.median(w for w, _ in empty):.2f} s wall,"
        f" outside its tasks {overheads[len(overheads) // 2]:.2f} s (median of 3)"
    )
    return f"flow overhead: {wall - sum(tasks.values()):.2f} s (national run, wall minus its tasks)"


if __name__ == "__main__":
    main()
