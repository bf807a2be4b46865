"""One-machine mode: a local Prefect server (SQLite) and every deployment of prefect.yaml,
served from this process with their schedules and triggers."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from models.db import engine_for, upgrade
from models.settings import load_settings
from tiflow.deployments import PREFECT_YAML, load_specs, runner_deployments
from tiflow.prefect_server import prefect_server


@contextlib.contextmanager
def prefect_api(port: int) -> Iterator[str]:
    """The Prefect API to use: PREFECT_API_URL if set, else a local server we start and stop."""
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    home = Path(os.environ.get("PREFECT_HOME", load_settings().data_dir / "prefect"))
    with prefect_server(home, port=port, ui=True) as api_url:
        yield api_url


def serve(port: int = 4200, prefect_yaml: Path = PREFECT_YAML) -> None:
    """Blocks until interrupted (Ctrl-C stops the runner, then the server)."""
    from prefect import serve as prefect_serve
    from prefect.settings import PREFECT_API_URL, temporary_settings

    upgrade(engine_for(load_settings().database_url))
    with prefect_api(port) as api_url, temporary_settings({PREFECT_API_URL: api_url}):
        print(f"Serveur Prefect : {api_url.removesuffix('/api')}", flush=True)
        prefect_serve(*runner_deployments(load_specs(prefect_yaml)))
