"""One clock (`models/clock.py`): nothing in models/, notifications/ or flows/ reads the
machine's clock itself, so a simulated year (the demo) or a test pins every timestamp at once."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest

from models import clock

ROOT = Path(__file__).resolve().parents[2]
CLOCK = ROOT / "models" / "clock.py"
# datetime.now(), datetime.utcnow(), datetime.today(), date.today(), time.time()
FORBIDDEN = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today")}
FORBIDDEN |= {("date", "today"), ("time", "time"), ("pendulum", "now"), ("pendulum", "today")}


def clock_reads(source: str) -> list[tuple[int, str]]:
    """(line, call) of every direct read of the machine's clock in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = node.func.value
        name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
        if (name, node.func.attr) in FORBIDDEN:
            found.append((node.lineno, f"{name}.{node.func.attr}()"))
    return found


def sources() -> list[Path]:
    files = [
        p for layer in ("models", "notifications", "flows") for p in (ROOT / layer).rglob("*.py")
    ]
    return sorted(p for p in files if p != CLOCK)


def test_the_checker_finds_a_direct_read_of_the_machine_clock() -> None:
    source = "import datetime\nstamp = datetime.datetime.now(UTC)\nday = date.today()\n"
    assert clock_reads(source) == [(2, "datetime.now()"), (3, "date.today()")]


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_of_the_domain_reads_the_machine_clock(path: Path) -> None:
    assert clock_reads(path.read_text(encoding="utf-8")) == []


def test_a_frozen_clock_is_what_every_layer_reads() -> None:
    from flows.usecases import service
    from models.tables import utcnow
    from notifications import outbox

    instant = datetime(2024, 6, 20, 17, 0)  # naive: Paris wall-clock time
    with clock.frozen(instant):
        expected = datetime(2024, 6, 20, 15, 0, tzinfo=UTC)
        assert clock.now() == utcnow() == outbox.utcnow() == service.now() == expected
        assert clock.today_paris().isoformat() == "2024-06-20"
        clock.set_to(datetime(2025, 1, 1, 0, 30))  # Paris is already in 2025, UTC is not
        assert clock.today_paris().year == 2025 and clock.now().year == 2024
    assert not clock.is_frozen()  # back to the machine's clock


def test_tiflow_now_pins_the_clock_of_a_whole_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIFLOW_NOW", "2025-01-02T09:00")
    assert clock.now() == datetime(2025, 1, 2, 8, 0, tzinfo=UTC)
    monkeypatch.setenv("TIFLOW_NOW", "le 2 janvier")
    with pytest.raises(clock.TiflowError, match="TIFLOW_NOW"):
        clock.now()
