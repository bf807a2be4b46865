"""What every benchmark shares: keeping the machine busy, and a folder that is removed at the end.

``--busy`` in each script means the same thing: one spinning process per core (two on this
2-core machine) while it measures, stopped by their pid at the end, so that a figure taken
``--busy`` is what a user sees on a machine doing other work.
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
