"""The budget pages (SQLite and PostgreSQL): the territory's versions listed, their workbook and
CSV downloaded, two versions compared with the differences marked; a consolidation asked for
without a Prefect server says so in French. (Started through Prefect:
tests/web/test_runs_pages.py.)"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from flows.usecases.budget.consolidation import consolidate
from flows.usecases.budget.snapshots import store_snapshot
from flows.usecases.bus import unit_of_work
from models.tables import BudgetLine
from notifications.fr import format_eur
from tests.web.conftest import COPIL_ONLY, ONLY_COORDINATOR, Web, csrf_of, sign_in
from tiflow.web.pilot import today

HOME = "grand-est-touraine"
YEAR = 2024


def snapshot(web: Web) -> None:
    with unit_of_work(web.engine) as uow:
        figures = consolidate(uow, YEAR, HOME, as_of=date(YEAR, 6, 30))
    store_snapshot(lambda: unit_of_work(web.engine), figures)


def two_versions(web: Web) -> Decimal:
    """Version 1, then FA-01's first budget line of the year raised by 5 000 €, version 2."""
    snapshot(web)
    with unit_of_work(web.engine) as uow:
        action = uow.repo.action(HOME, "FA-01")
        line = uow.session.exec(
            select(BudgetLine).where(BudgetLine.action_id == action.id, BudgetLine.year == YEAR)
        ).first()
        assert line is not None
        line.amount += Decimal("5000.00")
        uow.session.add(line)
        uow.commit()
    snapshot(web)
    return Decimal("5000.00")


@pytest.fixture(autouse=True)
def no_prefect() -> Iterator[None]:
    """No Prefect server configured, even if the session's harness runs (and no `tiflow
    serve` recorded in the test's data dir). The test client's requests inherit the setting."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        yield


def test_versions_are_listed_and_downloaded(web: Web) -> None:
    two_versions(web)
    client = sign_in(web, ONLY_COORDINATOR)
    listing = client.get(f"/t/{HOME}/budget")
    workbook = client.get(f"/t/{HOME}/budget/{YEAR}/v2.xlsx")
    table = client.get(f"/t/{HOME}/budget/{YEAR}/v1.csv")
    missing = client.get(f"/t/{HOME}/budget/{YEAR}/v9.xlsx")

    assert listing.status_code == 200
    assert f"/budget/{YEAR}/v1.xlsx" in listing.text and f"/budget/{YEAR}/v2.csv" in listing.text
    assert "avec la version 1" in listing.text
    assert workbook.status_code == 200 and "attachment" in workbook.headers["content-disposition"]
    assert "Par axe" in load_workbook(io.BytesIO(workbook.content)).sheetnames
    assert table.content.decode("utf-8-sig").startswith("Vue;Territoire")
    assert missing.status_code == 404 and "version 9" in missing.text


def test_two_versions_compared_per_axis_and_action_with_the_differences_marked(web: Web) -> None:
    raised = two_versions(web)
    client = sign_in(web, ONLY_COORDINATOR)
    page = client.get(f"/t/{HOME}/budget/{YEAR}/comparer", params={"de": "1", "a": "2"})

    assert page.status_code == 200
    assert "Par axe" in page.text and "Par action" in page.text
    assert page.text.count('class="changed"') >= 3  # the total, FA-01's axis, FA-01
    assert "+" + format_eur(raised) in page.text
    assert "modifiée" in page.text


def test_a_copil_member_reads_the_versions_but_starts_nothing(web: Web) -> None:
    snapshot(web)
    client = sign_in(web, COPIL_ONLY)
    listing = client.get(f"/t/{HOME}/budget")
    assert listing.status_code == 200 and f"/budget/{YEAR}/v1.xlsx" in listing.text
    assert "form-consolider" not in listing.text
    token = csrf_of(listing.text)
    refused = client.post(f"/t/{HOME}/budget/consolider", data={"csrf": token, "annee": "2024"})
    assert refused.status_code == 403


def test_consolidation_without_a_prefect_server_is_explained_in_french(web: Web) -> None:
    client = sign_in(web, ONLY_COORDINATOR)
    listing = client.get(f"/t/{HOME}/budget")
    assert "Aucun serveur Prefect" in listing.text
    assert f"tiflow run budget {today().year} --territoire {HOME}" in listing.text

    sent = client.post(
        f"/t/{HOME}/budget/consolider",
        data={"csrf": csrf_of(listing.text), "annee": "2024"},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    after = client.get(sent.headers["location"])
    assert "La consolidation n" in after.text and "Aucun serveur Prefect" in after.text
    assert "Traceback" not in after.text


def test_a_year_that_is_not_one_is_refused_in_french(web: Web) -> None:
    client = sign_in(web, ONLY_COORDINATOR)
    listing = client.get(f"/t/{HOME}/budget")
    sent = client.post(
        f"/t/{HOME}/budget/consolider",
        data={"csrf": csrf_of(listing.text), "annee": "deux mille", "au": "31/02/2024"},
    )
    assert sent.status_code == 400
    assert "Année budgétaire\u00a0: nombre entier attendu" in sent.text
    assert "Date de situation" in sent.text
