"""What a coordinator waits for when importing a large action plan, against plain code.

    python bench/plan_import.py                         # 200, 2 000 and 10 000 actions, SQLite
    python bench/plan_import.py 10000 --rounds 3 --busy
    TIFLOW_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test python bench/plan_import.py

The plan is the Grand Est Touraine example, its twelve actions copied under new numbers until
there are N, each with its milestones, indicator, budget lines and funding (about 7.6 rows per
action across the sheets), written once as .xlsx. Each round starts from an empty database
(SQLite in a temporary folder, or a PostgreSQL schema of its own, dropped at the end) and times:

* tiflow: `tiflow import FICHIER` run in-process through the CLI (schema check, read, checks,
  writes, the report, the commit), first into the empty database, then again (a no-op); its
  parts come from the import's own progress phases: read (the schema check, opening and
  reading the workbook), validate (typed cells,
  checks across rows and against the database), write (the changes), report (the CLI's table
  of changes, and the commit);
* plain: the same work written plainly in the same run — openpyxl's read-only rows of every
  sheet, then one executemany per table of the same rows (first import), or one SELECT per
  table compared with the file's rows (no-op).

Figures are medians over the rounds; time per action should stay flat from 200 to 10 000.
`--busy` keeps both cores spinning (one process per core) while it measures. The last line is
``ratio: N.NN`` = tiflow / plain, first import + no-op, for the largest size.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Stolen, busy_cores, scratch_folder
from flows.usecases.bus import unit_of_work
from models.db import make_engine, normalise_url, upgrade
from models.lifecycle import State
from models.tables import (
    ActionPartner,
    ActionSheet,
    BudgetLine,
    Funding,
    Indicator,
    Milestone,
    Organisation,
    Person,
    Territory,
)
from models.uow import UnitOfWork
from models.vocabulary import Axis, BudgetKind
from tiflow.example import TERRITORY_CODE, load_example
from tiflow.spreadsheet import plan_from_database, write_plan
from tiflow.spreadsheet.bulk import table_of
from tiflow.spreadsheet.progress import Progress
from tiflow.spreadsheet.records import PlanFile

PARTS = ("read", "validate", "write", "report")
# The import's progress phases (French labels) and the part each one starts.
PHASES = {
    "Lecture du classeur": "read",
    "Vérification des lignes": "validate",
    "Enregistrement des actions": "write",
}


def big_plan(engine: sa.Engine, count: int) -> PlanFile:
    with unit_of_work(engine) as uow:
        load_example(uow)
        base = plan_from_database(uow, TERRITORY_CODE)
    milestones: list[Any] = []
    indicators: list[Any] = []
    budget: list[Any] = []
    funding: list[Any] = []
    plan = replace(
        base,
        actions=[],
        milestones=milestones,
        indicators=indicators,
        budget=budget,
        funding=funding,
    )
    children: list[tuple[Sequence[Any], list[Any]]] = [
        (base.milestones or [], milestones),
        (base.indicators or [], indicators),
        (base.budget or [], budget),
        (base.funding or [], funding),
    ]
    for n in range(count):
        source = base.actions[n % len(base.actions)]
        number = f"FA-{n + 1:05d}"
        plan.actions.append(replace(source, number=number, title=f"{source.title} ({n + 1})"))
        for rows, into in children:
            into.extend(replace(r, action=number) for r in rows if r.action == source.number)
    return plan


# -- databases ----------------------------------------------------------------------------


@contextmanager
def empty_database(folder: Path) -> Iterator[str]:
    """The URL of a migrated, empty database, removed afterwards."""
    url = os.environ.get("TIFLOW_BENCH_DATABASE_URL")
    if not url:
        path = folder / f"target-{uuid.uuid4().hex[:8]}.db"
        target = f"sqlite:///{path}"
        _upgrade(target)
        try:
            yield target
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    admin = make_engine(url)
    schema = f"tiflow_bench_{uuid.uuid4().hex[:10]}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    target = (
        sa.make_url(normalise_url(url))
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    try:
        _upgrade(target)
        yield target
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _upgrade(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()


# -- tiflow: the CLI in-process -----------------------------------------------------------


class PhaseClock:
    """Wraps the CLI's progress bar and notes when each phase of the import starts."""

    def __init__(self, inner: Progress, marks: dict[str, float]) -> None:
        self.inner, self.marks = inner, marks

    def phase(self, label: str, total: int) -> None:
        if label in PHASES:
            self.marks.setdefault(PHASES[label], time.perf_counter())
        self.inner.phase(label, total)

    def advance(self, steps: int = 1) -> None:
        self.inner.advance(steps)


