"""`python3 dev.py test`: the whole suite over every core unless the caller chose otherwise."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _dev() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dev", ROOT / "dev.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("args", [[], ["tests/unit", "-x"], ["--no-header"]])
def test_the_tests_are_spread_over_every_core_one_file_per_worker(args: list[str]) -> None:
    assert _dev().spread_over_cores(args) == ["-n", "auto", "--dist", "loadfile", *args]


@pytest.mark.parametrize(
    "args", [["-n", "0"], ["-n0"], ["--numprocesses=3"], ["-p", "no:xdist", "--pdb"]]
)
def test_a_choice_of_workers_is_left_as_given(args: list[str]) -> None:
    assert _dev().spread_over_cores(args) == args


def test_ci_runs_the_readme_test_command() -> None:
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert lines[-1] == "python3 dev.py test"
    assert "python3 dev.py test" in (ROOT / "README.md").read_text()
