"""How long work reports its progress (the CLI shows a Rich progress bar; tests pass nothing)."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def phase(self, label: str, total: int) -> None:
        """A new step of `total` units starts (its label is French, shown to the user)."""

    def advance(self, steps: int = 1) -> None: ...


class _Silent:
    def phase(self, label: str, total: int) -> None:
        pass

    def advance(self, steps: int = 1) -> None:
        pass


NO_PROGRESS: Progress = _Silent()
# Rows handled between two advances of a long phase: a bar's advance costs more than a row.
PROGRESS_STEP = 500