def tiflow_import(url: str, path: Path) -> dict[str, float]:
    """`tiflow import path` as the CLI runs it; returns its total and parts in seconds."""
    import typer.main

    from tiflow.cli import app, common, french, plan_files

    marks: dict[str, float] = {}
    real_import = plan_files.import_plan

    def timed_import(uow: UnitOfWork, source: Path, **kwargs: Any) -> Any:
        kwargs["progress"] = PhaseClock(kwargs["progress"], marks)
        report = real_import(uow, source, **kwargs)
        marks["report"] = time.perf_counter()
        return report

    os.environ["TIFLOW_DATABASE_URL"] = url
    quiet = open(os.devnull, "w")  # noqa: SIM115 - closed below, after the consoles let go
    consoles = (common.console, french.err_console)
    files = [c.file for c in consoles]
    plan_files.import_plan = timed_import
    for console in consoles:
        console.file = quiet
    try:
        started = time.perf_counter()
        typer.main.get_command(app).main(["import", str(path)], standalone_mode=False)
        ended = time.perf_counter()
    finally:
        plan_files.import_plan = real_import
        for console, file in zip(consoles, files, strict=True):
            console.file = file
        quiet.close()
    validate = marks.get("validate", started)
    write = marks.get("write", validate)
    report = marks.get("report", write)
    return {
        "total": ended - started,
        "read": validate - started,
        "validate": write - validate,
        "write": report - write,
        "report": ended - report,
    }


# -- plain: the same work, written plainly ------------------------------------------------


Sheet = list[dict[str, Any]]  # rows as {header: value}


def read_rows(path: Path) -> dict[str, Sheet]:
    """Every sheet's rows, by header, as openpyxl's read-only mode hands them over."""
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        sheets: dict[str, Sheet] = {}
        for worksheet in workbook:
            rows = worksheet.iter_rows(values_only=True)
            header = next(rows, ())
            sheets[worksheet.title] = [dict(zip(header, row, strict=False)) for row in rows]
        return sheets
    finally:
        workbook.close()


def day(value: Any) -> date | None:
    return value.date() if isinstance(value, datetime) else value


def money(value: Any) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value or 0)


