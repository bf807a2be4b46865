"""One-machine mode: a local Prefect server (SQLite) and every deployment of prefect.yaml,
served from this process with their schedules and triggers."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from models.db import engine_for, upgrade
from models.errors import TiflowError
from models.settings import Settings, load_settings
from notifications.outbox import open_deliverer
from notifications.transports import ConfigError
from tiflow.deployments import PREFECT_YAML, load_specs, runner_deployments
from tiflow.prefect_server import CLIENT_AUTH, SERVER_AUTH, prefect_server


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
    from prefect.settings import temporary_settings

    settings = load_settings()
    check_notifications(settings)
    upgrade(engine_for(settings.database_url))
    with prefect_api(port) as api_url, temporary_settings(client_settings(api_url)):
        print(f"Serveur Prefect : {api_url.removesuffix('/api')}", flush=True)
        prefect_serve(*runner_deployments(load_specs(prefect_yaml)))


def client_settings(api_url: str, environ: Mapping[str, str] | None = None) -> dict[Any, Any]:
    """This process's Prefect client: the server's URL and, when the server demands basic auth
    (PREFECT_SERVER_API_AUTH_STRING) and no client string is set, that same string."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL

    env = os.environ if environ is None else environ
    values: dict[Any, Any] = {PREFECT_API_URL: api_url}
    if env.get(SERVER_AUTH) and not env.get(CLIENT_AUTH):
        values[PREFECT_API_AUTH_STRING] = env[SERVER_AUTH]
    return values


def check_notifications(settings: Settings) -> None:
    """Refuse to start on a notification configuration that cannot work or is not private
    (an apprise file other accounts can read): better now than at the first e-mail."""
    try:
        open_deliverer(settings)  # parses and checks; connects to nothing
    except ConfigError as error:
        raise TiflowError(f"Configuration des notifications refusée : {error}") from None
