"""The one clock of tiflow: every instant the code stores, prints or sends comes from here.

Why one clock: the demo plays a year with a simulated clock, and every timestamp it writes
(history rows, outbox rows, ``Date:`` headers, ``.eml`` file names, ``.ics`` DTSTAMP and
SEQUENCE, "consolidé le") must come from that year, not from the machine. Tests pin the clock
the same way. Nothing in ``models/``, ``notifications/`` or ``flows/`` calls ``datetime.now()``
itself (``tests/architecture/test_one_clock.py`` checks it).

* :func:`now` — the current instant, aware, UTC;
* :func:`paris_now` / :func:`today_paris` — the same in Europe/Paris (what people read);
* :func:`frozen` — a block during which the clock shows a given instant (a run, a test);
  :func:`set_to` moves a frozen clock (the demo, step by step);
* ``TIFLOW_NOW`` (an ISO instant, naive = Paris time) pins the clock for a whole process:
  a command run "as of" a date, the documentation's examples.

The override is process-wide, not a context variable: Prefect runs tasks in worker threads,
and they must read the same simulated instant as the flow that started them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from models.errors import TiflowError

PARIS = ZoneInfo("Europe/Paris")
ENV_VARIABLE = "TIFLOW_NOW"

_frozen: datetime | None = None


def aware(instant: datetime) -> datetime:
    """Naive instants are Paris wall-clock time (what a coordinator types); result in UTC."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        instant = instant.replace(tzinfo=PARIS)
    return instant.astimezone(UTC)


def _from_environment() -> datetime | None:
    value = os.environ.get(ENV_VARIABLE, "").strip()
    if not value:
        return None
    try:
        return aware(datetime.fromisoformat(value))
    except ValueError:
        raise TiflowError(
            f"{ENV_VARIABLE} : « {value} » n'est pas un instant ISO (ex. 2025-01-02T09:00)."
        ) from None


def now() -> datetime:
    """The current instant (aware, UTC): the frozen one, else TIFLOW_NOW, else the machine's."""
    if _frozen is not None:
        return _frozen
    return _from_environment() or datetime.now(UTC)


def paris_now() -> datetime:
    return now().astimezone(PARIS)


def today_paris() -> date:
    """Today's date in Europe/Paris (at 00:30 on 1 January Paris, UTC still says 31 December)."""
    return paris_now().date()


def is_frozen() -> bool:
    return _frozen is not None or _from_environment() is not None


def set_to(instant: datetime) -> None:
    """Move the clock (inside :func:`frozen`); a naive `instant` is Paris time."""
    global _frozen
    _frozen = aware(instant)


@contextmanager
def frozen(instant: datetime) -> Iterator[None]:
    """The clock shows `instant` (naive = Paris time) inside the block, then what it showed."""
    global _frozen
    saved = _frozen
    set_to(instant)
    try:
        yield
    finally:
        _frozen = saved
