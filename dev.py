#!/usr/bin/env python3
"""The project's two entry points, for a fresh machine with only Python 3.11+ and pip.

    python3 dev.py demo     # install into .venv, then play the example year (the main job)
    python3 dev.py test     # install into .venv (with test tools), then run the whole test suite
                            # over every core (extra arguments go to pytest; -n 0: one process)
    python3 dev.py lint     # ruff check, ruff format --check, mypy
    python3 dev.py lock     # re-create the lock files after editing pyproject.toml

Installs are reproducible: pip installs the pinned, hashed lock file as it is (no resolving),
then tiflow itself in editable mode, and checks that nothing is missing. A stamp records the
lock's digest, so a second run skips the install.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
LOCKS = {"runtime": ROOT / "requirements.lock", "dev": ROOT / "requirements-dev.lock"}


def run(*args: object, env: dict[str, str] | None = None) -> None:
    completed = subprocess.run([str(a) for a in args], cwd=ROOT, env=env)
    if completed.returncode != 0:
        sys.exit(completed.returncode)


def ensure_environment(kind: str) -> None:
    """Create .venv and install the lock file of `kind`, unless already done for this lock."""
    lock = LOCKS[kind]
    digest = hashlib.sha256(lock.read_bytes() + (ROOT / "pyproject.toml").read_bytes())
    stamp = VENV / f".installed-{kind}"
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        return
    if not PYTHON.exists():
        print("Création de l'environnement virtuel .venv …", flush=True)
        venv.create(VENV, with_pip=True)
    print(f"Installation des dépendances ({lock.name}) …", flush=True)
    pip = [PYTHON, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    # --no-deps: the lock already names every package, transitive ones included, so pip has
    # nothing to resolve. Resolving anyway lets pip 23.2 pick a newer release than the pinned
    # one for a requirement with extras (prefect's httpx[http2]) and then refuse it as unpinned.
    # `pip check` then proves that the installed set is complete and consistent.
    run(*pip, "--no-deps", "--require-hashes", "-r", lock)
    run(*pip, "--no-deps", "-e", ROOT)
    run(PYTHON, "-m", "pip", "check", "--disable-pip-version-check")
    stamp.write_text(digest.hexdigest())


def tool(name: str) -> Path:
    return BIN / name


def spread_over_cores(args: list[str]) -> list[str]:
    """pytest's arguments, with the tests spread over every core (pytest-xdist), one test
    file per worker at a time so that a file's module fixtures (servers, browsers) start once,
    unless the caller chose: ``-n 0`` (or ``-p no:xdist``) runs in this process, for ``--pdb``."""
    chosen = any(a.startswith(("-n", "--numprocesses")) or a == "no:xdist" for a in args)
    return args if chosen else ["-n", "auto", "--dist", "loadfile", *args]


def main(argv: list[str]) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036  (the user may run an older python3)
        sys.exit("tiflow needs Python 3.11 or newer")
    command, rest = (argv[0], argv[1:]) if argv else ("help", [])
    if command == "demo":
        ensure_environment("runtime")
        run(tool("tiflow"), "demo", *rest)
    elif command == "test":
        ensure_environment("dev")
        run(tool("pytest"), *spread_over_cores(rest))
    elif command == "lint":
        ensure_environment("dev")
        run(tool("ruff"), "check", ".")
        run(tool("ruff"), "format", "--check", ".")
        packages = ["models", "tiflow", "flows", "notifications", "bench", "dev.py"]
        run(tool("mypy"), *[p for p in packages if (ROOT / p).exists()])
    elif command == "lock":
        ensure_environment("dev")
        compile_ = [PYTHON, "-m", "uv", "pip", "compile", "--quiet", "--generate-hashes"]
        compile_ += ["--python-version", "3.11", "pyproject.toml"]
        # Relative paths: uv writes the command into each lock file's header.
        run(*compile_, "-o", LOCKS["runtime"].relative_to(ROOT))
        run(*compile_, "--extra", "dev", "-o", LOCKS["dev"].relative_to(ROOT))
    else:
        print(__doc__)
        sys.exit(0 if command == "help" else 2)


if __name__ == "__main__":
    main(sys.argv[1:])
