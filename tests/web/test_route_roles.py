"""Generated from `tiflow.web.access.ROUTES`: every route × every role × own / other
territory is allowed or refused exactly as the table says, and a refusal leaks nothing.

The people have one role each (see conftest); "own" is Grand Est Touraine, "other" is the
Vallée de la Bresle. A pilot's write routes are tried on the action they pilot (FA-01) and on
one they do not (FA-02).
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select
from starlette.routing import Mount

from flows.usecases.budget.consolidation import consolidate
from flows.usecases.budget.snapshots import store_snapshot
from flows.usecases.bus import unit_of_work
from models.outbox import OutboxMessage, OutboxStatus
from models.preferences import PersonAbsence
from models.tables import ActionSheet, CopilMeeting, Funding, Indicator, Milestone, Territory
from models.uow import UnitOfWork
from models.vocabulary import Role
from tests.web.conftest import (
    COPIL_ONLY,
    NATIONAL,
    ONLY_COORDINATOR,
    ONLY_PILOT,
    OTHER_CODE,
    Web,
    csrf_of,
    sign_in,
)
from tiflow.spreadsheet import export_plan
from tiflow.web.access import ROUTES, Rule, Scope
from tiflow.web.app import create_app
from tiflow.web.uploads import Upload, keep

HOME = "grand-est-touraine"
PERSONA = {
    Role.COORDINATOR: ONLY_COORDINATOR,
    Role.PILOT: ONLY_PILOT,
    Role.COPIL_MEMBER: COPIL_ONLY,
    Role.NATIONAL_READER: NATIONAL,
}
# What a write form sends when it is allowed (each route's own fields).
SAMPLE_FORMS = {
    "progress_note": {"note": "Point d'étape : visite du site faite."},
    "progress_milestone": {"jalon": "{milestone}"},
    "progress_indicator": {"indicateur": "{indicator}", "valeur": "3"},
    "plan_upload": {},
    "plan_import_confirm": {"empreinte": "{upload_sha256}"},
    "budget_consolidate": {"annee": "2024"},
    "run_start": {},
    "progress_dossier": {"financement": "{funding}", "depose_le": "02/03/2024"},
    "action_create": {"titre": "Navette des salariés de la zone", "axe": "foncier"},
    "action_save": {  # the sheet as it is (its first milestone and indicator kept)
        "version": "{version}",
        "titre": "{title}",
        "axe": "{axis}",
        "pilote": "{pilot}",
        "jalon_titre_0": "{milestone}",
        "jalon_date_0": "2024-04-30",
        "indicateur_nom_0": "{indicator}",
        "indicateur_cible_0": "60",
    },
    "action_funding": {"version": "{version}", "financeur": "Région", "annee": "2024"},
    "action_propose": {"version": "{version}"},
    "mail_resend": {},
    "copil_decisions": {"budget": "1 250 000,00 €"},
    "copil_schedule": {"date": "15/09/2030", "heure": "9:30", "lieu": "Amboise"},
    "person_preferences_save": {"categorie": "budget", "frequence": "weekly", "jour": "4"},
    "person_absence_end": {},  # no new last day: cancel it
}
# Write routes that send a file (multipart), with their file field.
SAMPLE_FILES = {"plan_upload": "fichier"}


PUBLIC_SCOPES = (Scope.PUBLIC, Scope.SIGNED_IN)
GUARDED = {name: rule for name, rule in ROUTES.items() if rule.scope not in PUBLIC_SCOPES}


@dataclass(frozen=True)
class Target:
    path: str
    secret: str  # text of the target that must never appear in a refusal
    form: dict[str, str]


def test_every_route_of_the_application_is_in_the_table(web: Web) -> None:
    app = create_app(web.settings, web.engine)
    names = {r.name for r in app.routes if isinstance(r, Mount) or hasattr(r, "methods")}
    assert names - {"openapi", "swagger_ui_html", "redoc_html"} == set(ROUTES)
    assert set(SAMPLE_FORMS) == {n for n, r in GUARDED.items() if r.write}


def _target(web: Web, name: str, code: str, number: str) -> Target:
    with unit_of_work(web.engine) as uow:
        territory = uow.repo.territory(code)
        action = uow.repo.action(code, number)
        copil = uow.session.exec(  # the first: the one add_people scheduled
            select(CopilMeeting)
            .where(CopilMeeting.territory_id == territory.id)
            .order_by(col(CopilMeeting.id))
        ).first()
        assert copil is not None
        absence = _absence(uow, action.pilot_id)
        message_id = _failed_message(uow, territory)
        milestones = uow.session.exec(
            select(Milestone).where(Milestone.action_id == action.id).order_by(Milestone.id)
        ).all()
        indicators = uow.session.exec(
            select(Indicator).where(Indicator.action_id == action.id).order_by(Indicator.id)
        ).all()
        fill = {"milestone": milestones[0].title, "indicator": indicators[0].name}
        fill.update(_plan_fill(uow, action))
        names = (territory.name, action.title, action.id, copil.id, message_id)
        person_path = f"/t/{code}/personnes/{action.pilot_id}/preferences"
    territory_name, action_title, action_id, copil_id, message_id = names
    copil_path = f"/t/{code}/copil/{copil_id}"
    paths = {
        "my_actions": f"/t/{code}/mes-actions",
        "plan": f"/t/{code}/plan",
        "copils": f"/t/{code}/copil",
        "copil": f"/t/{code}/copil/{copil_id}",
        "action": f"/t/{code}/actions/{number}",
        "action_link": f"/action/{action_id}",
        "progress_note": f"/t/{code}/actions/{number}/note",
        "progress_milestone": f"/t/{code}/actions/{number}/jalon",
        "progress_indicator": f"/t/{code}/actions/{number}/indicateur",
        **_ops_paths(code),
        "progress_dossier": f"/t/{code}/actions/{number}/dossier",
        "dashboard": f"/t/{code}/tableau-de-bord",
        "dashboard_chart": f"/t/{code}/tableau-de-bord/budget-par-axe.png?annee=2024",
        "action_new": f"/t/{code}/nouvelle-action",
        "action_create": f"/t/{code}/nouvelle-action",
        "action_edit": f"/t/{code}/actions/{number}/modifier",
        "action_save": f"/t/{code}/actions/{number}/modifier",
        "action_funding": f"/t/{code}/actions/{number}/financement",
        "action_propose": f"/t/{code}/actions/{number}/proposer",
        "mail_list": f"/t/{code}/envois",
        "mail_message": f"/t/{code}/envois/{message_id}",
        "mail_resend": f"/t/{code}/envois/{message_id}/renvoyer",
        "copil_record": f"{copil_path}/releve",
        "copil_dossier": f"{copil_path}/dossier.pdf",
        "copil_prepare": f"{copil_path}/preparation",
        "copil_digest_html": f"{copil_path}/synthese.html",
        "copil_decisions_form": f"{copil_path}/decisions",
        "copil_new": f"/t/{code}/planifier-copil",
        "copil_decisions": f"{copil_path}/decisions",
        "copil_schedule": f"/t/{code}/planifier-copil",
        "person_preferences": person_path,
        "person_preferences_save": person_path,
        "person_absence_end": person_path.replace("preferences", f"absences/{absence}/fin"),
        "people": f"/t/{code}/personnes",
    }
    fill.update(upload_sha256=_ops_data(web, code)[1])
    form = {k: v.format(**fill) for k, v in SAMPLE_FORMS.get(name, {}).items()}
    paths[name] = paths[name].replace("{upload_token}", _ops_data(web, code)[0])
    by_territory = ("my_actions", "plan", "copils", "copil", "copil_new", "copil_schedule")
    by_territory += ("mail_list", "mail_message", "mail_resend", "people")
    secret = territory_name if name in by_territory or name.startswith("copil_") else action_title
    return Target(paths[name], secret, form)


def _ops_paths(code: str) -> dict[str, str]:
    """The coordinator's import, budget and runs pages (tiflow/web/imports.py…)."""
    return {
        "plan_import": f"/t/{code}/import",
        "plan_upload": f"/t/{code}/import",
        "plan_import_preview": f"/t/{code}/import/{{upload_token}}",
        "plan_import_confirm": f"/t/{code}/import/{{upload_token}}",
        "plan_export": f"/t/{code}/export/plan.xlsx",
        "plan_template": f"/t/{code}/export/modele.xlsx",
        "budget": f"/t/{code}/budget",
        "budget_file": f"/t/{code}/budget/2024/v1.xlsx",
        "budget_compare": f"/t/{code}/budget/2024/comparer",
        "budget_consolidate": f"/t/{code}/budget/consolider",
        "runs": f"/t/{code}/executions",
        "run_form": f"/t/{code}/executions/envoi-messages-en-attente",
        "run_start": f"/t/{code}/executions/envoi-messages-en-attente",
    }


