"""The application itself: health, French errors, security headers, the secret key rule, and
the `tiflow web` command."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.web.conftest import Web
from tiflow.cli import app as cli
from tiflow.web.config import SECRET_ENV, WebConfigError, load_web_settings


def test_health_answers_200(web: Web) -> None:
    got = web.client().get("/health")
    assert got.status_code == 200
    assert got.json() == {"statut": "ok"}


def test_errors_are_french_pages(web: Web) -> None:
    client = web.client()
    unknown = client.get("/nulle-part")
    assert unknown.status_code == 404 and "Page introuvable" in unknown.text
    wrong_method = client.get("/t/grand-est-touraine/actions/FA-01/note")
    assert wrong_method.status_code == 405 and "passez par le formulaire" in wrong_method.text
    assert 'lang="fr"' in unknown.text


def test_pages_carry_security_headers_and_are_not_cached(web: Web) -> None:
    page = web.client().get("/connexion")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"  # the link's token stays here
    assert page.headers["cache-control"] == "no-store"
    css = web.client().get("/static/tiflow.css")
    assert css.status_code == 200 and "--blue" in css.text
    assert css.headers["x-content-type-options"] == "nosniff"
    assert css.headers.get("cache-control") != "no-store"  # static files may be cached
    refused = web.client().get("/nulle-part")  # the error pages carry them too
    assert refused.status_code == 404 and refused.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in refused.headers["content-security-policy"]


def test_no_secret_key_no_start_except_in_dev_mode() -> None:
    with pytest.raises(WebConfigError, match="TIFLOW_WEB_SECRET_KEY n'est pas défini"):
        load_web_settings(env={})
    with pytest.raises(WebConfigError, match="au moins 32 caractères"):
        load_web_settings(env={SECRET_ENV: "trop-courte"})
    dev = load_web_settings(dev=True, env={})
    assert dev.ephemeral_key and len(dev.secret_key) >= 32
    assert load_web_settings(dev=True, env={}).secret_key != dev.secret_key
    real = load_web_settings(env={SECRET_ENV: "k" * 40, "TIFLOW_WEB_URL": "https://ti.example/"})
    assert not real.ephemeral_key and real.base_url == "https://ti.example" and real.https


def test_tiflow_web_refuses_to_start_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    result = CliRunner().invoke(cli, ["web", "--port", "8765"])
    assert result.exit_code == 2
    assert "refuse de démarrer sans clé" in " ".join(result.output.split())
    help_text = CliRunner().invoke(cli, ["web", "--help"]).output
    assert "--dev" in help_text and "--proxy" in help_text
