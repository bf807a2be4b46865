"""Running the `tiflow` command in-process against the test database (both backends)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner, Result

from models.db import engine_for
from tiflow.cli import app
from tiflow.cli.common import console
from tiflow.cli.french import err_console

Tiflow = Callable[..., Result]


@pytest.fixture(autouse=True)
def wide_consoles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wide Rich output (one line per table row) whatever COLUMNS was when tiflow.cli was
    imported (Rich reads it once, at the console's creation)."""
    monkeypatch.setattr(console, "_width", 200)
    monkeypatch.setattr(err_console, "_width", 200)


@pytest.fixture
def tiflow(engine: Engine, tmp_path: Path) -> Tiflow:
    """`tiflow("actions", "--axe", "Foncier")` → the result (exit code, stdout, stderr)."""
    return run_on(engine.url.render_as_string(hide_password=False), tmp_path)


@pytest.fixture
def tiflow_on() -> Callable[[str, Path], Tiflow]:
    """`tiflow_on(url, folder)("territoires")`: the command on another database."""
    return run_on


def run_on(database_url: str, data_dir: Path) -> Tiflow:
    runner = CliRunner()
    env = {
        "TIFLOW_DATABASE_URL": database_url,
        "TIFLOW_DATA_DIR": str(data_dir / "data"),
        "NO_COLOR": "1",
    }

    def invoke(*args: str) -> Result:
        try:
            return runner.invoke(app, list(args), env=env, prog_name="tiflow")
        finally:
            # A real `tiflow` command is a process of its own: its connections end with it.
            # In-process, close the command's pooled connections, as its exit would.
            engine_for(database_url).dispose()

    return invoke
