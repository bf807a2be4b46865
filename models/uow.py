"""Unit of work: one transaction, all or nothing, with the domain events it produced.

    with unit_of_work(engine) as uow:       # flows.usecases.bus: the one factory
        event = transition_action(uow, action, State.VALIDATED, ...)
        uow.commit()

Leaving the block without `commit()` rolls everything back.

Consequences inside the transaction (after cosmicpython's message bus): the unit of work is
given a table mapping each domain event type to its handlers. `commit()` first hands every
event recorded so far to its handlers, in order — including the events the handlers record
themselves — and only then commits the session. A handler writes in the same session (an
outbox message, a Prefect event to publish later), so the decision and its consequences are
committed together or not at all; a handler that raises rolls back the whole unit of work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session

from models.errors import ConcurrencyConflict
from models.events import DomainEvent
from models.repository import Repository
from models.tables import ActionSheet

Handler = Callable[[Any, "UnitOfWork"], None]
"""Called with one event and the unit of work it was recorded in."""
HandlerTable = Mapping[type, Sequence[Handler]]

# A handler recording an event whose handler records one… would never end: stop loudly.
MAX_EVENTS_PER_COMMIT = 10_000


class UnitOfWork:
    def __init__(self, engine: Engine, handlers: HandlerTable | None = None) -> None:
        self.engine = engine
        self.handlers: HandlerTable = handlers or {}
        self.events: list[DomainEvent] = []
        self._handled = 0

    def __enter__(self) -> UnitOfWork:
        # expire_on_commit=False: objects stay readable after commit (for summaries, events).
        # autoflush=False: writes reach the database only through flush()/commit(), where a
        # stale version becomes a ConcurrencyConflict (not a raw error from some query).
        self.session = Session(self.engine, expire_on_commit=False, autoflush=False)
        self.repo = Repository(self.session)
        self.events = []
        self._handled = 0
        self._committed = False
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._committed:
            self.session.rollback()
            self.events = []
        self.session.close()

    def flush(self) -> None:
        self._guarded(self.session.flush)

    def commit(self) -> None:
        self.handle_events()
        self._guarded(self.session.commit)
        self._committed = True

    def handle_events(self) -> None:
        """Run the handlers of every event not handled yet, oldest first, in this transaction.

        Events recorded by a handler join the queue; each event is handled once even if the
        unit of work commits several times."""
        while self._handled < len(self.events):
            if self._handled >= MAX_EVENTS_PER_COMMIT:
                raise RuntimeError("domain events keep raising events: a handler loops")
            event = self.events[self._handled]
            self._handled += 1
            for handler in self.handlers.get(type(event), ()):
                handler(event, self)

    def _guarded(self, operation: object) -> None:
        touched = sorted(
            o.number
            for o in (*self.session.dirty, *self.session.deleted)
            if isinstance(o, ActionSheet)
        )
        try:
            operation()  # type: ignore[operator]
        except StaleDataError:
            self.session.rollback()
            self.events = []
            self._handled = 0
            names = ", ".join(touched) or "concernée"
            raise ConcurrencyConflict(
                f"Conflit de mise à jour sur l'action {names} : elle a été modifiée par une autre"
                " opération pendant la vôtre. Rien n'a été enregistré ; rechargez et recommencez."
            ) from None
