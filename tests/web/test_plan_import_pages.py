"""Import and export of the plan on the web (coordinator), SQLite and PostgreSQL: the plan
exported, edited as a coordinator would, uploaded; with errors nothing is written and every
error is listed with its sheet, row and column; the same file corrected imports, once
confirmed, exactly as previewed."""

from __future__ import annotations

import io
import re

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from openpyxl import load_workbook
from sqlmodel import select

from flows.usecases.bus import unit_of_work
from models.tables import ActionSheet
from tests.web.conftest import ONLY_COORDINATOR, ONLY_PILOT, Web, csrf_of, sign_in
from tiflow.web import uploads

HOME = "grand-est-touraine"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NEW_TITLE = "Plateforme RH partagée du Grand Est Touraine"


def titles(web: Web) -> dict[str, str]:
    with unit_of_work(web.engine) as uow:
        home = uow.repo.territory(HOME)
        actions = select(ActionSheet).where(ActionSheet.territory_id == home.id)
        return {a.number: a.title for a in uow.session.exec(actions).all()}


def edited_plan(client: TestClient, **cells: str) -> bytes:
    """The exported plan with cells of FA-01's row in « Actions » changed: header → value."""
    exported = client.get(f"/t/{HOME}/export/plan.xlsx")
    assert exported.status_code == 200
    assert exported.headers["content-type"] == XLSX
    workbook = load_workbook(io.BytesIO(exported.content))
    sheet = workbook["Actions"]
    headers = [c.value for c in sheet[1]]
    row = next(r for r in sheet.iter_rows(min_row=2) if r[0].value == "FA-01")
    for header, value in cells.items():
        row[headers.index(header)].value = value
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def upload(client: TestClient, data: bytes, name: str = "plan.xlsx") -> Response:
    form = client.get(f"/t/{HOME}/import")
    assert form.status_code == 200
    return client.post(
        f"/t/{HOME}/import",
        data={"csrf": csrf_of(form.text)},
        files={"fichier": (name, data, XLSX)},
        follow_redirects=False,
    )


def test_workbook_with_errors_writes_nothing_and_the_corrected_file_imports(web: Web) -> None:
    client = sign_in(web, ONLY_COORDINATOR)
    before = titles(web)
    wrong = edited_plan(
        client, **{"Intitulé": NEW_TITLE, "Début": "31/02/2024", "Pilote (e-mail)": "x@y.example"}
    )

    sent = upload(client, wrong)
    assert sent.status_code == 303
    preview = client.get(sent.headers["location"])

    assert preview.status_code == 200
    assert "Import impossible\u00a0: 2 erreurs" in preview.text
    assert re.search(
        r"Feuille «\u00a0Actions\u00a0», ligne \d+, colonne «\u00a0Début\u00a0»", preview.text
    )
    assert re.search(
        r"Feuille «\u00a0Actions\u00a0», ligne \d+, colonne «\u00a0Pilote \(e-mail\)\u00a0»",
        preview.text,
    )
    assert "Confirmer l'import" not in preview.text
    assert titles(web) == before

    corrected = edited_plan(client, **{"Intitulé": NEW_TITLE})
    sent = upload(client, corrected)
    preview = client.get(sent.headers["location"])
    assert "1 modifiée" in preview.text and "Rien n'a été enregistré" not in preview.text
    assert titles(web) == before  # a dry run

    confirmed = client.post(
        sent.headers["location"],
        data={"csrf": csrf_of(preview.text), "empreinte": _fingerprint(preview.text)},
        follow_redirects=False,
    )
    assert confirmed.status_code == 303
    assert titles(web) == {**before, "FA-01": NEW_TITLE}
    done = client.get(confirmed.headers["location"])
    assert "Import enregistré dans le territoire" in done.text
    assert "Confirmer l'import" not in done.text


def _fingerprint(html: str) -> str:
    found = re.search(r'name="empreinte" value="([0-9a-f]{64})"', html)
    assert found, "the preview has no confirmation form"
    return found.group(1)


