"""Sign-in links and sessions, stored in the database (digests only; see security.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import col, select

from flows.usecases.bus import unit_of_work
from models.tables import Person, PersonRole
from models.uow import UnitOfWork
from models.vocabulary import Role
from models.web_access import WebSession, WebSignInLink, WebSignInRequest
from tiflow.web import security
from tiflow.web.access import Principal
from tiflow.web.config import WebSettings

LINK, SESSION = "sign-in-link", "session"
# A session's last request is written at most once a minute: reading a page stays a read.
TOUCH_EVERY_SECONDS = 60


def utcnow() -> datetime:
    return datetime.now(UTC)


class TooManyRequests(Exception):
    pass


@dataclass(frozen=True)
class LinkRequest:
    """A sign-in link just created (known address): the caller e-mails `url`."""

    link_id: int
    email: str
    name: str
    url: str


def normalise_email(text: str) -> str:
    return text.strip().lower()[:254]


def record_request(
    uow: UnitOfWork, web: WebSettings, email: str, client: str, now: datetime
) -> None:
    """Count this request (known address or not); refuse beyond the limits."""
    since = now - web.rate_window
    count = sa.func.count(col(WebSignInRequest.id))
    by_address = uow.session.exec(
        select(count).where(WebSignInRequest.email == email, col(WebSignInRequest.at) > since)
    ).one()
    by_client = uow.session.exec(
        select(count).where(WebSignInRequest.client == client, col(WebSignInRequest.at) > since)
    ).one()
    if by_address >= web.rate_per_address or by_client >= web.rate_per_client:
        raise TooManyRequests
    uow.session.add(WebSignInRequest(email=email, client=client[:64], at=now))


def create_link(
    uow: UnitOfWork, web: WebSettings, email: str, next_path: str, now: datetime
) -> LinkRequest | None:
    """A new link for a person known to tiflow (None for an unknown address)."""
    person = uow.session.exec(
        select(Person).where(sa.func.lower(Person.email) == email).order_by(col(Person.id))
    ).first()
    if person is None:
        return None
    token = security.new_token()
    link = WebSignInLink(
        token_hash=security.digest(token),
        email=email,
        next_path=safe_next(next_path),
        created_at=now,
        expires_at=now + web.link_lifetime,
    )
    uow.session.add(link)
    uow.flush()
    assert link.id is not None
    signed = security.sign(web.secret_key, LINK, token)
    url = f"{web.base_url}/connexion/lien?jeton={signed}"
    return LinkRequest(link.id, email, person.full_name, url)


def spend_link(
    engine: Engine, web: WebSettings, signed: str | None, now: datetime
) -> tuple[str, str] | None:
    """Use a link once: (e-mail, next page), or None (bad, expired or already used).

    The conditional UPDATE (``used_at IS NULL``) makes two uses at once impossible."""
    token = security.unsign(web.secret_key, LINK, signed)
    if token is None:
        return None
    table = WebSignInLink.__table__  # type: ignore[attr-defined]
    with unit_of_work(engine) as uow:
        row = uow.session.exec(
            select(WebSignInLink).where(WebSignInLink.token_hash == security.digest(token))
        ).first()
        if row is None or row.used_at is not None or row.expires_at <= now:
            return None
        spent = (
            uow.session.connection()
            .execute(
                sa.update(table)
                .where(table.c.id == row.id, table.c.used_at.is_(None))
                .values(used_at=now)
            )
            .rowcount
        )
        if spent != 1:
            return None
        next_path, email = row.next_path, row.email
        uow.commit()
    return email, next_path


def link_is_usable(engine: Engine, web: WebSettings, signed: str | None, now: datetime) -> bool:
    token = security.unsign(web.secret_key, LINK, signed)
    if token is None:
        return False
    with unit_of_work(engine) as uow:
        row = uow.session.exec(
            select(WebSignInLink).where(WebSignInLink.token_hash == security.digest(token))
        ).first()
        return row is not None and row.used_at is None and row.expires_at > now


def open_session(engine: Engine, web: WebSettings, email: str, now: datetime) -> str:
    """A new session for `email`: the signed cookie value."""
    token = security.new_token()
    with unit_of_work(engine) as uow:
        uow.session.add(
            WebSession(
                token_hash=security.digest(token),
                email=email,
                created_at=now,
                last_seen_at=now,
                expires_at=now + web.session_absolute,
            )
        )
        uow.commit()
    return security.sign(web.secret_key, SESSION, token)


def end_session(engine: Engine, token: str, now: datetime) -> None:
    table = WebSession.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(
            sa.update(table)
            .where(table.c.token_hash == security.digest(token), table.c.ended_at.is_(None))
            .values(ended_at=now)
        )


_WS = WebSession.__table__.c  # type: ignore[attr-defined]
_P = Person.__table__.c  # type: ignore[attr-defined]
_R = PersonRole.__table__.c  # type: ignore[attr-defined]
# The session and the people of its address with their roles, in one query built once (a
# page's request reads it before anything else).
_SESSION_AND_PEOPLE = (
    sa.select(
        _WS.id,
        _WS.email,
        _WS.last_seen_at,
        _WS.expires_at,
        _P.id.label("person_id"),
        _P.territory_id,
        _P.full_name,
        _R.role,
    )
    .select_from(WebSession.__table__)  # type: ignore[attr-defined]
    .outerjoin(Person.__table__, sa.func.lower(_P.email) == _WS.email)  # type: ignore[attr-defined]
    .outerjoin(PersonRole.__table__, _R.person_id == _P.id)  # type: ignore[attr-defined]
    .where(_WS.token_hash == sa.bindparam("token_hash"), _WS.ended_at.is_(None))
    .order_by(_P.id)
)
_TOUCH = (
    sa.update(WebSession.__table__)  # type: ignore[attr-defined]
    .where(_WS.id == sa.bindparam("session_id"))
    .values(last_seen_at=sa.bindparam("now"))
)


def principal_of(
    conn: Connection, web: WebSettings, cookie: str | None, now: datetime
) -> Principal | None:
    """The signed-in person of this cookie, or None (no cookie, ended, idle or expired).

    Reads on `conn`, and commits it when the session's last request is written."""
    token = security.unsign(web.secret_key, SESSION, cookie)
    if token is None:
        return None
    rows = conn.execute(_SESSION_AND_PEOPLE, {"token_hash": security.digest(token)}).all()
    if not rows:
        return None
    row = rows[0]
    if row.expires_at <= now or row.last_seen_at + web.session_idle <= now:
        return None
    if (now - row.last_seen_at).total_seconds() >= TOUCH_EVERY_SECONDS:
        conn.execute(_TOUCH, {"session_id": row.id, "now": now})
        conn.commit()
    roles: dict[int, set[Role]] = {}
    person_ids: dict[int, int] = {}
    name = row.email
    for found in rows:
        if found.person_id is None:  # an address no longer known: signed in, no role
            continue
        person_ids.setdefault(found.territory_id, found.person_id)
        name = found.full_name if name == row.email else name
        bucket = roles.setdefault(found.territory_id, set())
        if found.role is not None:
            bucket.add(Role(found.role))
    return Principal(
        email=row.email,
        name=name,
        session_token=token,
        roles={t: frozenset(r) for t, r in roles.items() if r},
        person_ids=person_ids,
    )


def safe_next(path: str | None) -> str:
    """Only a path of this site (never another host: no open redirect)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path[:500]
