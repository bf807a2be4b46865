"""Errors users see. Their messages are French and name the action, field or row at fault."""

from __future__ import annotations


class TiflowError(Exception):
    """Base of every error whose message is meant for a coordinator."""


class NotFound(TiflowError, LookupError):
    pass


class ConcurrencyConflict(TiflowError):
    pass


class InvalidInput(TiflowError, ValueError):
    """One or more problems in user input; `problems` lists each, already in French."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class DatabaseBusy(TiflowError):
    """The database stayed locked (another process writing) longer than tiflow waits."""
