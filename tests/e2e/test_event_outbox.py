"""The event outbox against a real `prefect server start`: a decision committed while the
Prefect server is down keeps its events; once the server is back they are published, in
order, each once — even if a publisher dies after the server's answer and sends them again."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows.events import publish_pending_events
from flows.usecases.bus import unit_of_work
from flows.usecases.copil import DecisionInput, hold_copil, schedule_copil
from flows.usecases.proposals import propose
from models.event_outbox import EventOutbox
from models.lifecycle import State
from tiflow.example import TERRITORY_CODE
from tiflow.prefect_server import free_port, prefect_server

pytestmark = pytest.mark.e2e
E = EventOutbox.__table__.c  # type: ignore[attr-defined]


@pytest.fixture
def prefect_down(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A Prefect API URL where no server listens yet; `start()` starts one there."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    with temporary_settings({PREFECT_API_URL: api_url}):
        yield {"start": lambda: prefect_server(tmp_path / "prefect", port=port), "url": api_url}


def _decide_while_down(engine: Engine) -> None:
    with unit_of_work(engine) as uow:
        for number in ("FA-07", "FA-09"):
            propose(uow, TERRITORY_CODE, number, recorded_by="Claire Moreau")
        info = schedule_copil(uow, TERRITORY_CODE, held_at=datetime(2025, 1, 23, 9, 30))
        uow.commit()
    with unit_of_work(engine) as uow:
        decisions = [
            DecisionInput("FA-07", State.VALIDATED),
            DecisionInput("FA-09", State.REVISION_REQUESTED, comment="Chiffrage à préciser"),
        ]
        hold_copil(uow, info.copil_id, decisions)
        uow.commit()


def _stored(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(E.event_id, E.name, E.published_at, E.attempts).order_by(E.id)
        ).all()


def _on_server(ids: list[str], timeout: float = 90) -> list[Any]:
    """The server's events with these ids, once all are stored (it stores in the background)."""
    from prefect import get_client
    from prefect.events.filters import EventFilter, EventIDFilter, EventOrder

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            wanted = EventFilter(
                id=EventIDFilter(id=[uuid.UUID(i) for i in ids]), order=EventOrder.ASC
            )
            events = client.read_events(filter=wanted, limit=50).events
            if len(events) >= len(ids) or time.monotonic() > deadline:
                return events
            time.sleep(0.5)


def test_events_committed_while_prefect_is_down_are_published_once_when_it_is_back(
    engine: Engine, example_plan: str, prefect_down: dict[str, Any]
) -> None:
    _decide_while_down(engine)  # committed: the decisions are recorded whatever Prefect does
    down = publish_pending_events(engine)
    stored = _stored(engine)
    names = [row.name for row in stored]
    assert (
        names
        == [
            "tiflow.action.proposed",
            "tiflow.action.proposed",
            "tiflow.copil.scheduled",
            "tiflow.action.revision_requested",  # decisions are written in number order
            "tiflow.action.validated",
            "tiflow.copil.held",
        ]
        or names[3:5] == ["tiflow.action.validated", "tiflow.action.revision_requested"]
    )
    assert down.published == 0 and down.pending == len(stored) and down.error
    assert all(row.published_at is None and row.attempts == 1 for row in stored)

    with prefect_down["start"]():
        back = publish_pending_events(engine)
        assert back.published == len(stored) and back.pending == 0
        assert publish_pending_events(engine).published == 0  # nothing left to send
        # A publisher that died after the server's answer, before recording it, sends again.
        with engine.begin() as conn:
            conn.execute(sa.update(EventOutbox).values(published_at=None))
        assert publish_pending_events(engine).published == len(stored)

        ids = [row.event_id for row in stored]
        received = _on_server(ids)
        assert sorted(str(e.id) for e in received) == sorted(ids)  # each exactly once
        assert [e.event for e in received] == names  # in the order they were committed
        held = next(e for e in received if e.event == "tiflow.copil.held")
        assert set(held.payload["decisions"]) == {"FA-07", "FA-09"}
