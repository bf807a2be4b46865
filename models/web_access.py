"""Who may come in through the web application: sign-in links, sessions, sign-in requests.

Only SHA-256 digests of the secrets are stored (``token_hash``): a copy of the database does
not let anyone sign in. The link itself travels once, in the sign-in e-mail of the outbox.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class WebSignInLink(SQLModel, table=True):
    """A single-use sign-in link: valid until ``expires_at``, spent when ``used_at`` is set."""

    __tablename__ = "web_sign_in_link"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    email: str = Field(max_length=254, index=True)
    next_path: str = Field(default="/", max_length=500, description="page demandée")
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebSession(SQLModel, table=True):
    """A signed-in browser: ends on sign-out, after ``idle`` without a request, or at
    ``expires_at`` (absolute limit), whichever comes first."""

    __tablename__ = "web_session"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    email: str = Field(max_length=254, index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    last_seen_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebSignInRequest(SQLModel, table=True):
    """One request for a link, known address or not: what the rate limits count."""

    __tablename__ = "web_sign_in_request"
    __table_args__ = (
        sa.Index("ix_web_sign_in_request_email_at", "email", "at"),
        sa.Index("ix_web_sign_in_request_client_at", "client", "at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254)
    client: str = Field(max_length=64, description="adresse IP du client")
    at: datetime = Field(sa_type=UTCDateTime)
