"""Each top-level folder is one layer, and imports point one way (docs/architecture.md):

    models  ←  notifications  ←  flows  ←  tiflow (the shell)

`models/` is the domain and imports nothing else of the project; `notifications/` (what leaves the
machine) imports only `models`; `flows/` (the processes and their use cases) imports `models` and
`notifications`; `tiflow/` is the shell and nothing imports it back. Lazy imports inside functions
count too: a layer that needs the shell at run time is as coupled as one that imports it at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("models", "notifications", "flows", "tiflow")
ALLOWED = {
    "models": {"models"},
    "notifications": {"models", "notifications"},
    "flows": {"models", "notifications", "flows"},
    "tiflow": set(LAYERS),
}


def project_imports(source: str) -> list[tuple[int, str]]:
    """(line, top-level project package) for every import in `source` naming one of the layers."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(node.lineno, n.split(".")[0]) for n in names if n.split(".")[0] in LAYERS]
    return found


def violations(layer: str, path: Path, source: str) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{line}: {layer} imports {target}"
        for line, target in project_imports(source)
        if target not in ALLOWED[layer]
    ]


def layer_files(layer: str) -> list[Path]:
    return sorted(p for p in (ROOT / layer).rglob("*.py") if "migrations/versions" not in str(p))


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_imports_only_inner_layers(layer: str) -> None:
    problems = [v for p in layer_files(layer) for v in violations(layer, p, p.read_text())]
    assert problems == []


@pytest.mark.parametrize(
    ("layer", "source"),
    [
        ("models", "from notifications.outbox import enqueue\n"),
        ("notifications", "import flows.runtime\n"),
        ("flows", "def later():\n    from tiflow.cli import app\n"),
        ("models", "from tiflow import example\n"),
    ],
)
def test_a_wrong_import_is_caught(layer: str, source: str) -> None:
    """The checker itself: each of these lines breaks the direction and must be reported."""
    assert violations(layer, ROOT / layer / "x.py", source) != []


def test_allowed_imports_are_not_reported() -> None:
    assert violations("flows", ROOT / "flows" / "x.py", "from models.uow import UnitOfWork\n") == []
