"""The runs page and the budget's consolidation against a real Prefect server (the session's
test harness), on which tiflow's deployments are registered as `tiflow serve` registers them —
without their schedules and triggers, and with no worker: a run started from a page stays
« Planifiée », which is what the pages must show. (Without a server: test_budget_pages.py and
test_runs_without_prefect below.)"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest
from sqlmodel import select

from flows.usecases.bus import unit_of_work
from models.tables import CopilMeeting
from tests.web.conftest import ONLY_COORDINATOR, OTHER_CODE, Web, csrf_of, sign_in
from tiflow.prefect_server import recorded_local_server
from tiflow.web import prefect_link

HOME = "grand-est-touraine"


@pytest.fixture(scope="module")
def prefect_api(prefect_harness: None) -> str:
    """The harness's API, with the deployments of prefect.yaml that a page may start."""
    from prefect.settings import PREFECT_API_URL

    for item in prefect_link.startable().values():
        item.flow.to_deployment(
            name=item.name, parameters=item.spec.parameters, tags=item.spec.tags
        ).apply()
    return str(PREFECT_API_URL.value())


@pytest.fixture
def served(web: Web, prefect_api: str) -> Iterator[str]:
    """The web app finds the server as it finds a running `tiflow serve`'s."""
    with recorded_local_server(web.settings.settings.data_dir, prefect_api):
        yield prefect_api


def run_parameters(run_id: str) -> dict[str, object]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return dict(client.read_flow_run(UUID(run_id)).parameters)


def test_a_flow_started_with_its_french_form_shows_in_the_recent_runs(
    web: Web, served: str
) -> None:
    client = sign_in(web, ONLY_COORDINATOR)
    listing = client.get(f"/t/{HOME}/executions")
    assert "Planifier un COPIL" in listing.text and "Consolider le budget annuel" in listing.text
    assert f'href="{served.removesuffix("/api")}"' in listing.text  # Prefect's UI
    form = client.get(f"/t/{HOME}/executions/planifier-un-copil")
    assert "Date et heure" in form.text and "Membres (e-mails)" in form.text
    assert f"{HOME} <span" in form.text  # the territory is this one, not a field

    sent = client.post(
        f"/t/{HOME}/executions/planifier-un-copil",
        data={
            "csrf": csrf_of(form.text),
            "meeting.held_at": "2030-09-16T09:30",
            "meeting.place": "Hôtel de ville d'Amboise",
            "meeting.members": "helene.garnier@aicr.example\n",
        },
        follow_redirects=False,
    )

    assert sent.status_code == 303
    run_id = sent.headers["location"].split("execution=")[1]
    assert run_parameters(run_id)["meeting"] == {
        "territory": HOME,
        "held_at": "2030-09-16T09:30:00",
        "place": "Hôtel de ville d'Amboise",
        "members": ["helene.garnier@aicr.example"],
        "recorded_by": "",
    }
    page = client.get(sent.headers["location"])
    assert "Flux lancé" in page.text
    assert f"/runs/flow-run/{run_id}" in page.text
    row = page.text.split(f"/runs/flow-run/{run_id}", 2)[2].split("</tr>")[0]
    assert "Planifier un COPIL" in row and "Planifiée" in row


def test_a_refused_form_says_why_in_french_and_starts_nothing(web: Web, served: str) -> None:
    client = sign_in(web, ONLY_COORDINATOR)
    form = client.get(f"/t/{HOME}/executions/tenir-un-copil")
    with unit_of_work(web.engine) as uow:
        other = uow.repo.territory(OTHER_CODE)
        foreign = uow.session.exec(
            select(CopilMeeting.id).where(CopilMeeting.territory_id == other.id)
        ).one()

    bad_date = client.post(
        f"/t/{HOME}/executions/planifier-un-copil",
        data={"csrf": csrf_of(form.text), "meeting.held_at": "lundi prochain"},
    )
    not_ours = client.post(
        f"/t/{HOME}/executions/tenir-un-copil",
        data={
            "csrf": csrf_of(form.text),
            "decisions.copil_id": str(foreign),
            "decisions.decisions.0.number": "FA-01",
            "decisions.decisions.0.outcome": "ajournée",
        },
    )

    assert bad_date.status_code == 400
    assert "Date et heure\u00a0: date et heure attendues" in bad_date.text
    assert not_ours.status_code == 400
    assert f"COPIL n° {foreign} n" in not_ours.text and "Traceback" not in not_ours.text


def test_the_budget_is_consolidated_through_prefect_and_its_run_shows(
    web: Web, served: str
) -> None:
    client = sign_in(web, ONLY_COORDINATOR)
    listing = client.get(f"/t/{HOME}/budget")
    sent = client.post(
        f"/t/{HOME}/budget/consolider",
        data={"csrf": csrf_of(listing.text), "annee": "2024", "au": "30/06/2024"},
        follow_redirects=False,
    )

    assert sent.status_code == 303
    run_id = sent.headers["location"].split("execution=")[1]
    assert run_parameters(run_id)["params"] == {
        "year": 2024,
        "territory": HOME,
        "as_of": "2024-06-30",
        "scheduled": False,
    }
    page = client.get(sent.headers["location"])
    assert "Consolidation lancée" in page.text
    assert f"/runs/flow-run/{run_id}" in page.text and "Planifiée" in page.text


def test_runs_without_prefect(web: Web) -> None:
    """No server configured nor recorded: the page says so in French, no traceback."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    client = sign_in(web, ONLY_COORDINATOR)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        page = client.get(f"/t/{HOME}/executions")
        form = client.get(f"/t/{HOME}/executions/suivre-l-avancement")
        sent = client.post(
            f"/t/{HOME}/executions/demarrer-une-action",
            data={"csrf": csrf_of(form.text), "action.number": "FA-03"},
            follow_redirects=False,
        )
        after = client.get(sent.headers["location"])
        forms = {n: client.get(f"/t/{HOME}/executions/{n}") for n in prefect_link.startable()}
    assert "Jalons franchis" in form.text and "Aucun serveur Prefect" in form.text
    assert {n: f.status_code for n, f in forms.items()} == dict.fromkeys(forms, 200)
    assert "Ligne de budget" in forms["proposer-une-action"].text or "Montant" in (
        forms["proposer-une-action"].text
    )
    assert sent.status_code == 303 and "Le flux n" in after.text
    assert page.status_code == 200
    assert "Aucun serveur Prefect" in page.text and "Traceback" not in page.text
