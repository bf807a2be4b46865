"""The web application on the test database (SQLite and PostgreSQL), with sign-in helpers.

Sign-in goes the real way: the form, the outbox, a delivery round writing `.eml` files, the
link read from the file, the confirmation button.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.engine import Engine
from sqlmodel import select

from flows.usecases.bus import unit_of_work
from flows.usecases.copil import schedule_copil
from models.lifecycle import State
from models.settings import load_settings
from models.tables import ActionSheet, Indicator, Milestone, Person, PersonRole, Territory
from models.uow import UnitOfWork
from models.vocabulary import Axis, Role
from tiflow.web.app import create_app
from tiflow.web.config import WebSettings

SECRET = b"test-secret-key-for-the-web-application-0123456789"
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
LINK_RE = re.compile(r"(https?://\S+/connexion/lien\?jeton=[A-Za-z0-9_.-]+)")

OTHER_CODE = "vallee-de-la-bresle"
COORDINATOR = "claire.moreau@grand-est-touraine.example"
PILOT = "helene.garnier@aicr.example"  # also a COPIL member
COPIL_ONLY = "jean.lefevre@cc-castelrenaudais.example"
NATIONAL = "lecture.nationale@anct.example"
OTHER_PILOT = "pilote.bresle@bresle.example"
OTHER_COORDINATOR = "coordination@bresle.example"
ONLY_COORDINATOR = "lucie.perrin@grand-est-touraine.example"
ONLY_PILOT = "bruno.caron@cfai-amboise.example"  # pilots FA-01 only


@dataclass
class Web:
    engine: Engine
    settings: WebSettings
    outbox: Path
    client_factory: Callable[[], TestClient]

    def client(self) -> TestClient:
        return self.client_factory()


def csrf_of(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def eml_links(outbox: Path, address: str) -> list[str]:
    """Sign-in links e-mailed to `address`, oldest first, read from the .eml files."""
    links = []
    for path in sorted(outbox.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if address not in str(message["To"]) or "connexion" not in str(message["Subject"]):
            continue
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        links += LINK_RE.findall(body.get_content())
    return links


def ask_link(client: TestClient, address: str) -> int:
    form = client.get("/connexion")
    return client.post(
        "/connexion", data={"email": address, "csrf": csrf_of(form.text), "suite": "/"}
    ).status_code


def link_path(link: str) -> str:
    return "/" + link.split("://", 1)[1].split("/", 1)[1]


def confirm(client: TestClient, link: str) -> Response:
    """Open the e-mailed link, then press its "Me connecter" button."""
    page = client.get(link_path(link))
    if page.status_code != 200:
        return page
    token = link.split("jeton=", 1)[1]
    return client.post(
        "/connexion/lien",
        data={"jeton": token, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )


def follow_link(client: TestClient, link: str) -> int:
    return confirm(client, link).status_code


def sign_in(web: Web, address: str) -> TestClient:
    client = web.client()
    assert ask_link(client, address) == 200
    link = eml_links(web.outbox, address)[-1]
    assert follow_link(client, link) == 303
    return client


def add_people(engine: Engine) -> None:
    """A second territory with its own pilot, action and COPIL; single-role people at home
    (a national reader, a coordinator, a pilot of FA-01 only); a COPIL in each territory."""
    with unit_of_work(engine) as uow:
        other = Territory(code=OTHER_CODE, name="Vallée de la Bresle")
        uow.session.add(other)
        uow.session.flush()
        home = uow.repo.territory("grand-est-touraine")
        for territory, name, address, role in (
            (other, "Paul Martin", OTHER_PILOT, Role.PILOT),
            (other, "Inès Roche", OTHER_COORDINATOR, Role.COORDINATOR),
            (other, "Éric Vasseur", "eric.vasseur@bresle.example", Role.COPIL_MEMBER),
            (home, "Nadia Lecomte", NATIONAL, Role.NATIONAL_READER),
            (home, "Lucie Perrin", ONLY_COORDINATOR, Role.COORDINATOR),
            (home, "Bruno Caron", ONLY_PILOT, Role.PILOT),
        ):
            assert territory.id is not None
            person = Person(territory_id=territory.id, full_name=name, email=address)
            uow.session.add(person)
            uow.session.flush()
            assert person.id is not None
            uow.session.add(PersonRole(person_id=person.id, role=role))
        uow.session.flush()
        own = uow.repo.action("grand-est-touraine", "FA-01")
        own.pilot_id = _person(uow, ONLY_PILOT)
        assert other.id is not None
        there = ActionSheet(
            territory_id=other.id,
            number="FA-01",
            title="Atelier partagé de la Bresle",
            axis=Axis.INNOVATION,
            pilot_id=_person(uow, OTHER_PILOT),
            state=State.IN_PROGRESS,
        )
        uow.session.add_all([own, there])
        uow.session.flush()
        assert there.id is not None
        uow.session.add(Milestone(action_id=there.id, title="Ouverture", due_date=date(2030, 1, 1)))
        uow.session.add(
            Indicator(action_id=there.id, name="Entreprises accueillies", target=Decimal(5))
        )
        uow.commit()
    for code in ("grand-est-touraine", OTHER_CODE):
        with unit_of_work(engine) as uow:
            schedule_copil(uow, code, held_at=datetime(2030, 6, 3, 9, 30), place="Amboise")
            uow.commit()


def _person(uow: UnitOfWork, address: str) -> int:
    found = uow.session.exec(select(Person.id).where(Person.email == address)).first()
    assert found is not None
    return found


@pytest.fixture
def web(engine: Engine, example_plan: str, tmp_path: Path) -> Iterator[Web]:
    add_people(engine)
    data = tmp_path / "data"
    settings = WebSettings(
        SECRET,
        "http://testserver",
        settings=replace(load_settings({"TIFLOW_DATA_DIR": str(data)}), database_url="unused"),
    )
    app = create_app(settings, engine)
    clients: list[TestClient] = []

    def factory() -> TestClient:
        client = TestClient(app, base_url="http://testserver")
        clients.append(client)
        return client

    yield Web(engine, settings, data / "outbox", factory)
    for client in clients:
        client.close()


def person_id(engine: Engine, address: str) -> int:
    with unit_of_work(engine) as uow:
        found = uow.session.exec(select(Person.id).where(Person.email == address)).first()
        assert found is not None
        return found
