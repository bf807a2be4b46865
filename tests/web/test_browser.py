"""Real browser (Debian's Chromium): a pilot asks for a link, opens it from the .eml, marks a
milestone done and adds a note; the action's history and the next COPIL's digest show it. A
COPIL member finds no write form and cannot post one."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import replace
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from flows.usecases.bus import unit_of_work
from models.tables import CopilMeeting
from tests.browser import chromium_driver, free_port, serve
from tests.web.conftest import COPIL_ONLY, ONLY_PILOT, Web, eml_links
from tiflow.web.app import create_app

SHOTS = os.environ.get("TIFLOW_SCREENSHOTS")  # a folder: keep the pages as PNG files
MILESTONE = "Choix du site et du bâtiment"


@pytest.fixture
def live(web: Web) -> Iterator[tuple[Web, str]]:
    port = free_port()
    settings = replace(web.settings, base_url=f"http://127.0.0.1:{port}")
    with serve(create_app(settings, web.engine), port) as url:
        yield web, url


def _shot(driver: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SHOTS) / f"{name}.png"))


def _submit(driver: Any, button: str) -> str:
    """Click a form's button (or a link), wait for the next page, return its messages."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, button).click()
    WebDriverWait(driver, 30).until(lambda d: _gone(old))
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )
    alerts = driver.find_elements(By.CSS_SELECTOR, "main .alert")
    return " ".join(a.text for a in alerts)


def _gone(element: Any) -> bool:
    """The element left the document: the next page replaced it. Chromium answers either
    with a stale-element error or, while the new document is being attached, with an
    inspector error « Node with given id does not belong to the document »."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        if "does not belong to the document" in str(error):
            return True
        raise
    return False


def _sign_in(driver: Any, web: Web, url: str, address: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url + "/")
    assert "/connexion" in driver.current_url
    driver.find_element(By.ID, "email").send_keys(address)
    _shot(driver, "01-connexion")
    assert "un lien de connexion vient de lui être envoyé" in _submit(
        driver, "main form button[type=submit]"
    )
    # The delivery round runs just after the answer: wait for its .eml file.
    deadline = time.monotonic() + 30
    while not (links := eml_links(web.outbox, address)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert links, f"no sign-in e-mail for {address}"
    driver.get(links[-1])  # the link from the .eml file
    _shot(driver, "02-lien")
    _submit(driver, "#confirmer")
    assert driver.current_url == url + "/"


def test_pilot_marks_a_milestone_done_and_adds_a_note(
    live: tuple[Web, str], tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    web, url = live
    with unit_of_work(web.engine) as uow:
        copil_id = uow.session.exec(
            select(CopilMeeting.id).where(
                CopilMeeting.territory_id == uow.repo.territory("grand-est-touraine").id
            )
        ).one()
    with chromium_driver() as driver:
        _sign_in(driver, web, url, ONLY_PILOT)
        _shot(driver, "03-accueil")
        _submit(driver, "main a[href$='/mes-actions']")
        _shot(driver, "04-mes-actions")
        _submit(driver, "main a[href$='/actions/FA-01']")
        assert "Usine-témoin" in driver.find_element(By.TAG_NAME, "h1").text
        Select(driver.find_element(By.ID, "jalon-titre")).select_by_value(MILESTONE)
        assert "Enregistré" in _submit(driver, "#form-jalon button")
        driver.find_element(By.ID, "note-texte").send_keys(
            "Site retenu : ancienne halle Pinault, bail signé."
        )
        assert "Enregistré" in _submit(driver, "#form-note button")
        _shot(driver, "05-action")
        history = driver.find_element(By.CSS_SELECTOR, "ol.history").text
        assert f"jalon « {MILESTONE} » fait le" in history
        assert "note de suivi ajoutée" in history
        assert history.count("Bruno Caron") == 2
        assert "Site retenu\u00a0: ancienne halle Pinault" in unescape(driver.page_source)
    with chromium_driver() as driver:
        _sign_in(driver, web, url, COPIL_ONLY)
        driver.get(f"{url}/t/grand-est-touraine/copil/{copil_id}")
        _shot(driver, "06-copil")
        digest = driver.find_element(By.ID, "synthese-copil").text
        late = digest.split("En retard", 1)[1].split("À risque", 1)[0]
        assert "FA-01" in late  # its other milestones are still late…
        assert MILESTONE not in late  # …but not the one the pilot marked done
        assert "Installation des démonstrateurs" in late


def test_copil_member_cannot_reach_a_write_form(live: tuple[Web, str], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    web, url = live
    with chromium_driver() as driver:
        _sign_in(driver, web, url, COPIL_ONLY)
        driver.get(url + "/t/grand-est-touraine/actions/FA-01")
        assert "Usine-témoin" in driver.page_source
        forms = driver.find_elements(By.CSS_SELECTOR, "main form[method=post]")
        assert forms == []
        assert driver.find_elements(By.ID, "note-texte") == []
        # Posting the form anyway, from the signed-in page (with its CSRF token): refused.
        token = driver.find_element(By.CSS_SELECTOR, "header input[name=csrf]").get_attribute(
            "value"
        )
        driver.execute_script(
            """const f = document.createElement('form'); f.method = 'post';
            f.action = '/t/grand-est-touraine/actions/FA-01/note';
            for (const [k, v] of [['csrf', arguments[0]], ['note', 'intrusion']]) {
              const i = document.createElement('input'); i.name = k; i.value = v;
              f.appendChild(i); }
            document.body.appendChild(f); f.submit();""",
            token,
        )
        assert "Accès refusé" in driver.find_element(By.TAG_NAME, "h1").text
        _shot(driver, "07-refus")
    with web.engine.connect() as conn:
        import sqlalchemy as sa

        assert conn.execute(sa.text("select count(*) from follow_up_note")).scalar_one() == 0
