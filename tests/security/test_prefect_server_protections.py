"""The operator's protections of the Prefect server, on a real `prefect server start` as
`tiflow serve` runs it: basic auth (PREFECT_SERVER_API_AUTH_STRING) reaches the server, every
client must send it (PREFECT_API_AUTH_STRING), and the server listens on loopback only."""

from __future__ import annotations

import base64
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tiflow.prefect_server import (
    CLIENT_AUTH,
    SERVER_AUTH,
    prefect_cli,
    prefect_env,
    prefect_server,
)
from tiflow.serve import client_settings

pytestmark = pytest.mark.e2e
AUTH = "admin:Un-Long-Secret-Du-Serveur-19"


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server started the way `tiflow serve` starts it, the operator's string in the
    environment (other PREFECT_* settings of the caller are not passed on)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SERVER_AUTH, AUTH)
        patch.delenv(CLIENT_AUTH, raising=False)
        with prefect_server(tmp_path_factory.mktemp("prefect-home")) as url:
            yield url


def _status(url: str, auth: str | None = None, method: str = "POST") -> int:
    request = urllib.request.Request(url, data=b"{}" if method == "POST" else None, method=method)
    request.add_header("Content-Type", "application/json")
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_the_api_refuses_requests_without_the_auth_string(api_url: str) -> None:
    assert _status(f"{api_url}/flows/filter") == 401
    assert _status(f"{api_url}/flows/filter", "admin:mauvais") == 401
    assert _status(f"{api_url}/flows/filter", AUTH) == 200
    assert _status(f"{api_url}/health", method="GET") == 200  # probes stay open, by design


def test_the_server_listens_on_loopback_only(api_url: str) -> None:
    port = int(api_url.rsplit(":", 1)[1].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    # Another address of this machine: a server bound to 0.0.0.0 would answer there too.
    with pytest.raises(OSError), socket.create_connection(("127.0.0.2", port), timeout=5):
        pass


def test_clients_must_send_the_auth_string(api_url: str, tmp_path: Path) -> None:
    base = {"PATH": "/usr/bin:/bin", CLIENT_AUTH: AUTH}
    env = prefect_env(base, tmp_path / "client", api_url=api_url)
    assert env[CLIENT_AUTH] == AUTH  # the operator's string reaches the client
    prefect_cli(["flow", "ls"], env, tmp_path)
    del env[CLIENT_AUTH]
    with pytest.raises(RuntimeError, match="prefect flow ls failed"):
        prefect_cli(["flow", "ls"], env, tmp_path, timeout=60)


def test_tiflow_serve_sends_the_servers_string_when_no_client_string_is_set() -> None:
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL

    url = "http://127.0.0.1:4200/api"
    assert client_settings(url, {SERVER_AUTH: AUTH}) == {
        PREFECT_API_URL: url,
        PREFECT_API_AUTH_STRING: AUTH,
    }
    assert client_settings(url, {SERVER_AUTH: AUTH, CLIENT_AUTH: "autre:x"}) == {
        PREFECT_API_URL: url
    }
    assert client_settings(url, {}) == {PREFECT_API_URL: url}
