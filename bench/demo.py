"""The demo's year twice in one run: through the Prefect flows, then the same code without Prefect.

* **with Prefect**: what ``tiflow demo`` does — Prefect's ephemeral server (started first, its
  start timed on its own line), then each simulated month of the year as one real flow run (13
  of them, holding the 128 days and their flows: 210 in the year), heartbeat off;
* **without Prefect**: the same days calling the same flow bodies, tasks and use cases as plain
  Python functions (``flow.fn``, ``task.fn``): no flow or task runs, no API calls, no logs or
  artifacts sent, no events. Only what Prefect adds is left out; the database work, the
  e-mails written to ``.eml`` files and the budget workbook are the same.

Each half starts from a fresh SQLite database with the example loaded, in a temporary folder
removed at the end, Prefect home included: the bench warms its own Prefect home first (one
server start and stop: Prefect's migrations), so the timed start is a warm one, as for a second
``tiflow demo``, and nothing is left in yours. Prints the server start, both times, then
``ratio: N.NN`` (with Prefect ÷ without, the year only)::

    python bench/demo.py            # idle machine
    python bench/demo.py --busy     # two spinning processes keep both cores busy meanwhile
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, redirect_stdout
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import busy_cores, scratch_folder
from flows.usecases.bus import unit_of_work
from models.db import upgrade

T = TypeVar("T")


@contextmanager
def demo_database(folder: Path) -> Iterator[Any]:
    """A fresh database in `folder` with the example loaded, as the flows will see it."""
    from models import clock
    from tiflow.cli.demo import demo_environment
    from tiflow.demo_folder import EXAMPLE_LOADED, build_engine, database_url
    from tiflow.example import load_example

    folder.mkdir(parents=True)
    url = database_url(folder)
    with demo_environment(folder, url):
        engine = build_engine(folder)
        upgrade(engine)
        with clock.frozen(EXAMPLE_LOADED), unit_of_work(engine) as uow:
            load_example(uow)
            uow.commit()
        yield engine
        engine.dispose()


def _plain_task_call(task: Any, *args: Any, **kwargs: Any) -> Any:
    """A task called as its function; ``quote(x)`` arguments unwrapped as Prefect does."""
    from prefect.utilities.annotations import BaseAnnotation

    def plain(value: Any) -> Any:
        return value.unwrap() if isinstance(value, BaseAnnotation) else value

    return task.fn(*[plain(a) for a in args], **{k: plain(v) for k, v in kwargs.items()})


@contextmanager
def without_prefect() -> Iterator[Callable[..., Any]]:
    """Flows and tasks run as plain functions; what only Prefect uses (logger, artifacts,
    events, run id) is replaced by local stand-ins. Yields the runner for `play_year`."""
    from prefect.states import State
    from prefect.tasks import Task

    logger = logging.getLogger("bench.demo")
    stand_ins: dict[str, Any] = {
        "get_run_logger": lambda: logger,
        "create_markdown_artifact": lambda *a, **k: None,
        "create_table_artifact": lambda *a, **k: None,
        "emit_event": lambda *a, **k: None,
        "prefect_events_on": lambda: False,  # the events wait in the event outbox
    }
    run_id = {"current": ""}
    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(Task, "__call__", _plain_task_call))
        stack.enter_context(
            mock.patch("prefect.runtime.flow_run.get_id", lambda: run_id["current"])
        )
        for name, module in list(sys.modules.items()):
            if module is None or not (
                name in ("flows", "tiflow.demo_year") or name.startswith("flows.")
            ):
                continue
            for attribute, stand_in in stand_ins.items():
                if hasattr(module, attribute):
                    stack.enter_context(mock.patch.object(module, attribute, stand_in))

        def run(flow: Any, *args: Any, **kwargs: Any) -> Any:
            run_id["current"] = str(uuid.uuid4())  # the outbox's correlation id, as a run's
            result = flow.fn(*args, **kwargs)
            return result.result() if isinstance(result, State) else result

        yield run


def warm_prefect_home() -> None:
    """Start and stop the ephemeral server once: its first start creates Prefect's database."""
    from tiflow.cli.prefect_runs import quiet_console, start_ephemeral_server

    with quiet_console():
        server = start_ephemeral_server()
        if server is not None:
            server.wait()
            server.stop()


def with_prefect(folder: Path) -> tuple[float, float, int]:
    """(server start, year, flow runs) through Prefect, as `tiflow demo` plays it."""
    from tiflow.cli.prefect_runs import prefect_session
    from tiflow.demo_year import play_year

    with (
        demo_database(folder) as engine,
        prefect_session(heartbeat=False) as server,
        redirect_stdout(io.StringIO()),  # the flows' log_prints lines
    ):
        started = time.perf_counter()
        if server is not None:
            server.wait()
        server_start = time.perf_counter() - started
        started = time.perf_counter()
        report = play_year(engine)
        return server_start, time.perf_counter() - started, report.flow_runs


def plain(folder: Path) -> float:
    from tiflow.demo_year import play_year

    with (
        demo_database(folder) as engine,
        without_prefect() as runner,
        redirect_stdout(io.StringIO()),
    ):
        started = time.perf_counter()
        play_year(engine, runner=runner)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--busy", action="store_true", help="keep both cores busy meanwhile")
    args = parser.parse_args()
    with scratch_folder("tiflow-bench-demo-") as work:
        os.environ["PREFECT_HOME"] = str(work / "prefect-home")  # before Prefect reads it
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
        import prefect  # noqa: F401  (imported before timing, as the demo does before its year)

        import tiflow.demo_year  # noqa: F401

        with busy_cores(args.busy):
            warm_prefect_home()
            server_start, prefect_year, runs = with_prefect(work / "prefect")
            plain_year = plain(work / "plain")
    load = " (both cores kept busy)" if args.busy else ""
    print(f"Prefect ephemeral server start{load}: {server_start:.2f} s")
    days = f"{runs} flow runs, one per simulated month"
    print(f"year with Prefect ({days}){load}: {prefect_year:.2f} s")
    print(f"year without Prefect (same code, plain calls){load}: {plain_year:.2f} s")
    print(f"ratio: {prefect_year / plain_year:.2f}")


if __name__ == "__main__":
    main()
