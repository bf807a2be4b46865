"""Unit of work: one transaction, all or nothing, with the domain events it produced.

    with UnitOfWork(engine) as uow:
        event = transition_action(uow, action, State.VALIDATED, ...)
        uow.commit()
    publish(uow.events)        # only what was committed

Leaving the block without `commit()` rolls everything back.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.engine import Engine
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session

from models.errors import ConcurrencyConflict
from models.events import DomainEvent
from models.repository import Repository
from models.tables import ActionSheet


class UnitOfWork:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.events: list[DomainEvent] = []

    def __enter__(self) -> UnitOfWork:
        # expire_on_commit=False: objects stay readable after commit (for summaries, events).
        # autoflush=False: writes reach the database only through flush()/commit(), where a
        # stale version becomes a ConcurrencyConflict (not a raw error from some query).
        self.session = Session(self.engine, expire_on_commit=False, autoflush=False)
        self.repo = Repository(self.session)
        self.events = []
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
        self._guarded(self.session.commit)
        self._committed = True

    def _guarded(self, operation: object) -> None:
        touched = sorted(
            o.number
            for o in (*self.session.dirty, *self.session.deleted)
            if isinstance(o, ActionSheet)
        )
        try:
            operation()  # type: ignore[operator]
        except StaleDataError:
            raise self.conflict(touched) from None

    def conflict(self, numbers: list[str]) -> ConcurrencyConflict:
        """Roll back and say which actions changed under us (for bulk writes that check the
        version themselves, as the ORM does for `flush`)."""
        self.session.rollback()
        self.events = []
        names = ", ".join(numbers) or "concernée"
        return ConcurrencyConflict(
            f"Conflit de mise à jour sur l'action {names} : elle a été modifiée par une autre"
            " opération pendant la vôtre. Rien n'a été enregistré ; rechargez et recommencez."
        )
