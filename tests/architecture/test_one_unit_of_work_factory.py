"""Every entrance opens its units of work through `flows.usecases.bus.unit_of_work`, so every
decision's consequences (notices, Prefect events) are written in its transaction: a module that
built a bare `UnitOfWork(engine)` would record decisions whose handlers never run."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FACTORY = ROOT / "flows" / "usecases" / "bus.py"
SCANNED = ("models", "notifications", "flows", "tiflow", "bench")


def constructions(source: str) -> list[int]:
    """Lines where `source` calls `UnitOfWork(...)` (by name or as an attribute)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name == "UnitOfWork":
                lines.append(node.lineno)
    return lines


def test_only_the_bus_factory_constructs_a_unit_of_work() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for folder in SCANNED
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != FACTORY
        for line in constructions(path.read_text())
    ]
    assert found == []


def test_the_check_sees_a_bare_construction() -> None:
    assert constructions("with UnitOfWork(engine) as uow:\n    pass\n") == [1]
    assert constructions("uow = models.uow.UnitOfWork(engine)\n") == [1]
    assert constructions("with unit_of_work(engine) as uow:\n    pass\n") == []
    assert constructions(FACTORY.read_text()) != []  # the factory itself is the one place
