"""The benchmarks report the CPU time the hypervisor stole while they measured."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import _common
from bench._common import Stolen


def _stat(tmp_path: Path, steal_ticks: int) -> Path:
    # user nice system idle iowait irq softirq steal guest guest_nice
    path = tmp_path / "stat"
    path.write_text(f"cpu  100 0 50 900 3 0 2 {steal_ticks} 0 0\ncpu0 50 0 25 450 1 0 1 0 0 0\n")
    return path


def test_the_steal_during_a_block_is_the_difference_in_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = os.sysconf("SC_CLK_TCK")
    monkeypatch.setattr(_common, "_PROC_STAT", _stat(tmp_path, 10 * ticks))
    with Stolen() as stolen:
        monkeypatch.setattr(_common, "_PROC_STAT", _stat(tmp_path, 13 * ticks))
    assert stolen.seconds == pytest.approx(3.0)
    assert str(stolen) == "3.0 s stolen"


def test_without_a_proc_stat_the_steal_is_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_common, "_PROC_STAT", tmp_path / "absent")
    with Stolen() as stolen:
        pass
    assert stolen.seconds is None
    assert str(stolen) == "steal unknown"
