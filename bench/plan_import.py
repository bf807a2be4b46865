"""How long importing and exporting a large action plan takes (prints figures, asserts nothing).

    python bench/plan_import.py                      # 2 000 actions on a temporary SQLite
    python bench/plan_import.py 500 postgresql+psycopg://postgres@127.0.0.1:5432/test

The plan is the Grand Est Touraine example, its twelve actions copied under new numbers until
there are N, each with its milestones, indicator, budget lines and funding (about 9 rows per
action across the sheets). Steps timed: export to .xlsx, first import into an empty database
(checks + writes), re-import of the same file (a no-op), dry run with errors on every action.
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flows.usecases.bus import unit_of_work
from models.db import make_engine, upgrade
from models.errors import InvalidInput
from tiflow.example import TERRITORY_CODE, load_example
from tiflow.spreadsheet import import_plan, plan_from_database, write_plan
from tiflow.spreadsheet.records import PlanFile


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
        number = f"FA-{n + 1:04d}"
        plan.actions.append(replace(source, number=number, title=f"{source.title} ({n + 1})"))
        for rows, into in children:
            into.extend(replace(r, action=number) for r in rows if r.action == source.number)
    return plan


def main(count: int, url: str | None) -> None:
    folder = Path(tempfile.mkdtemp(prefix="tiflow-bench-"))
    schema = None
    if url is None:
        source_url = f"sqlite:///{folder / 'source.db'}"
        target_url = f"sqlite:///{folder / 'target.db'}"
    else:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = make_engine(url)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        source_url = f"sqlite:///{folder / 'source.db'}"
        target_url = (
            sa.make_url(url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    source, target = make_engine(source_url), make_engine(target_url)
    upgrade(source)
    upgrade(target)
    try:
        plan = big_plan(source, count)
        path = folder / "plan.xlsx"
        started = time.perf_counter()
        write_plan(plan, path)
        print(f"{count} actions, {plan.row_count()} rows, {path.stat().st_size // 1024} KiB")
        print(f"write .xlsx:           {time.perf_counter() - started:6.2f} s")

        for label in ("first import:", "re-import (no-op):"):
            started = time.perf_counter()
            with unit_of_work(target) as uow:
                report = import_plan(uow, path)
                uow.commit()
            print(f"{label:22} {time.perf_counter() - started:6.2f} s  ({report.summary()})")

        assert plan.actions
        unknown_pilot = [replace(a, pilot="inconnu@example.org") for a in plan.actions]
        broken = replace(plan, actions=unknown_pilot)
        write_plan(broken, path)
        started = time.perf_counter()
        try:
            with unit_of_work(target) as uow:
                import_plan(uow, path)
        except InvalidInput as error:
            problems = len(error.problems)
        print(f"{problems} errors reported: {time.perf_counter() - started:6.2f} s")
    finally:
        source.dispose()
        target.dispose()
        if schema is not None and url is not None:
            with make_engine(url).begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    main(count, sys.argv[2] if len(sys.argv) > 2 else None)
