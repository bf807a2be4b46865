"""Real browser (Debian's Chromium): the coordinator schedules a COPIL, previews its digest,
records the decisions — one refused by the lifecycle first (the French error names it and
nothing is written) —, downloads the PDF dossier (its pages rendered with pdftoppm are not
blank) and finds the decisions' notices in « Envois »."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.browser import chromium_driver, free_port, page_text, serve, wait_for_text
from tests.web.conftest import ONLY_COORDINATOR, Web
from tests.web.test_browser import _shot, _sign_in, _submit
from tests.web.test_copil_admin import HOME, _counts, _prepare
from tiflow.web.app import create_app


@pytest.fixture
def live(web: Web) -> Iterator[tuple[Web, str]]:
    port = free_port()
    settings = replace(web.settings, base_url=f"http://127.0.0.1:{port}")
    with serve(create_app(settings, web.engine), port) as url:
        yield web, url


def _downloaded(folder: Path, timeout: float = 60) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.glob("*.pdf") if p.stat().st_size > 0]
        if done:
            return done[0]
        time.sleep(0.2)
    raise AssertionError(f"no PDF downloaded into {folder}")


def _ink(png: Path) -> int:
    """Pixels that are not (nearly) white on a rendered page."""
    gray = Image.open(png).convert("L")
    return sum(n for value, n in enumerate(gray.histogram()) if value < 200)


def _decide(driver: Any, outcomes: dict[int, str]) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    for index, value in outcomes.items():
        Select(driver.find_element(By.ID, f"decision-{index}")).select_by_value(value)
    return _submit(driver, "#enregistrer-decisions")


def test_coordinator_takes_a_copil_from_agenda_to_record(
    live: tuple[Web, str], tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    web, url = live
    _prepare(web.engine)
    with chromium_driver() as driver:
        driver.execute_cdp_cmd(
            "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)}
        )
        _sign_in(driver, web, url, ONLY_COORDINATOR)
        driver.get(f"{url}/t/{HOME}/copil")
        _submit(driver, "#planifier-copil")
        driver.find_element(By.ID, "copil-date").send_keys("14/10/2030")
        driver.find_element(By.ID, "copil-heure").clear()
        driver.find_element(By.ID, "copil-heure").send_keys("14 h 30")
        driver.find_element(By.ID, "copil-lieu").send_keys("Mairie de Bléré")
        assert "COPIL planifié" in _submit(driver, "#planifier")
        _shot(driver, "10-copil-preparation")
        agenda = driver.find_element(By.ID, "ordre-du-jour").text
        assert all(n in agenda for n in ("FA-07", "FA-12", "FA-10"))
        days = driver.find_element(By.ID, "jours-envoi").text
        assert "J-10 : vendredi 4 octobre 2030" in days
        assert "J-3 : vendredi 11 octobre 2030" in days
        preview = driver.find_element(By.ID, "apercu-synthese").text
        assert "COPIL du lundi 14 octobre 2030 à 14 h 30 : ordre du jour et synthèse" in preview

        driver.find_element(By.ID, "dossier").click()
        pdf = _downloaded(tmp_path)
        subprocess.run(
            ["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True
        )
        pages = sorted(tmp_path.glob("page-*.png"))
        assert len(pages) == 5
        assert all(_ink(p) > 500 for p in pages), [_ink(p) for p in pages]

        _submit(driver, "#lien-decisions")
        driver.find_element(By.ID, "conditions-1").send_keys("Bilan à six mois")
        before = _counts(web.engine)
        errors = _decide(driver, {1: "validated", 2: "revision_requested", 3: "deferred"})
        _shot(driver, "11-copil-refus")
        assert "Rien n'a été enregistré" in errors
        assert "Décision n° 3 (FA-10) : Transition impossible pour l'action FA-10" in errors
        assert _counts(web.engine) == before
        assert "Décisions enregistrées" in _decide(driver, {3: "validated"})
        _shot(driver, "12-copil-releve")
        record = driver.find_element(By.ID, "table-decisions").text
        assert "Bilan à six mois" in record and "révision demandée" in record

        _submit(driver, "nav a[href$='/envois']")
        driver.get(f"{url}/t/{HOME}/envois?type=next-steps")
        text = wait_for_text(driver, "suite d'une validation", "FA-07", "FA-10")
        assert "Isabelle Roux" in text and "Nadia Benali" in text  # the two pilots
        driver.get(f"{url}/t/{HOME}/envois?action=FA-12")
        assert "révision demandée" in page_text(driver) and "FA-12" in page_text(driver)
        _shot(driver, "13-envois")
