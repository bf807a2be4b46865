"""Reminder e-mails carry "Mettre à jour mon action", which leads through sign-in to the
action's page."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import date

import pytest

from flows.usecases.bus import unit_of_work
from flows.usecases.reminders import sweep
from notifications.transports import Deliverer
from tests.web.conftest import ONLY_PILOT, Web, confirm, eml_links

LINK = re.compile(r"Mettre à jour mon action\s:\s(http://testserver/action/\d+)")  # no-break spaces


def test_reminder_links_to_the_action_page_through_sign_in(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIFLOW_WEB_URL", "http://testserver")
    reminders = web.outbox.parent / "reminders"
    with Deliverer(None, outbox=reminders) as deliverer:
        sweep(web.engine, deliverer, as_of=date(2024, 4, 23))
    texts = []
    for path in sorted(reminders.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if ONLY_PILOT in str(message["To"]):
            body = message.get_body(preferencelist=("plain",))
            assert body is not None
            texts.append(body.get_content())
            html = message.get_body(preferencelist=("html",))
            assert html is not None and ">Mettre à jour mon action</a>" in html.get_content()
    assert texts, "the pilot of FA-01 got no reminder"
    with unit_of_work(web.engine) as uow:
        action_id = uow.repo.action("grand-est-touraine", "FA-01").id
    links = LINK.findall(texts[0])
    assert f"http://testserver/action/{action_id}" in links

    client = web.client()
    first = client.get(f"/action/{action_id}", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == f"/connexion?suite=/action/{action_id}"
    form = client.get(first.headers["location"])
    assert f'value="/action/{action_id}"' in form.text
    from tests.web.conftest import csrf_of

    client.post(
        "/connexion",
        data={"email": ONLY_PILOT, "csrf": csrf_of(form.text), "suite": f"/action/{action_id}"},
    )
    done = confirm(client, eml_links(web.outbox, ONLY_PILOT)[-1])
    assert done.headers["location"] == f"/action/{action_id}"
    page = client.get(done.headers["location"])
    assert page.status_code == 200
    assert str(page.url).endswith("/t/grand-est-touraine/actions/FA-01")
    assert 'id="form-note"' in page.text


def test_without_web_url_reminders_have_no_link(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIFLOW_WEB_URL", raising=False)
    reminders = web.outbox.parent / "reminders"
    with Deliverer(None, outbox=reminders) as deliverer:
        sweep(web.engine, deliverer, as_of=date(2024, 4, 23))
    files = list(reminders.glob("*.eml"))
    assert files
    assert all(b"Mettre" not in path.read_bytes() for path in files)
