"""Configuration, read from the environment once, with embedded defaults for a fresh machine."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PARIS = "Europe/Paris"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    notify_config: str | None  # apprise URLs or path to an apprise config file; None: .eml files
    # Public address of `tiflow web` (TIFLOW_WEB_URL); e-mails link to it when it is set.
    web_url: str | None = None
    # The web application's secret key (TIFLOW_WEB_SECRET_KEY): signs unsubscribe links.
    web_secret: str | None = None

    def action_url(self, action_id: int) -> str | None:
        """The web page of an action (through sign-in), or None without TIFLOW_WEB_URL."""
        return f"{self.web_url}/action/{action_id}" if self.web_url else None

    def unsubscribe_url(self, token: str) -> str | None:
        """The one-click page of a preference, or None without TIFLOW_WEB_URL and key."""
        if not (self.web_url and self.web_secret):
            return None
        return f"{self.web_url}/preferences/desabonnement/{token}"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    data_dir = Path(env.get("TIFLOW_DATA_DIR", "var")).resolve()
    url = env.get("TIFLOW_DATABASE_URL") or f"sqlite:///{data_dir / 'tiflow.db'}"
    return Settings(
        data_dir=data_dir,
        database_url=url,
        notify_config=env.get("TIFLOW_NOTIFY_CONFIG") or None,
        web_url=(env.get("TIFLOW_WEB_URL") or "").strip().rstrip("/") or None,
        web_secret=(env.get("TIFLOW_WEB_SECRET_KEY") or "").strip() or None,
    )
