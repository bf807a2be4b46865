"""What the message bus adds to a COPIL decision (prints figures, asserts nothing).

    python bench/message_bus.py            # 5 rounds on a temporary SQLite
    python bench/message_bus.py 9

Each round starts from the same database (the Grand Est Touraine example, its twelve actions
proposed, a COPIL scheduled) and times `hold_copil` validating all twelve, then `commit()`:
with the bus (each decision's next-steps notice rendered and enqueued, one Prefect event per
event stored in the event outbox) and, as the baseline in the same run, the same unit of work
with an empty handler table. Last line: the median ratio, bus over baseline.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import busy_cores, scratch_folder
from flows.usecases.bus import unit_of_work
from flows.usecases.copil import DecisionInput, hold_copil, schedule_copil
from flows.usecases.proposals import propose
from models.db import make_engine, upgrade
from models.lifecycle import State
from tiflow.example import TERRITORY_CODE, load_example


def prepared(folder: Path) -> tuple[Path, int, list[str]]:
    path = folder / "start.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with unit_of_work(engine) as uow:
        load_example(uow)
        territory = uow.repo.territory(TERRITORY_CODE)
        assert territory.id is not None
        numbers = [a.number for a in uow.repo.actions(territory.id)]
        for number in numbers:
            propose(uow, TERRITORY_CODE, number, recorded_by="Claire Moreau")
        copil = schedule_copil(uow, TERRITORY_CODE, held_at=datetime(2025, 1, 23, 9, 30))
        uow.commit()
    engine.dispose()
    return path, copil.copil_id, numbers


def one_round(start: Path, copy: Path, copil_id: int, numbers: list[str], bus: bool) -> float:
    shutil.copyfile(start, copy)
    engine = make_engine(f"sqlite:///{copy}")
    decisions = [DecisionInput(n, State.VALIDATED) for n in numbers]
    with unit_of_work(engine) as uow:
        if not bus:
            uow.handlers = {}  # the baseline: the same transaction, no consequences
        began = time.perf_counter()
        hold_copil(uow, copil_id, decisions)
        uow.commit()
        elapsed = time.perf_counter() - began
    engine.dispose()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("rounds", nargs="?", type=int, default=5)
    parser.add_argument("--busy", action="store_true", help="keep both cores spinning")
    args = parser.parse_args()
    with scratch_folder() as folder, busy_cores(args.busy):
        measure(folder, args.rounds)


def measure(folder: Path, rounds: int) -> None:
    start, copil_id, numbers = prepared(folder)
    one_round(start, folder / "warm.db", copil_id, numbers, True)  # imports, templates
    timings: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(rounds):
        for bus in (False, True):
            timings[bus].append(one_round(start, folder / "r.db", copil_id, numbers, bus))
    base, with_bus = (statistics.median(timings[b]) for b in (False, True))
    print(f"{len(numbers)} decisions per COPIL, {rounds} rounds, medians:")
    print(f"  without handlers (baseline): {base * 1000:.1f} ms")
    print(f"  with the bus (notices + event outbox): {with_bus * 1000:.1f} ms")
    print(f"  per decision, added by the bus: {(with_bus - base) / len(numbers) * 1000:.1f} ms")
    print(f"ratio: {with_bus / base:.2f}")


if __name__ == "__main__":
    main()
