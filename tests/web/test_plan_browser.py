"""Real browsers (Debian's Chromium): two coordinators edit the same sheet, the second save gets
the conflict and the history has one change; a coordinator creates a draft and proposes it;
a coordinator uploads a workbook with errors, then the corrected one, and imports it.

Two drivers for the whole module (two browser sessions), cookies cleared between tests."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from flows.usecases.bus import unit_of_work
from models.lifecycle import State
from models.tables import ActionChange, BudgetLine, CopilAgendaItem
from tests.browser import chromium_driver, free_port, page_text, serve
from tests.web.conftest import ONLY_COORDINATOR, Web, eml_links, sign_in
from tests.web.test_browser import _submit as _click
from tests.web.test_plan_import_pages import HOME, NEW_TITLE, edited_plan, titles
from tiflow.web.app import create_app

EDIT = "/t/grand-est-touraine/actions/FA-01/modifier"


@pytest.fixture(scope="module")
def browsers() -> Iterator[tuple[Any, Any]]:
    with chromium_driver() as first, chromium_driver() as second:
        yield first, second


@pytest.fixture
def live(web: Web, browsers: tuple[Any, Any]) -> Iterator[tuple[Web, str, Any, Any]]:
    port = free_port()
    settings = replace(web.settings, base_url=f"http://127.0.0.1:{port}")
    with serve(create_app(settings, web.engine), port) as url:
        for driver in browsers:
            driver.get(url + "/health")
            driver.delete_all_cookies()  # a fresh session per test
        yield web, url, *browsers


def _submit(driver: Any, button: str) -> str:
    """Click, wait until the next page has fully loaded, return its messages."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _click(driver, button)
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )
    return " ".join(a.text for a in driver.find_elements(By.CSS_SELECTOR, "main .alert"))


def _sign_in(driver: Any, web: Web, url: str, address: str) -> None:
    """Ask for a link in the browser, open the new one from its .eml, confirm."""
    from selenium.webdriver.common.by import By

    before = len(eml_links(web.outbox, address))
    driver.get(url + "/connexion")
    driver.find_element(By.ID, "email").send_keys(address)
    _submit(driver, "main form button[type=submit]")
    deadline = time.monotonic() + 30
    while len(links := eml_links(web.outbox, address)) == before:
        assert time.monotonic() < deadline, f"no new sign-in e-mail for {address}"
        time.sleep(0.1)
    driver.get(links[-1])
    _submit(driver, "#confirmer")
    assert driver.current_url == url + "/"


def _type(driver: Any, element_id: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)


def test_second_browser_saving_a_stale_sheet_gets_the_conflict(
    live: tuple[Web, str, Any, Any],
) -> None:
    from selenium.webdriver.common.by import By

    web, url, first, second = live
    for driver in (first, second):
        _sign_in(driver, web, url, ONLY_COORDINATOR)
        driver.get(url + EDIT)
    _type(first, "titre", "Usine-témoin (version de Lucie)")
    assert "Enregistré" in _submit(first, "#enregistrer")
    _type(second, "titre", "Usine-témoin (version du second onglet)")
    message = _submit(second, "#enregistrer")
    assert "Conflit de mise à jour sur l'action FA-01" in message
    assert "Rien n'a été enregistré" in message
    # The current values are in the form, what was typed is listed, nothing overwritten.
    assert second.find_element(By.ID, "titre").get_attribute("value") == (
        "Usine-témoin (version de Lucie)"
    )
    assert "Usine-témoin (version du second onglet)" in message
    with unit_of_work(web.engine) as uow:
        action = uow.repo.action("grand-est-touraine", "FA-01")
        assert action.title == "Usine-témoin (version de Lucie)"
        changes = uow.session.exec(
            select(ActionChange.summary).where(ActionChange.action_id == action.id)
        ).all()
    assert changes == ["Fiche modifiée : intitulé."]


def test_coordinator_creates_a_draft_and_proposes_it(live: tuple[Web, str, Any, Any]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    web, url, driver, _ = live
    _sign_in(driver, web, url, ONLY_COORDINATOR)
    driver.get(url + "/t/grand-est-touraine/tableau-de-bord")
    assert driver.find_elements(By.CSS_SELECTOR, "main svg")  # the charts are drawn
    _submit(driver, "main a[href$='/nouvelle-action']")
    _type(driver, "titre", "Navette des salariés de la zone")
    Select(driver.find_element(By.ID, "axe")).select_by_value("foncier")
    driver.find_element(By.NAME, "budget_annee_0").send_keys("2025")
    driver.find_element(By.NAME, "budget_montant_0").send_keys("12 500,50 €")
    assert "Enregistré" in _submit(driver, "#enregistrer")
    number = driver.current_url.split("/actions/")[1].split("?")[0]
    assert "brouillon" in driver.find_element(By.ID, "fiche").find_element(By.XPATH, "..").text
    assert "Enregistré" in _submit(driver, "#proposer")
    assert "proposée" in driver.find_element(By.CSS_SELECTOR, "ol.history").text
    with unit_of_work(web.engine) as uow:
        action = uow.repo.action("grand-est-touraine", number)
        assert action.state is State.PROPOSED
        amount = uow.session.exec(
            select(BudgetLine.amount).where(BudgetLine.action_id == action.id)
        ).one()
        agenda = uow.session.exec(
            select(CopilAgendaItem).where(CopilAgendaItem.action_id == action.id)
        ).all()
    assert str(amount) == "12500.50" and len(agenda) == 1


def test_coordinator_uploads_a_workbook_with_errors_then_the_corrected_one(
    live: tuple[Web, str, Any, Any], tmp_path: Path
) -> None:
    """Issue 16: the workbook upload in a real browser (a file chosen in the file input)."""
    from selenium.webdriver.common.by import By

    web, url, driver, _ = live
    maker = sign_in(web, ONLY_COORDINATOR)  # exports the plan the coordinator then edits
    wrong, corrected = tmp_path / "plan-erreurs.xlsx", tmp_path / "plan-corrige.xlsx"
    wrong.write_bytes(
        edited_plan(
            maker,
            **{"Intitulé": NEW_TITLE, "Début": "31/02/2024", "Pilote (e-mail)": "x@y.example"},
        )
    )
    corrected.write_bytes(edited_plan(maker, **{"Intitulé": NEW_TITLE}))
    before = titles(web)
    _sign_in(driver, web, url, ONLY_COORDINATOR)

    driver.get(url + f"/t/{HOME}/import")
    driver.find_element(By.ID, "fichier").send_keys(str(wrong))
    assert "Rien n'a été enregistré" in _submit(driver, "#form-import button[type=submit]")
    text = page_text(driver)
    assert "Import impossible : 2 erreurs" in " ".join(text.split())
    for column in ("Début", "Pilote \\(e-mail\\)"):
        assert re.search(rf"Feuille\s«\sActions\s»,\sligne\s\d+,\scolonne\s«\s{column}\s»", text)
    assert not driver.find_elements(By.ID, "form-confirmer")
    assert titles(web) == before

    driver.get(url + f"/t/{HOME}/import")
    driver.find_element(By.ID, "fichier").send_keys(str(corrected))
    _submit(driver, "#form-import button[type=submit]")
    assert "1 modifiée" in page_text(driver) and titles(web) == before  # a dry run
    assert "Import enregistré dans le territoire" in _submit(
        driver, "#form-confirmer button[type=submit]"
    )
    assert titles(web) == {**before, "FA-01": NEW_TITLE}