_KEPT: dict[tuple[str, str], tuple[str, str]] = {}  # (data folder, code) → kept upload


def _ops_data(web: Web, code: str) -> tuple[str, str]:
    """A workbook of the territory's own plan kept for its preview: (token, SHA-256); and a
    first budget version of 2024."""
    folder = web.settings.settings.data_dir / "imports"
    key = (str(folder), code)
    if key not in _KEPT:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "plan.xlsx"
            with unit_of_work(web.engine) as uow:
                export_plan(uow, code, path)
            upload = Upload("plan.xlsx", path.read_bytes())
        token = keep(folder, code, upload, "test")
        with unit_of_work(web.engine) as uow:  # version 1 of the 2024 budget
            figures = consolidate(uow, 2024, code, as_of=date(2024, 6, 30))
        store_snapshot(lambda: unit_of_work(web.engine), figures)
        _KEPT[key] = (token, hashlib.sha256(upload.data).hexdigest())
    return _KEPT[key]


def _plan_fill(uow: UnitOfWork, action: ActionSheet) -> dict[str, str]:
    """The editing forms' values: the sheet's version and fields, one of its funding rows."""
    funding = uow.session.exec(
        select(Funding.id).where(Funding.action_id == action.id).order_by(Funding.id)
    ).first()
    pilot = uow.repo.person(action.pilot_id)
    return {
        "pilot": pilot.email if pilot else "",
        "version": str(action.version),
        "title": action.title,
        "axis": str(action.axis.value),
        "funding": str(funding or ""),
    }