def plain_first_import(url: str, path: Path) -> dict[str, float]:
    """Read every sheet and insert its rows, one executemany per table, in one transaction."""
    started = time.perf_counter()
    sheets = read_rows(path)
    read = time.perf_counter()
    engine = make_engine(url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        territory = sheets["Territoire"][0]
        tid = conn.execute(
            sa.insert(Territory).returning(table_of(Territory).c.id),
            {"code": territory["Code"], "name": territory["Nom"]},
        ).scalar_one()
        conn.execute(
            sa.insert(Organisation),
            [
                {"territory_id": tid, "name": r["Nom"], "short_name": r["Sigle"], "kind": "autre"}
                for r in sheets["Organisations"]
            ],
        )
        orgs = {name: i for name, short, i in conn.execute(_ORGS) for name in (name, short)}
        conn.execute(
            sa.insert(Person),
            [
                {"territory_id": tid, "full_name": r["Nom complet"], "email": r["E-mail"]}
                for r in sheets["Personnes"]
            ],
        )
        person = table_of(Person)
        people = {e: i for e, i in conn.execute(sa.select(person.c.email, person.c.id))}
        conn.execute(
            sa.insert(ActionSheet), [_action(r, tid, people, now) for r in sheets["Actions"]]
        )
        ids = {n: i for n, i in conn.execute(sa.select(ACTIONS.c.number, ACTIONS.c.id))}
        conn.execute(
            sa.insert(ActionPartner),
            [
                {"action_id": ids[r["Numéro"]], "organisation_id": orgs[name.strip()]}
                for r in sheets["Actions"]
                for name in (r["Partenaires"] or "").split(",")
                if name.strip() in orgs
            ],
        )
        for model, values in _children(sheets, ids, orgs, now).items():
            conn.execute(sa.insert(model), values)
    engine.dispose()
    return {"total": time.perf_counter() - started, "read": read - started}


ACTIONS = table_of(ActionSheet)
_ORG = table_of(Organisation)
_ORGS = sa.select(_ORG.c.name, _ORG.c.short_name, _ORG.c.id)
AXES = {a.label: a for a in Axis}
KINDS = {k.label: k for k in BudgetKind}


def _action(r: dict[str, Any], tid: int, people: dict[str, int], now: datetime) -> dict[str, Any]:
    return {
        "territory_id": tid,
        "number": r["Numéro"],
        "title": r["Intitulé"],
        "description": r["Description"] or "",
        "axis": AXES[r["Axe"]],
        "pilot_id": people.get(r["Pilote (e-mail)"]),
        "firm_commitment": r["Engagement ferme"] == "oui",
        "priority": 2,
        "start_date": day(r["Début"]),
        "end_date": day(r["Fin"]),
        "state": State.DRAFT,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


def _children(
    sheets: dict[str, Sheet], ids: dict[str, int], orgs: dict[str, int], now: datetime
) -> dict[Any, list[dict[str, Any]]]:
    return {
        Milestone: [
            {
                "action_id": ids[r["Action"]],
                "title": r["Intitulé"],
                "due_date": day(r["Échéance"]),
                "done_on": day(r["Réalisé le"]),
            }
            for r in sheets["Jalons"]
        ],
        Indicator: [
            {
                "action_id": ids[r["Action"]],
                "name": r["Nom"],
                "unit": r["Unité"] or "",
                "target": money(r["Cible"]),
            }
            for r in sheets["Indicateurs"]
        ],
        BudgetLine: [
            {
                "action_id": ids[r["Action"]],
                "year": r["Année"],
                "kind": KINDS[r["Nature"]],
                "amount": money(r["Montant"]),
            }
            for r in sheets["Budget"]
        ],
        Funding: [
            {
                "action_id": ids[r["Action"]],
                "funder_id": orgs[r["Financeur"]],
                "year": r["Année"],
                "requested": money(r["Demandé"]),
                "granted": money(r["Accordé"]),
                "paid": money(r["Versé"]),
                "dossier_due": day(r["Dépôt du dossier"]),
                "updated_at": now,
            }
            for r in sheets["Financements"]
        ],
    }


def plain_noop(url: str, path: Path) -> dict[str, float]:
    """Read the file and every row it describes, and find nothing to change."""
    started = time.perf_counter()
    sheets = read_rows(path)
    read = time.perf_counter()
    engine = make_engine(url)
    with engine.connect() as conn:
        titles = {n: t for n, t in conn.execute(sa.select(ACTIONS.c.number, ACTIONS.c.title))}
        stored = {
            model: {tuple(row) for row in conn.execute(sa.select(table_of(model)))}
            for model in (Milestone, Indicator, BudgetLine, Funding)
        }
    engine.dispose()
    changed = [r for r in sheets["Actions"] if titles.get(r["Numéro"]) != r["Intitulé"]]
    assert not changed and all(stored.values()), "the no-op baseline needs the first import"
    return {"total": time.perf_counter() - started, "read": read - started}


# -- measuring ----------------------------------------------------------------------------


def one_round(folder: Path, path: Path) -> dict[str, dict[str, float]]:
    with empty_database(folder) as url:
        first = tiflow_import(url, path)
        noop = tiflow_import(url, path)
    with empty_database(folder) as url:
        plain_first = plain_first_import(url, path)
        plain_again = plain_noop(url, path)
    return {"first": first, "noop": noop, "plain first": plain_first, "plain noop": plain_again}


def median_of(rounds: list[dict[str, dict[str, float]]], step: str, part: str) -> float:
    return statistics.median(r[step].get(part, 0.0) for r in rounds)


Medians = dict[str, float]  # "first", "noop" -> tiflow's median total (s)


def measure(folder: Path, count: int, rounds: int, medians: dict[int, Medians]) -> float:
    """Prints one size's figures, notes tiflow's medians in `medians`; returns tiflow / plain
    (first import + no-op, medians)."""
    source = make_engine(f"sqlite:///{folder / 'source.db'}")
    upgrade(source)
    plan = big_plan(source, count)
    source.dispose()
    (folder / "source.db").unlink()
    path = folder / f"plan-{count}.xlsx"
    started = time.perf_counter()
    write_plan(plan, path)
    print(
        f"\n{count} actions, {plan.row_count()} rows, {path.stat().st_size // 1024} KiB"
        f" (written in {time.perf_counter() - started:.2f} s), {rounds} rounds"
    )
    results = [one_round(folder, path) for _ in range(rounds)]
    path.unlink()
    width = max(len(p) for p in PARTS)
    for step, label in (("first", "first import"), ("noop", "no-op re-import")):
        total = median_of(results, step, "total")
        parts = ", ".join(f"{p} {median_of(results, step, p):.2f}".ljust(width) for p in PARTS)
        per_action = total / count * 1e3
        print(f"  tiflow {label:16} {total:7.2f} s  {per_action:6.3f} ms/action  ({parts})")
        plain = median_of(results, f"plain {step}", "total")
        plain_read = median_of(results, f"plain {step}", "read")
        print(
            f"  plain  {label:16} {plain:7.2f} s  {plain / count * 1e3:6.3f} ms/action"
            f"  (read {plain_read:.2f})"
        )
    medians[count] = {step: median_of(results, step, "total") for step in ("first", "noop")}
    tiflow = median_of(results, "first", "total") + median_of(results, "noop", "total")
    plain = median_of(results, "plain first", "total") + median_of(results, "plain noop", "total")
    return tiflow / plain


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[200, 2000, 10000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--busy", action="store_true", help="keep both cores spinning")
    args = parser.parse_args(argv)
    # Killed (SIGTERM), still remove the temporary folder and the PostgreSQL schema.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    database = "PostgreSQL" if os.environ.get("TIFLOW_BENCH_DATABASE_URL") else "SQLite"
    print(f"plan import on {database}{', both cores busy' if args.busy else ''}")
    ratio = 0.0
    medians: dict[int, Medians] = {}
    with scratch_folder() as folder, busy_cores(args.busy), Stolen() as stolen:
        for count in sorted(args.sizes):
            ratio = measure(folder, count, args.rounds, medians)
    print_slopes(medians)
    print(f"\nCPU time stolen by the hypervisor while measuring: {stolen}")
    print(f"ratio: {ratio:.2f}")


def print_slopes(medians: dict[int, Medians]) -> None:
    """Time per added action between consecutive sizes: flat if the import is linear (the
    per-action figures above also carry the fixed start-up cost, large at 200 actions)."""
    sizes = sorted(medians)
    if len(sizes) > 1:
        print("\ntime per added action (tiflow)")
    for small, large in itertools.pairwise(sizes):
        slopes = [
            (medians[large][step] - medians[small][step]) / (large - small) * 1e3
            for step in ("first", "noop")
        ]
        print(
            f"  {small:>6} -> {large:<6} first import {slopes[0]:6.3f} ms,"
            f" no-op {slopes[1]:6.3f} ms"
        )


if __name__ == "__main__":
    main()
