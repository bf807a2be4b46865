"""One-click unsubscribe (RFC 8058): a plain POST of ``List-Unsubscribe=One-Click`` to the
signed link switches that one preference off without a sign-in; a GET changes nothing; a
forged or altered token opens nothing; and in a real browser the page offers never or a
weekly summary. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from flows.usecases.bus import unit_of_work
from flows.usecases.preferences import choices_of
from models.preferences import Category, Frequency, PersonPreferenceChange, unsubscribe_token
from tests.browser import chromium_driver, page_text
from tests.web.conftest import PILOT, SECRET, Web, csrf_of, person_id, sign_in
from tests.web.test_browser import live  # noqa: F401 (the served application)


def link(web: Web, category: Category = Category.DEADLINES) -> str:
    token = unsubscribe_token(SECRET, person_id(web.engine, PILOT), category)
    return f"/preferences/desabonnement/{token}"


def choice(web: Web, category: Category) -> Frequency:
    with unit_of_work(web.engine) as uow:
        return choices_of(uow, person_id(web.engine, PILOT))[category].frequency


def test_a_plain_one_click_post_switches_the_preference_off_without_sign_in(web: Web) -> None:
    client = web.client()
    answer = client.post(
        link(web),
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200, answer.text
    assert "rappels d'échéance → jamais" in answer.text
    assert choice(web, Category.DEADLINES) is Frequency.NEVER
    assert choice(web, Category.NUDGES) is Frequency.IMMEDIATELY  # that one change only
    table = PersonPreferenceChange.__table__  # type: ignore[attr-defined]
    with web.engine.connect() as conn:
        (row,) = conn.execute(sa.select(table.c.actor, table.c.via)).all()
    assert tuple(row) == ("Hélène Garnier", "désabonnement")


def test_opening_the_link_changes_nothing_and_a_forged_token_opens_nothing(web: Web) -> None:
    client = web.client()
    page = client.get(link(web, Category.DIGESTS))
    assert page.status_code == 200
    assert "synthèses avant COPIL" in page.text and "tout de suite" in page.text
    assert choice(web, Category.DIGESTS) is Frequency.IMMEDIATELY
    other = unsubscribe_token(b"another-secret-key-of-at-least-32-chars", 1, Category.DIGESTS)
    altered = link(web).replace("deadlines", "digests")
    for path in (f"/preferences/desabonnement/{other}", altered, "/preferences/desabonnement/x"):
        answer = client.post(
            path,
            content="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code == 404, path
    assert choice(web, Category.DIGESTS) is Frequency.IMMEDIATELY


def click_and_wait(driver: Any, button: str) -> str:
    """Click a form's button, wait for the next page, return its confirmation."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.ID, button).click()
    WebDriverWait(driver, 30).until(left_behind(old))
    return str(
        WebDriverWait(driver, 30).until(ec.presence_of_element_located((By.ID, "fait"))).text
    )


def left_behind(old: Any) -> Callable[[Any], bool]:
    """True once `old` belongs to a page the browser has left. Chromedriver says so either as a
    stale element or, when asked while the next page replaces it, as an inspector error that
    the node « does not belong to the document »: both mean the same."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    def gone(_driver: Any) -> bool:
        try:
            old.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as error:
            if "does not belong to the document" not in str(error):
                raise
            return True
        return False

    return gone


def test_in_a_real_browser_the_link_offers_never_or_a_weekly_summary(
    live: tuple[Web, str],  # noqa: F811 (the fixture imported above)
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    web, url = live
    with chromium_driver() as driver:
        driver.get(url + link(web))
        assert "vous recevez actuellement les rappels d'échéance\u00a0: tout de suite" in page_text(
            driver
        )
        Select(driver.find_element(By.ID, "frequence")).select_by_value("weekly")
        Select(driver.find_element(By.ID, "jour")).select_by_visible_text("vendredi")
        assert "une fois par semaine, le vendredi à 8 h" in click_and_wait(driver, "enregistrer")
        assert choice(web, Category.DEADLINES) is Frequency.WEEKLY
        assert "jamais" in click_and_wait(driver, "desabonner")
    assert choice(web, Category.DEADLINES) is Frequency.NEVER


def test_a_signed_in_person_sets_her_own_preferences_and_sees_what_cannot_be_switched_off(
    web: Web,
) -> None:
    client = sign_in(web, PILOT)
    page = client.get("/mes-preferences")
    assert page.status_code == 200
    assert "convocation au COPIL" in page.text and "alerte au chargé de mission" in page.text
    saved = client.post(
        "/mes-preferences",
        data={
            "csrf": csrf_of(page.text), "categorie": "nudges", "frequence": "weekly",
            "jour": "0", "heure": "9",
        },
    )  # fmt: skip
    assert saved.status_code == 200, saved.text
    assert (
        "«\u00a0Où en êtes-vous\u202f?\u00a0» → une fois par semaine, le lundi à 9 h" in saved.text
    )
    assert choice(web, Category.NUDGES) is Frequency.WEEKLY
    forged = client.post("/mes-preferences", data={"categorie": "nudges", "frequence": "never"})
    assert forged.status_code == 403  # no CSRF token
    assert choice(web, Category.NUDGES) is Frequency.WEEKLY
