"""What every benchmark shares: keeping the machine busy, and a folder that is removed at the end.

``--busy`` in each script means the same thing: one spinning process per core (two on this
2-core machine) while it measures, stopped by their pid at the end, so that a figure taken
``--busy`` is what a user sees on a machine doing other work.

On a virtual machine the hypervisor may give this machine's cores to other machines for a
while (``steal`` in ``/proc/stat``): the same code then ran up to 2.6 times slower here. Each
script prints the time stolen during what it times (:class:`Stolen`), so that a slow figure
can be told from slow code.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SPINNER = "while True: pass"
_PROC_STAT = Path("/proc/stat")


def core_count() -> int:
    return os.cpu_count() or 2


@contextmanager
def busy_cores(enabled: bool, count: int | None = None) -> Iterator[None]:
    """`count` processes (default: one per core) spinning while the block runs, when `enabled`."""
    spinners = (
        [subprocess.Popen([sys.executable, "-c", SPINNER]) for _ in range(count or core_count())]
        if enabled
        else []
    )
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


@contextmanager
def scratch_folder(prefix: str = "tiflow-bench-") -> Iterator[Path]:
    """A temporary folder for databases, Prefect homes and outputs, removed whatever happens."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def stolen_seconds() -> float | None:
    """CPU time the hypervisor has given to other machines since boot, all cores added up
    (Linux's ``steal``), or None where the system does not say."""
    try:
        fields = _PROC_STAT.read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class Stolen:
    """CPU time stolen by the hypervisor while the ``with`` block ran (``seconds``; None if
    unknown); ``str()`` is how the bench prints it."""

    def __init__(self) -> None:
        self.seconds: float | None = None
        self._start: float | None = None

    def __enter__(self) -> Stolen:
        self._start = stolen_seconds()
        return self

    def __exit__(self, *_: object) -> None:
        end = stolen_seconds()
        if self._start is not None and end is not None:
            self.seconds = end - self._start

    def __str__(self) -> str:
        return "steal unknown" if self.seconds is None else f"{self.seconds:.1f} s stolen"