def test_confirmation_imports_only_the_previewed_file(web: Web) -> None:
    client = sign_in(web, ONLY_COORDINATOR)
    before = titles(web)
    sent = upload(client, edited_plan(client, **{"Intitulé": NEW_TITLE}))
    preview = client.get(sent.headers["location"])
    csrf = csrf_of(preview.text)

    other_hash = client.post(sent.headers["location"], data={"csrf": csrf, "empreinte": "0" * 64})
    unknown = client.post(
        f"/t/{HOME}/import/{'A' * 43}", data={"csrf": csrf, "empreinte": _fingerprint(preview.text)}
    )
    no_csrf = client.post(sent.headers["location"], data={"empreinte": _fingerprint(preview.text)})

    assert other_hash.status_code == 409
    assert "Le fichier confirmé" in other_hash.text
    assert unknown.status_code == 404 and "déposez-le à nouveau" in unknown.text
    assert no_csrf.status_code == 403
    assert titles(web) == before


def test_upload_needs_the_csrf_token_and_a_spreadsheet(web: Web) -> None:
    client = sign_in(web, ONLY_COORDINATOR)
    no_csrf = client.post(
        f"/t/{HOME}/import", data={}, files={"fichier": ("plan.xlsx", b"PK", XLSX)}
    )
    wrong_kind = upload(client, b"%PDF-1.7", name="plan.pdf")
    not_a_zip = upload(client, b"this is no workbook")

    elsewhere = client.post(
        f"/t/{HOME}/actions/FA-01/note",
        data={"csrf": csrf_of(client.get(f"/t/{HOME}/import").text), "note": "Point d'étape"},
        files={"fichier": ("plan.xlsx", b"PK", XLSX)},
    )
    anonymous = web.client().post(
        f"/t/{HOME}/import", files={"fichier": ("plan.xlsx", b"PK", XLSX)}
    )

    assert no_csrf.status_code == 403
    assert elsewhere.status_code == 400  # only the upload route takes a file
    assert anonymous.status_code == 403
    assert wrong_kind.status_code == 400
    assert "ni un classeur Excel (.xlsx) ni un fichier CSV" in wrong_kind.text
    refused = client.get(not_a_zip.headers["location"])
    assert "Import impossible\u00a0: 1 erreur" in refused.text
    assert "Rien n'a été enregistré" in refused.text


def test_upload_beyond_the_size_limit_is_refused_before_it_is_read(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = sign_in(web, ONLY_COORDINATOR)
    monkeypatch.setattr(uploads, "UPLOAD_MAX_BYTES", 10_000)
    refused = upload(client, b"x" * 20_000)
    assert refused.status_code == 413
    assert "Fichier trop volumineux" in refused.text
    assert not list((web.settings.settings.data_dir / "imports").glob("*.xlsx"))


def test_template_and_plan_downloads(web: Web) -> None:
    client = sign_in(web, ONLY_COORDINATOR)
    template = client.get(f"/t/{HOME}/export/modele.xlsx")
    plan_csv = client.get(f"/t/{HOME}/export/plan.csv")
    unknown = client.get(f"/t/{HOME}/export/plan.exe")

    assert template.status_code == 200
    assert "attachment" in template.headers["content-disposition"]
    assert "Actions" in load_workbook(io.BytesIO(template.content)).sheetnames
    assert plan_csv.status_code == 200 and "FA-01" in plan_csv.content.decode("utf-8-sig")
    assert unknown.status_code == 404


def test_a_pilot_neither_imports_nor_exports(web: Web) -> None:
    client = sign_in(web, ONLY_PILOT)
    assert client.get(f"/t/{HOME}/import").status_code == 403
    assert client.get(f"/t/{HOME}/export/plan.xlsx").status_code == 403
    assert "Import et export" not in client.get(f"/t/{HOME}/mes-actions").text
