"""Settings of the web application, read from the environment once at start-up."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from models.settings import Settings, load_settings

SECRET_ENV = "TIFLOW_WEB_SECRET_KEY"
URL_ENV = "TIFLOW_WEB_URL"
MIN_SECRET_LENGTH = 32


class WebConfigError(Exception):
    """A French message for the operator: the web application cannot start."""


@dataclass(frozen=True)
class WebSettings:
    secret_key: bytes
    base_url: str  # public address, e.g. https://tiflow.territoire.example (no trailing slash)
    settings: Settings = field(default_factory=load_settings)
    ephemeral_key: bool = False  # dev/demo mode: sessions die with the process
    link_lifetime: timedelta = timedelta(minutes=20)
    session_idle: timedelta = timedelta(hours=2)
    session_absolute: timedelta = timedelta(hours=12)
    # Sign-in requests counted over `rate_window`, for one address and for one client.
    rate_window: timedelta = timedelta(minutes=15)
    rate_per_address: int = 5
    rate_per_client: int = 20

    @property
    def https(self) -> bool:
        return self.base_url.startswith("https://")


def load_web_settings(
    *, dev: bool = False, env: dict[str, str] | None = None, base_url: str | None = None
) -> WebSettings:
    """The secret key comes from TIFLOW_WEB_SECRET_KEY; without it only `dev` (demo, local
    trial) starts, with a key generated for this process alone."""
    env = dict(os.environ if env is None else env)
    secret = env.get(SECRET_ENV, "").strip()
    url = (env.get(URL_ENV) or base_url or "http://127.0.0.1:8000").rstrip("/")
    settings = load_settings(env)
    if secret:
        if len(secret) < MIN_SECRET_LENGTH:
            raise WebConfigError(
                f"{SECRET_ENV} : la clé doit compter au moins {MIN_SECRET_LENGTH} caractères"
                " (par exemple : python3 -c 'import secrets; print(secrets.token_urlsafe(48))')."
            )
        return WebSettings(secret.encode(), url, settings)
    if not dev:
        raise WebConfigError(
            f"{SECRET_ENV} n'est pas défini : l'application web refuse de démarrer sans clé"
            " secrète (elle signe les liens de connexion et les sessions). Définissez-la, ou"
            " lancez « tiflow web --dev » pour un essai local avec une clé éphémère."
        )
    return WebSettings(secrets.token_bytes(48), url, settings, ephemeral_key=True)
