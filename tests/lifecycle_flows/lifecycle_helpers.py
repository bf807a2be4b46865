"""Helpers for the lifecycle flow tests: reading back Prefect events, waiting for a state."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def read_events(run_id: str, expected: int, timeout: float = 15.0) -> list[Any]:
    """The `tiflow.*` events related to a flow run, oldest first, once `expected` of them have
    reached the server (the harness persists events asynchronously; bounded wait)."""
    from prefect import get_client
    from prefect.events.filters import (
        EventFilter,
        EventNameFilter,
        EventOrder,
        EventRelatedFilter,
    )

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            wanted = EventFilter(  # built each time: its `until` defaults to "now"
                event=EventNameFilter(prefix=["tiflow."]),
                related=EventRelatedFilter(id=[f"prefect.flow-run.{run_id}"]),
                order=EventOrder.ASC,
            )
            events = client.read_events(filter=wanted, limit=50).events
            if len(events) >= expected or time.monotonic() > deadline:
                return sorted(events, key=lambda e: e.occurred)
            time.sleep(0.2)


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.2)