def _absence(uow: UnitOfWork, person_id: int | None) -> int:
    """An absence to come of the action's pilot (what the coordinator may cancel)."""
    assert person_id is not None
    found = uow.session.exec(
        select(PersonAbsence.id).where(PersonAbsence.person_id == person_id)
    ).first()
    if found is not None:
        return found
    row = PersonAbsence(
        person_id=person_id,
        starts_on=date(2031, 3, 3),
        ends_on=date(2031, 3, 7),
        hold=True,
        actor="test",
    )
    uow.session.add(row)
    uow.commit()
    assert row.id is not None
    return row.id


def _failed_message(uow: UnitOfWork, territory: Territory) -> int:
    """A failed message of the territory (what « Envois » lists and may send again)."""
    found = uow.session.exec(
        select(OutboxMessage.id).where(OutboxMessage.key == f"test:failed:{territory.code}")
    ).first()
    if found is not None:
        return found
    row = OutboxMessage(
        key=f"test:failed:{territory.code}",
        address="absent@example.org",
        recipient="Absent <absent@example.org>",
        kind="reminder",
        tag="pilots",
        territory_id=territory.id,
        subject="Rappel",
        text_body="Bonjour",
        status=OutboxStatus.FAILED,
        last_error="destinataire refusé (réponse du serveur : 550)",
    )
    uow.session.add(row)
    uow.commit()
    assert row.id is not None
    return row.id


def expected(rule: Rule, role: Role, own_territory: bool, own_action: bool) -> int:
    """What the table says: 200 (or 303 after a write / the e-mail link), 403 or 404."""
    if not own_territory and role is not Role.NATIONAL_READER:
        return 404
    if role not in rule.roles:
        return 403
    if rule.write and role is Role.PILOT and not own_action:
        return 403
    if rule.write or rule.scope is Scope.ACTION_ID:
        return 303
    return 200


def _files(web: Web, name: str) -> dict[str, tuple[str, bytes, str]] | None:
    if name not in SAMPLE_FILES:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plan.xlsx"
        with unit_of_work(web.engine) as uow:
            export_plan(uow, HOME, path)
        return {SAMPLE_FILES[name]: ("plan.xlsx", path.read_bytes(), "application/octet-stream")}


CASES = [
    (name, role, own_territory, number)
    for name in GUARDED
    for role in Role
    for own_territory in (True, False)
    for number in (["FA-01", "FA-02"] if own_territory else ["FA-01"])
    if number == "FA-01" or GUARDED[name].scope in (Scope.ACTION, Scope.ACTION_ID)
]


def test_route_table_is_enforced_for_every_route_role_and_territory(web: Web) -> None:
    clients = {role: sign_in(web, address) for role, address in PERSONA.items()}
    pilots_own = {Role.PILOT: "FA-01"}
    failures = []
    for name, role, own_territory, number in CASES:
        rule = GUARDED[name]
        code = HOME if own_territory else OTHER_CODE
        target = _target(web, name, code, number)
        own_action = own_territory and pilots_own.get(role) == number
        want = expected(rule, role, own_territory, own_action)
        client = clients[role]
        if rule.write:
            page = client.get(f"/t/{HOME}/plan" if role is not Role.PILOT else "/")
            data = dict(target.form, csrf=csrf_of(page.text))
            files = _files(web, name)
            got = client.post(target.path, data=data, files=files, follow_redirects=False)
        else:
            got = client.get(target.path, follow_redirects=False)
        if got.status_code != want:
            failures.append(f"{name} {role} {code} {number}: {got.status_code}, expected {want}")
        if want in (403, 404) and target.secret in got.text:
            failures.append(f"{name} {role} {code} {number}: refusal shows « {target.secret} »")
    assert not failures, "\n".join(failures)
    assert len(CASES) > 50


def test_signed_out_visitor_is_sent_to_sign_in_and_cannot_write(web: Web) -> None:
    client: TestClient = web.client()
    for name in GUARDED:
        target = _target(web, name, HOME, "FA-01")
        if GUARDED[name].write:
            page = client.get("/connexion")
            data = dict(target.form, csrf=csrf_of(page.text))
            files = _files(web, name)
            assert client.post(target.path, data=data, files=files).status_code == 403, name
        else:
            got = client.get(target.path, follow_redirects=False)
            assert got.status_code == 303, name
            assert got.headers["location"].startswith("/connexion?suite="), name
            assert target.secret not in got.text


@pytest.mark.parametrize("role", list(Role))
def test_home_lists_only_the_territories_of_the_person(web: Web, role: Role) -> None:
    client = sign_in(web, PERSONA[role])
    page = client.get("/")
    assert page.status_code == 200
    with unit_of_work(web.engine) as uow:
        names = {t.code: t.name for t in uow.session.exec(select(Territory)).all()}
    assert names[HOME] in page.text
    assert (names[OTHER_CODE] in page.text) is (role is Role.NATIONAL_READER)
