"""The cyclic garbage collector paused around bulk work that allocates a lot and keeps it.

A national budget report or a large plan import allocates a few objects per cell and frees
them by reference counting; left on, the cyclic collector runs every few hundred allocations
and walks every live object each time it reaches the older generations — in a process that
also holds Prefect, SQLAlchemy and the figures, 20-35 % of the work, growing with the data.
Paused for the block only (process-wide, so other threads' cycles wait those few seconds;
nothing is lost: they are collected once the collector is back on).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
