"""Every ```console example of README.md and docs/ runs, and prints what the docs show.

Each block is a session run against a copy of the demo built once for the test session
(`demo_run`): ``$ tiflow …`` lines go through the real CLI in a fresh working folder, with
TIFLOW_DATA_DIR holding the demo (so ``tiflow --base demo …`` finds it); ``$ python3 dev.py
demo`` is compared with the demo's own output. The placeholders are in `doc_examples`.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.demo.conftest import DemoRun
from tests.demo.doc_examples import (
    Block,
    console_blocks,
    doc_files,
    first_difference,
    shows,
)
from tiflow.cli import app
from tiflow.cli.common import console
from tiflow.cli.french import err_console

BLOCKS = [block for path in doc_files() for block in console_blocks(path)]
DEMO_COMMAND = "python3 dev.py demo"


def test_the_docs_have_console_examples_and_the_readme_shows_the_demo() -> None:
    assert len(BLOCKS) >= 5
    readme = [c.text for b in BLOCKS if b.path.name == "README.md" for c in b.commands]
    assert DEMO_COMMAND in readme


def test_the_placeholders_stand_for_text_on_a_line_or_for_whole_lines() -> None:
    shown = ["Plan d'actions — …", "  …", "12 actions sur 12", "… (the table)", "Fin"]
    assert shows(shown, "Plan d'actions — Grand Est Touraine\na\nb\n12 actions sur 12\nFin\n")
    assert shows(shown, "Plan d'actions — X\n12 actions sur 12   \nFin\n\n")
    assert not shows(shown, "Plan d'actions — X\n11 actions sur 12\nFin\n")
    assert not shows(shown, "Plan d'actions — X\n12 actions sur 12\nFin\nen plus\n")
    assert not shows(["Budget : 1 000,00 €"], "Budget : 2 000,00 €\n")


@pytest.fixture
def demo_copy(demo_run: DemoRun, tmp_path: Path) -> Path:
    """A copy of the demo's data folder: a block may write to the database it explores."""
    data_dir = tmp_path / "var"
    shutil.copytree(demo_run.folder, data_dir / "demo")
    (tmp_path / "work").mkdir()
    return data_dir


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.name)
def test_the_example_prints_what_the_docs_show(
    block: Block,
    demo_run: DemoRun,
    demo_copy: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(demo_copy.parent / "work")
    monkeypatch.setattr(console, "_width", 200)  # as the demo's own run (conftest)
    monkeypatch.setattr(err_console, "_width", 200)
    env = {
        "TIFLOW_DATA_DIR": str(demo_copy),
        "TIFLOW_DATABASE_URL": "",
        "TIFLOW_NOTIFY_CONFIG": "",
        "TIFLOW_NOW": "",
        "NO_COLOR": "1",
    }
    for command in block.commands:
        where = f"{block.path.name}:{command.line} « $ {command.text} »"
        if command.text == DEMO_COMMAND:
            output = demo_run.output
        else:
            words = shlex.split(command.text)
            assert words[0] == "tiflow", f"{where}: only tiflow commands can be checked"
            result = CliRunner().invoke(app, words[1:], env=env, prog_name="tiflow")
            assert result.exception is None or isinstance(result.exception, SystemExit), where
            output = result.output
        assert shows(command.shown, output), f"{where}\n{first_difference(command.shown, output)}"
