"""Accessibility checks on every page a signed-in pilot, coordinator and COPIL member opens:
French language, one h1, a skip link, a label for every field, no empty link or button."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from tests.web.conftest import COPIL_ONLY, ONLY_COORDINATOR, ONLY_PILOT, Web, sign_in

PAGES = [
    "/",
    "/t/grand-est-touraine/mes-actions",
    "/t/grand-est-touraine/plan",
    "/t/grand-est-touraine/plan?retard=1",
    "/t/grand-est-touraine/actions/FA-01",
    "/t/grand-est-touraine/copil",
    "/t/grand-est-touraine/import",
    "/t/grand-est-touraine/budget",
    "/t/grand-est-touraine/executions",
    "/t/grand-est-touraine/executions/proposer-une-action",
    "/t/grand-est-touraine/executions/tenir-un-copil",
    "/t/grand-est-touraine/executions/rappels-quotidiens",
    # The coordinator's (COPIL n° 1: the one the fixture schedules first).
    "/t/grand-est-touraine/planifier-copil",
    "/t/grand-est-touraine/copil/1/preparation",
    "/t/grand-est-touraine/copil/1/decisions",
    "/t/grand-est-touraine/copil/1/releve",
    "/t/grand-est-touraine/envois",
    "/t/grand-est-touraine/tableau-de-bord",
    "/t/grand-est-touraine/nouvelle-action",
    "/t/grand-est-touraine/actions/FA-01/modifier",
]


class Audit(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.lang = ""
        self.h1 = 0
        self.labels: set[str] = set()
        self.fields: list[str] = []  # ids of visible fields ("" when none)
        self.skip = False
        self.empty: list[str] = []
        self._open: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.lang = a.get("lang", "")
        elif tag == "h1":
            self.h1 += 1
        elif tag == "label":
            self.labels.add(a.get("for", ""))
        elif tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.fields.append(a.get("id", ""))
        elif tag == "a" and a.get("href") == "#contenu":
            self.skip = True
        if tag in ("a", "button"):
            self._open.append((tag, ""))

    def handle_data(self, data: str) -> None:
        if self._open:
            tag, text = self._open[-1]
            self._open[-1] = (tag, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("a", "button") and self._open:
            opened, text = self._open.pop()
            if not text.strip():
                self.empty.append(opened)


@pytest.mark.parametrize("address", [ONLY_PILOT, ONLY_COORDINATOR, COPIL_ONLY])
def test_pages_are_labelled_and_in_french(web: Web, address: str) -> None:
    client = sign_in(web, address)
    for path in PAGES:
        page = client.get(path)
        if page.status_code == 403:  # a page this role does not open
            continue
        assert page.status_code == 200, path
        audit = Audit()
        audit.feed(page.text)
        assert audit.lang == "fr", path
        assert audit.h1 == 1, path
        assert audit.skip, path
        unlabelled = [f for f in audit.fields if not f or f not in audit.labels]
        assert not unlabelled, (path, unlabelled)
        assert not audit.empty, (path, audit.empty)


def test_sign_in_page_is_labelled(web: Web) -> None:
    audit = Audit()
    audit.feed(web.client().get("/connexion").text)
    assert audit.fields == ["email"] and "email" in audit.labels
