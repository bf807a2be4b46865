"""Annual budget consolidation at national scale: the whole flow against plain code doing the
same work, in the same run.

Builds a fresh database — SQLite in a scratch folder, or PostgreSQL (a schema of its own,
dropped at the end) if TIFLOW_BENCH_DATABASE_URL is set — with 183 territories, 6 years,
~25 new actions per territory and year (multi-year budget lines, several funders each,
history and milestones). Then, for the middle year and all territories, each round times:

* tiflow, the national flow as production runs it: `consolidate_budget` under a Prefect
  server started (and warmed up by one run) beforehand, heartbeat on — consolidation,
  snapshot, XLSX + CSV reports, the coordinators' e-mail, the delivery round, the artifacts —
  with the run time of each task and what Prefect adds around them;
* the same steps called directly (no Prefect), each timed: consolidate(), store_snapshot(),
  write_reports();
* plain: the same work written plainly — ONE raw SQL statement for every view (the late
  actions picked in Python), one bulk insert of the lines in raw cents, the same lines
  written by XlsxWriter in streaming (constant_memory) mode, one sheet per view, and by the
  csv module.

Figures are medians over the rounds. ``--busy`` keeps both cores spinning while it measures.
The last line is ``ratio: N.NN`` = the national flow (wall) / plain::

    python bench/budget.py [--territories 183] [--years 6] [--actions 25] [--rounds 3] [--busy]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa
import xlsxwriter
from sqlalchemy.engine import Engine

from bench._common import Stolen, busy_cores, scratch_folder
from flows.usecases.budget.consolidation import Consolidation, Figures, View, consolidate
from flows.usecases.budget.reports import write_reports
from flows.usecases.budget.snapshots import store_snapshot
from flows.usecases.bus import unit_of_work
from models.db import make_engine, normalise_url, upgrade
from models.lifecycle import OPEN_STATES, State
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
def bench_database(folder: Path) -> Iterator[Engine]:
    url = os.environ.get("TIFLOW_BENCH_DATABASE_URL")
    if not url:
        engine = make_engine(f"sqlite:///{folder}/bench.db")
        try:
            yield engine
        finally:
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


Parts = dict[str, float]  # part -> seconds, "total" the whole


# -- plain: the same work, written plainly ----------------------------------------------------

PLAIN_HEADER = sa.text(
    "INSERT INTO budget_snapshot (year, scope, scope_label, version, created_at, as_of,"
    " action_count, firm_count, late_count, validation_sample, funding_sample)"
    " VALUES (:year, :scope, 'plain', 1, :now, :as_of, 0, 0, 0, 0, 0) RETURNING id"
)
PLAIN_LINE = sa.text(
    "INSERT INTO budget_snapshot_line (snapshot_id, view, territory, key, label, axis, state,"
    " firm_commitment, note, action_count, planned_investment, planned_operating, requested,"
    " granted, paid, over_granted) VALUES (:sid, :view, :territory, :key, :label, :axis,"
    " :state, :firm, '', :count, :pi, :pf, :rq, :gr, :pd, :og)"
)
OPEN = {state.value for state in OPEN_STATES}


def plain_national(engine: Engine, year: int, as_of: date, folder: Path, n: int) -> Parts:
    """The raw statement, the late actions in Python, one bulk insert, a streaming writer."""
    started = time.perf_counter()
    with engine.connect() as conn:
        rows = [
            list(r) for r in conn.execute(sa.text(RAW_EVERY_VIEW), {"year": year, "as_of": as_of})
        ]
    day = as_of.isoformat()
    late = [
        ["late", *r[1:]]
        for r in rows
        if r[0] == "action" and r[5] in OPEN and ((r[13] and str(r[13]) < day) or r[17])
    ]
    rows += late
    queried = time.perf_counter()
    with engine.begin() as conn:
        sid = conn.execute(
            PLAIN_HEADER,
            {"year": year, "scope": f"plain-{n}", "now": datetime.now(UTC), "as_of": as_of},
        ).scalar_one()
        conn.execute(PLAIN_LINE, [_plain_line(sid, r) for r in rows])
    stored = time.perf_counter()
    _plain_reports(rows, folder / f"plain-{n}")
    return {
        "total": time.perf_counter() - started,
        "statement": queried - started,
        "insert": stored - queried,
        "reports": time.perf_counter() - stored,
    }


def _plain_line(sid: int, r: Sequence[Any]) -> dict[str, Any]:
    pi, pf, rq, gr, pd = (int(v or 0) for v in r[8:13])
    return {
        "sid": sid,
        "view": r[0],
        "territory": r[1],
        "key": r[2],
        "label": r[3] or r[2],
        "axis": r[4],
        "state": r[5],
        "firm": None if r[6] is None else r[6] == "ferme",
        "count": r[7],
        "pi": pi,
        "pf": pf,
        "rq": rq,
        "gr": gr,
        "pd": pd,
        "og": max(gr - pi - pf, 0),
    }


PLAIN_HEADERS = ["Territoire", "Clé", "Libellé", "Axe", "État", "Engagement ferme", "Nombre"]
PLAIN_HEADERS += ["Prévu inv.", "Prévu fonct.", "Prévu", "Demandé", "Accordé", "Versé"]
PLAIN_HEADERS += ["Reste à financer", "Reste à verser", "Accordé au-delà"]


def _plain_amounts(r: Sequence[Any]) -> list[float]:
    """The nine amounts of a line (as tiflow's sheets show them), in euros."""
    pi, pf, rq, gr, pd = (int(v or 0) for v in r[8:13])
    over = max(gr - pi - pf, 0)
    cents = [pi, pf, pi + pf, rq, gr, pd, pi + pf - gr + over, gr - pd, over]
    return [c / 100 for c in cents]


def _plain_reports(rows: list[list[Any]], base: Path) -> None:
    """The lines, one sheet per view, by XlsxWriter in streaming mode; and the CSV."""
    from models.safe_text import neutralise_formula

    book = xlsxwriter.Workbook(
        f"{base}.xlsx",
        {"constant_memory": True, "tmpdir": str(base.parent), "strings_to_formulas": False},
    )
    euro = book.add_format({"num_format": '#,##0.00 "€"'})
    sheets: dict[str, Any] = {}
    written: dict[str, int] = {}
    with open(f"{base}.csv", "w", encoding="utf-8-sig", newline="") as handle:
        out = csv.writer(handle, delimiter=";")
        out.writerow(["Vue", *PLAIN_HEADERS])
        for r in rows:
            if r[0] not in sheets:
                sheet = sheets[r[0]] = book.add_worksheet(r[0])
                sheet.set_column(7, 15, 18, euro)
                sheet.write_row(0, 0, PLAIN_HEADERS)
                written[r[0]] = 0
            written[r[0]] += 1
            texts = [neutralise_formula(str(v)) if v is not None else None for v in r[1:7]]
            amounts = _plain_amounts(r)
            sheets[r[0]].write_row(written[r[0]], 0, [*texts, r[7], *amounts])
            out.writerow([r[0], *texts, r[7], *(f"{a:.2f}".replace(".", ",") for a in amounts)])
    book.close()


# -- tiflow -----------------------------------------------------------------------------------


def tiflow_steps(engine: Engine, year: int, as_of: date, folder: Path) -> Parts:
    """The flow's three steps called directly, without Prefect."""
    started = time.perf_counter()
    with unit_of_work(engine) as uow:
        figures = consolidate(uow, year, None, as_of=as_of)
    consolidated = time.perf_counter()
    snapshot = store_snapshot(lambda: unit_of_work(engine), figures, "bench")
    stored = time.perf_counter()
    write_reports(snapshot, folder / "steps")
    return {
        "total": time.perf_counter() - started,
        "consolidate": consolidated - started,
        "snapshot": stored - consolidated,
        "reports": time.perf_counter() - stored,
    }


def run_flow(year: int, as_of: date | None = None) -> Parts:
    """One run of the real flow for all territories: wall time, each task's run time, and
    what Prefect adds around them (wall minus the tasks). `as_of` is the plain code's date of
    situation: with today's, more actions would be late, hence more lines to store and write."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.budget import BudgetParameters, consolidate_budget

    start = time.perf_counter()
    state = consolidate_budget(BudgetParameters(year=year, as_of=as_of), return_state=True)
    wall = time.perf_counter() - start
    state.result()
    run = FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=run)
    tasks = {r.name.rsplit("-", 1)[0]: r.total_run_time.total_seconds() for r in runs}
    return {"total": wall, **tasks, "Prefect, outside the tasks": wall - sum(tasks.values())}


@contextmanager
def prefect_server(engine: Engine, folder: Path) -> Iterator[None]:
    """A Prefect test server, started and warmed up (one run of an empty year) before
    anything is measured; the flow's heartbeat stays on, as in production."""
    from prefect.testing.utilities import prefect_test_harness

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no telemetry writes
    os.environ["TIFLOW_DATABASE_URL"] = engine.url.render_as_string(hide_password=False)
    os.environ["TIFLOW_DATA_DIR"] = str(folder / "data")
    with prefect_test_harness(server_startup_timeout=90):
        run_flow(EMPTY_YEAR)  # warm-up: imports, first connections, the server's caches
        yield


# -- measuring --------------------------------------------------------------------------------


def medians(rounds: list[Parts]) -> Parts:
    return {part: statistics.median(r.get(part, 0.0) for r in rounds) for part in rounds[0]}


def show(label: str, parts: Parts) -> str:
    details = ", ".join(
        f"{name} {seconds:.2f}" for name, seconds in parts.items() if name != "total"
    )
    line = f"  {label:34} {parts['total']:6.2f} s  ({details})"
    print(line)
    return line


def one_territory(engine: Engine, year: int, as_of: date) -> None:
    """The everyday case: one territory, raw SQL against consolidate() (median of 9)."""

    def tiflow_one() -> Consolidation:
        with unit_of_work(engine) as uow:
            return consolidate(uow, year, "territoire-001", as_of=as_of)

    times: dict[str, list[float]] = {"raw": [], "tiflow": []}
    for _ in range(9):
        for name, work in (("raw", lambda: _raw_one(engine, year)), ("tiflow", tiflow_one)):
            start = time.perf_counter()
            work()
            times[name].append(time.perf_counter() - start)
    raw, tiflow = (statistics.median(times[n]) * 1000 for n in ("raw", "tiflow"))
    print(f"one territory: raw SQL {raw:.1f} ms, tiflow consolidate() {tiflow:.1f} ms")


def check_same_figures(engine: Engine, year: int, as_of: date) -> Consolidation:
    with engine.connect() as conn:
        raw_rows = conn.execute(sa.text(RAW_SQL), {"year": year}).all()
        every = conn.execute(sa.text(RAW_EVERY_VIEW), {"year": year, "as_of": as_of}).all()
    with unit_of_work(engine) as uow:
        figures = consolidate(uow, year, None, as_of=as_of)
    raw_planned = sum(int(r[5]) + int(r[6]) for r in raw_rows)
    actions = figures.view(View.ACTION) + figures.view(View.DROPPED)  # in the plan or not
    assert len(raw_rows) == len(actions), "both see the same actions"
    planned = Figures.total(line.figures for line in actions).planned
    assert raw_planned == int(planned * 100), "same planned total, to the cent"
    assert every, "the plain statement sees the year too"
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--territories", type=int, default=183)
    parser.add_argument("--years", type=int, default=6)
    parser.add_argument("--actions", type=int, default=25, help="new actions per territory/year")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--busy", action="store_true", help="keep both cores spinning")
    parser.add_argument("--no-flow", action="store_true", help="steps only, no Prefect server")
    args = parser.parse_args()
    year = FIRST_YEAR + args.years // 2
    as_of = date(year, 12, 31)
    # Killed (SIGTERM), still remove the scratch folder and the PostgreSQL schema.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    with scratch_folder() as folder, bench_database(folder) as engine:
        print(f"database: {engine.dialect.name}{', both cores busy' if args.busy else ''}")
        upgrade(engine)
        start = time.perf_counter()
        counts = populate(engine, args.territories, args.years, args.actions)
        checkpoint(engine)
        print(
            f"populated in {time.perf_counter() - start:.1f} s: {args.territories} territories, "
            + ", ".join(f"{v} {k}" for k, v in counts.items())
        )
        figures = check_same_figures(engine, year, as_of)
        print(
            f"year {year}, all territories: {figures.governance.action_count} actions,"
            f" {len(figures.lines)} lines in {len(View)} views,"
            f" planned {format_eur(figures.total().planned)}"
        )
        server = nullcontext() if args.no_flow else prefect_server(engine, folder)
        results: dict[str, list[Parts]] = {"plain": [], "steps": [], "flow": []}
        with server, busy_cores(args.busy), Stolen() as stolen:
            one_territory(engine, year, as_of)
            for n in range(args.rounds):
                results["plain"].append(plain_national(engine, year, as_of, folder, n))
                results["steps"].append(tiflow_steps(engine, year, as_of, folder))
                if not args.no_flow:
                    results["flow"].append(run_flow(year, as_of))
        print(f"median of {args.rounds} rounds, seconds ({stolen} by the hypervisor meanwhile):")
        plain = medians(results["plain"])
        show("plain (statement, insert, reports)", plain)
        steps = medians(results["steps"])
        show("tiflow steps, no Prefect", steps)
        if args.no_flow:
            print(f"ratio (steps only, no flow): {steps['total'] / plain['total']:.2f}")
            return
        flow = medians(results["flow"])
        show("tiflow national flow", flow)
        print(f"ratio: {flow['total'] / plain['total']:.2f}")


def _raw_one(engine: Engine, year: int) -> Sequence[Any]:
    """The raw query for territory 1, filtered inside the facts like tiflow does."""
    in_territory = "action_id IN (SELECT id FROM action_sheet WHERE territory_id = 1)"
    sql = RAW_SQL.replace("WHERE year = :year", f"WHERE year = :year AND {in_territory}")
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), {"year": year}).all()


if __name__ == "__main__":
    main()
