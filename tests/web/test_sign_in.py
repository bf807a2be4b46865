"""Sign-in by e-mail link: same answer for unknown addresses, links single-use and expiring,
rate limits, sessions (cookie flags, idle and absolute expiry, sign-out), CSRF."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import select

from flows.usecases.bus import unit_of_work
from models.outbox import OutboxMessage
from models.web_access import WebSession, WebSignInLink
from tests.web.conftest import (
    COPIL_ONLY,
    PILOT,
    Web,
    ask_link,
    confirm,
    csrf_of,
    eml_links,
    follow_link,
    link_path,
    sign_in,
)

UNKNOWN = "inconnu.total@nulle-part.example"


def _answer(web: Web, address: str) -> tuple[int, str]:
    client = web.client()
    form = client.get("/connexion")
    got = client.post("/connexion", data={"email": address, "csrf": csrf_of(form.text)})
    # The page names the typed address; everything else must be identical.
    return got.status_code, got.text.replace(address, "ADRESSE")


def test_unknown_address_gets_exactly_the_same_page_and_no_message(web: Web) -> None:
    known = _answer(web, PILOT)
    unknown = _answer(web, UNKNOWN)
    assert known == unknown
    assert known[0] == 200
    assert "Si l'adresse" in known[1]
    assert eml_links(web.outbox, PILOT)
    assert not eml_links(web.outbox, UNKNOWN)
    with unit_of_work(web.engine) as uow:
        kinds = uow.session.exec(select(OutboxMessage.kind, OutboxMessage.address)).all()
    assert kinds == [("sign_in", PILOT)]


def test_link_is_single_use(web: Web) -> None:
    client = web.client()
    assert ask_link(client, PILOT) == 200
    (link,) = eml_links(web.outbox, PILOT)
    assert follow_link(client, link) == 303
    assert client.get("/").status_code == 200
    again = web.client()
    assert follow_link(again, link) == 410
    assert again.get("/", follow_redirects=False).status_code == 303  # not signed in


def test_opening_the_link_does_not_spend_it(web: Web) -> None:
    """Mail scanners open links: only the confirmation button spends it."""
    client = web.client()
    ask_link(client, PILOT)
    (link,) = eml_links(web.outbox, PILOT)
    path = link_path(link)
    assert client.get(path).status_code == 200
    assert client.get(path).status_code == 200
    assert follow_link(client, link) == 303


def test_link_expires_after_twenty_minutes(web: Web) -> None:
    client = web.client()
    ask_link(client, PILOT)
    (link,) = eml_links(web.outbox, PILOT)
    with unit_of_work(web.engine) as uow:
        row = uow.session.exec(select(WebSignInLink)).one()
        assert row.expires_at - row.created_at == timedelta(minutes=20)
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        uow.session.add(row)
        uow.commit()
    assert follow_link(client, link) == 410
    assert "expiré" in client.get(link_path(link)).text


def test_forged_or_tampered_link_is_refused(web: Web) -> None:
    client = web.client()
    ask_link(client, PILOT)
    (link,) = eml_links(web.outbox, PILOT)
    token, signature = link.split("jeton=", 1)[1].split(".")
    forged = link.replace(signature, "0" * len(signature))
    assert follow_link(client, forged) == 410
    assert follow_link(client, link.replace(token, token[::-1])) == 410
    assert follow_link(client, link) == 303  # the real one still works


def test_sign_in_requests_are_limited_per_address(web: Web) -> None:
    statuses = [_answer(web, PILOT)[0] for _ in range(web.settings.rate_per_address + 2)]
    assert statuses[: web.settings.rate_per_address] == [200] * web.settings.rate_per_address
    assert statuses[web.settings.rate_per_address :] == [429, 429]
    assert len(eml_links(web.outbox, PILOT)) == web.settings.rate_per_address
    # The same limit for an unknown address: the answer does not tell which is known.
    unknown = [_answer(web, UNKNOWN)[0] for _ in range(web.settings.rate_per_address + 1)]
    assert unknown[-1] == 429


def test_sign_in_requests_are_limited_per_client(web: Web) -> None:
    client = web.client()
    statuses = []
    for n in range(web.settings.rate_per_client + 1):
        form = client.get("/connexion")
        address = f"personne{n}@exemple.example"
        statuses.append(
            client.post("/connexion", data={"email": address, "csrf": csrf_of(form.text)})
        )
    assert [s.status_code for s in statuses[:-1]] == [200] * web.settings.rate_per_client
    assert statuses[-1].status_code == 429
    assert "Trop de demandes" in statuses[-1].text


def test_requests_without_csrf_token_are_refused(web: Web) -> None:
    client = sign_in(web, PILOT)
    number = "FA-01"
    before = _notes(web)
    for path, data in (
        (f"/t/grand-est-touraine/actions/{number}/note", {"note": "Sans jeton"}),
        ("/connexion", {"email": PILOT}),
        ("/deconnexion", {}),
    ):
        assert client.post(path, data=data).status_code == 403, path
        assert client.post(path, data=dict(data, csrf="faux")).status_code == 403, path
    assert _notes(web) == before
    assert client.get("/").status_code == 200  # still signed in: sign-out needed its token
    # A token of another session is refused too.
    other = sign_in(web, COPIL_ONLY)
    foreign = csrf_of(other.get("/").text)
    note = {"note": "Jeton d'un autre", "csrf": foreign}
    assert client.post(f"/t/grand-est-touraine/actions/{number}/note", data=note).status_code == 403


def _notes(web: Web) -> int:
    with web.engine.connect() as conn:
        return conn.execute(sa.text("select count(*) from follow_up_note")).scalar_one()


def test_session_cookie_is_httponly_samesite_and_secure_over_https(web: Web) -> None:
    client = web.client()
    ask_link(client, PILOT)
    (link,) = eml_links(web.outbox, PILOT)
    cookie = confirm(client, link).headers["set-cookie"]
    assert re.search(r"tiflow_session=[^;]+;", cookie)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http on the test server
    secure = web.client()
    secure.base_url = secure.base_url.copy_with(scheme="https")
    ask_link(secure, COPIL_ONLY)
    (link,) = eml_links(web.outbox, COPIL_ONLY)
    assert "Secure" in confirm(secure, link).headers["set-cookie"]


def _age_session(web: Web, **changes: datetime) -> None:
    with unit_of_work(web.engine) as uow:
        row = uow.session.exec(select(WebSession)).one()
        for name, value in changes.items():
            setattr(row, name, value)
        uow.session.add(row)
        uow.commit()


def test_session_ends_after_idle_time(web: Web) -> None:
    client = sign_in(web, PILOT)
    assert client.get("/").status_code == 200
    _age_session(web, last_seen_at=datetime.now(UTC) - web.settings.session_idle)
    assert client.get("/", follow_redirects=False).status_code == 303


def test_session_ends_at_its_absolute_limit_even_when_active(web: Web) -> None:
    client = sign_in(web, PILOT)
    _age_session(web, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert client.get("/", follow_redirects=False).status_code == 303


def test_sign_out_ends_the_session(web: Web) -> None:
    client = sign_in(web, PILOT)
    cookie = client.cookies.get("tiflow_session")
    page = client.get("/")
    out = client.post("/deconnexion", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert out.status_code == 303
    replay = web.client()
    replay.cookies.set("tiflow_session", cookie or "")
    assert replay.get("/", follow_redirects=False).status_code == 303


def test_after_sign_in_the_person_lands_on_the_page_they_asked_for(web: Web) -> None:
    client = web.client()
    first = client.get("/t/grand-est-touraine/actions/FA-03", follow_redirects=False)
    assert first.headers["location"] == "/connexion?suite=/t/grand-est-touraine/actions/FA-03"
    form = client.get(first.headers["location"])
    suite = re.search(r'name="suite" value="([^"]+)"', form.text)
    assert suite is not None
    client.post(
        "/connexion", data={"email": PILOT, "csrf": csrf_of(form.text), "suite": suite.group(1)}
    )
    (link,) = eml_links(web.outbox, PILOT)
    done = confirm(client, link)
    assert done.headers["location"] == "/t/grand-est-touraine/actions/FA-03"


def test_next_page_cannot_point_to_another_site(web: Web) -> None:
    client = web.client()
    form = client.get("/connexion?suite=//evil.example/x")
    assert 'name="suite" value="/"' in form.text
