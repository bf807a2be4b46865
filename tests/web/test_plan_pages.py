"""The coordinator's plan pages: the dashboard and its charts, editing a sheet through the use
cases with optimistic locking, recording funding, proposing; and the pilot's « dossier
déposé » form (issue 15)."""

from __future__ import annotations

import io
import re
from datetime import date
from decimal import Decimal
from html import unescape

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import select

from flows.usecases import charts
from flows.usecases.bus import unit_of_work
from models.lifecycle import State
from models.tables import (
    ActionChange,
    ActionSheet,
    BudgetLine,
    CopilAgendaItem,
    Funding,
    Indicator,
    Milestone,
)
from notifications import charts as drawing
from tests.web.conftest import COPIL_ONLY, ONLY_COORDINATOR, ONLY_PILOT, Web, csrf_of, sign_in

HOME = "/t/grand-est-touraine"
FA01 = HOME + "/actions/FA-01"


def _form(client: TestClient, path: str) -> dict[str, str]:
    """The fields of the page's sheet form as the browser would send them."""
    html = client.get(path).text
    fields: dict[str, str] = {}
    for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html):
        fields.setdefault(name, unescape(value))
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', body)
        first = re.search(r'<option value="([^"]*)"', body)
        fields[name] = unescape((chosen or first).group(1)) if (chosen or first) else ""  # type: ignore[union-attr]
    for name, body in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', html, re.S):
        fields[name] = unescape(body)
    fields.pop("ferme", None)
    if re.search(r'name="ferme"[^>]*checked', html):
        fields["ferme"] = "1"
    return fields


def _changes(web: Web, number: str) -> list[str]:
    with unit_of_work(web.engine) as uow:
        action = uow.repo.action("grand-est-touraine", number)
        return list(
            uow.session.exec(
                select(ActionChange.summary).where(ActionChange.action_id == action.id)
            ).all()
        )


def test_dashboard_shows_counts_late_next_copil_and_charts_with_their_figures(web: Web) -> None:
    client = sign_in(web, ONLY_COORDINATOR)
    page = client.get(HOME + "/tableau-de-bord?annee=2024")
    assert page.status_code == 200
    text = unescape(page.text)
    assert "Actions par axe et par état" in text and "brouillon" in text
    assert "En retard" in text and "jalon «\u00a0Choix du site et du bâtiment\u00a0»" in text
    assert "Prochain COPIL" in text and "COPIL du" in text
    for title in ("Budget 2024 par axe", "Financements 2024 par financeur", "Jalons 2024"):
        assert title in text
    assert text.count("<svg") == 3 and "<script" not in text
    # Patterns and figures as text, and the same figures in the table beside the chart.
    assert 'fill="url(#budget-par-axe-motif-1)"' in text
    with unit_of_work(web.engine) as uow:
        budget = charts.plan_charts(uow.session, "grand-est-touraine", 2024)[0]
    first = f"{budget.series[0].label}\u00a0: {budget.text(budget.values[0][0])}"
    assert first in text  # the figure on the bar
    assert f'<td class="num">{budget.text(budget.values[0][0])}</td>' in text  # and in the table
    assert "Télécharger le graphique (PNG)" in text


def test_chart_png_is_the_same_chart_drawn_by_pillow(web: Web) -> None:
    client = sign_in(web, COPIL_ONLY)
    got = client.get(HOME + "/tableau-de-bord/jalons.png?annee=2024")
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert got.content[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    image = Image.open(io.BytesIO(got.content))
    assert image.size[0] == drawing.WIDTH * drawing.SCALE
    assert len(image.convert("L").getcolors(256) or []) > 2  # drawn, not blank
    assert client.get(HOME + "/tableau-de-bord/inconnu.png").status_code == 404


def test_charts_svg_for_the_copil_dossier(web: Web) -> None:
    with unit_of_work(web.engine) as uow:
        drawn = charts.charts_svg(uow.session, "grand-est-touraine", 2024, date(2024, 12, 1))
        budget = charts.plan_charts(uow.session, "grand-est-touraine", 2024, date(2024, 12, 1))[0]
    assert [slug for slug, _, _ in drawn] == [
        "budget-par-axe",
        "financement-par-financeur",
        "jalons",
    ]
    assert all(svg.startswith("<svg") and "<script" not in svg for _, _, svg in drawn)
    # The figures are the budget consolidation's (models/figures.py labels).
    assert [s.label for s in budget.series] == ["Prévu", "Accordé", "Versé"]
    with unit_of_work(web.engine) as uow:
        planned_2024 = sum(
            uow.session.exec(select(BudgetLine.amount).where(BudgetLine.year == 2024)).all(),
            Decimal(0),
        )
    assert sum(row[0] for row in budget.values) == planned_2024


def test_coordinator_creates_a_draft_with_french_amounts_and_proposes_it(web: Web) -> None:
    client = sign_in(web, ONLY_COORDINATOR)
    form = _form(client, HOME + "/nouvelle-action")
    form.update(
        titre="Navette des salariés de la zone",
        axe="foncier",
        debut="01/03/2025",
        fin="31/12/2025",
        budget_annee_0="2025",
        budget_nature_0="fonctionnement",
        budget_montant_0="12 500,50 €",
        jalon_titre_0="Appel d'offres",
        jalon_date_0="15/04/2025",
        indicateur_nom_0="Salariés transportés",
        indicateur_cible_0="120",
        indicateur_unite_0="personnes",
    )
    done = client.post(HOME + "/nouvelle-action", data=form, follow_redirects=False)
    assert done.status_code == 303, unescape(done.text)
    number = done.headers["location"].split("/actions/")[1].split("?")[0]
    with unit_of_work(web.engine) as uow:
        action = uow.repo.action("grand-est-touraine", number)
        assert action.state is State.DRAFT
        amount = uow.session.exec(
            select(BudgetLine.amount).where(BudgetLine.action_id == action.id)
        ).one()
    assert amount == Decimal("12500.50")
    assert _changes(web, number) == ["Fiche créée (brouillon)."]
    page = client.get(done.headers["location"])
    version = _form(client, f"{HOME}/actions/{number}/modifier")["version"]
    proposed = client.post(
        f"{HOME}/actions/{number}/proposer",
        data={"csrf": csrf_of(page.text), "version": version},
        follow_redirects=False,
    )
    assert proposed.status_code == 303
    with unit_of_work(web.engine) as uow:
        action = uow.repo.action("grand-est-touraine", number)
        assert action.state is State.PROPOSED
        on_agenda = uow.session.exec(
            select(CopilAgendaItem).where(CopilAgendaItem.action_id == action.id)
        ).all()
    assert len(on_agenda) == 1


def test_bad_input_names_the_field_and_writes_nothing(web: Web) -> None:
    client = sign_in(web, ONLY_COORDINATOR)
    form = _form(client, FA01 + "/modifier")
    form.update(budget_montant_0="12 50", jalon_date_0="31/02/2024", axe="")
    got = client.post(FA01 + "/modifier", data=form)
    assert got.status_code == 422
    text = unescape(got.text)
    assert "Budget, ligne 1, montant\u00a0: nombre illisible «\u00a012 50\u00a0»" in text
    assert "Jalon 1, échéance\u00a0: date inexistante" in text
    assert "Axe\u00a0: choisissez" in text
    assert _changes(web, "FA-01") == []


def test_edit_keeps_done_milestones_and_writes_one_history_row(web: Web) -> None:
    with unit_of_work(web.engine) as uow:
        first = uow.session.exec(
            select(Milestone).where(Milestone.title == "Choix du site et du bâtiment")
        ).one()
        first.done_on = date(2024, 4, 20)
        uow.session.add(first)
        uow.commit()
    client = sign_in(web, ONLY_COORDINATOR)
    form = _form(client, FA01 + "/modifier")
    form.update(titre="Usine-témoin de l'industrie du futur (Amboise)", jalon_date_1="20/11/2024")
    form.update(indicateur_cible_0="75")
    assert client.post(FA01 + "/modifier", data=form, follow_redirects=False).status_code == 303
    with unit_of_work(web.engine) as uow:
        kept = uow.session.get_one(Milestone, first.id)
        action = uow.repo.action("grand-est-touraine", "FA-01")
        target = uow.session.exec(
            select(Indicator.target).where(Indicator.action_id == action.id)
        ).one()
        assert kept.done_on == date(2024, 4, 20)
        assert action.title.endswith("(Amboise)") and target == Decimal(75)
    assert _changes(web, "FA-01") == ["Fiche modifiée : intitulé, jalons, indicateurs."]


def test_stale_form_gets_the_conflict_and_the_current_values(web: Web) -> None:
    first, second = sign_in(web, ONLY_COORDINATOR), sign_in(web, ONLY_COORDINATOR)
    mine, theirs = _form(first, FA01 + "/modifier"), _form(second, FA01 + "/modifier")
    mine["titre"] = "Usine-témoin (première version)"
    theirs["titre"] = "Usine-témoin (seconde version)"
    assert first.post(FA01 + "/modifier", data=mine, follow_redirects=False).status_code == 303
    got = second.post(FA01 + "/modifier", data=theirs)
    assert got.status_code == 409
    text = unescape(got.text)
    assert "Conflit de mise à jour sur l'action FA-01" in text and "Rien n'a été enregistré" in text
    assert 'value="Usine-témoin (première version)"' in text  # the current values
    assert "Usine-témoin (seconde version)" in text  # and what they typed, not saved
    with unit_of_work(web.engine) as uow:
        assert uow.repo.action("grand-est-touraine", "FA-01").title.endswith("(première version)")
    assert _changes(web, "FA-01") == ["Fiche modifiée : intitulé."]
    # The conflict form carries the current version: saving it again works.
    again = _form(second, FA01 + "/modifier")
    again["titre"] = "Usine-témoin (seconde version)"
    assert second.post(FA01 + "/modifier", data=again, follow_redirects=False).status_code == 303


def test_funding_row_goes_through_the_funding_use_case(web: Web) -> None:
    client = sign_in(web, ONLY_COORDINATOR)
    page = client.get(FA01)
    version = _form(client, FA01 + "/modifier")["version"]
    data = {
        "csrf": csrf_of(page.text),
        "version": version,
        "financeur": "Région",
        "annee": "2024",
        "accorde": "150 000,00 €",
        "decision_le": "12/06/2024",
    }
    assert client.post(FA01 + "/financement", data=data, follow_redirects=False).status_code == 303
    with unit_of_work(web.engine) as uow:
        action = uow.repo.action("grand-est-touraine", "FA-01")
        granted = uow.session.exec(
            select(Funding.granted).where(Funding.action_id == action.id, Funding.year == 2024)
        ).all()
    assert Decimal("150000.00") in granted
    # The same (now stale) form again: the conflict, nothing written twice.
    data["accorde"] = "1 000,00 €"
    got = client.post(FA01 + "/financement", data=data)
    assert got.status_code == 409 and "Conflit de mise à jour" in unescape(got.text)
    assert len(_changes(web, "FA-01")) == 1


def test_pages_are_typeset_as_the_e_mails_but_not_their_form_values(web: Web) -> None:
    title = "Usine « témoin » : étape 2 ?"
    description = "Pourquoi : « vite » ; et après !"
    with unit_of_work(web.engine) as uow:
        action = uow.repo.action("grand-est-touraine", "FA-01")
        action.title, action.description = title, description
        uow.session.add(action)
        uow.commit()
    client = sign_in(web, ONLY_COORDINATOR)
    sheet = client.get(FA01)
    typeset = "Usine «\u00a0témoin\u00a0»\u00a0: étape 2\u202f?"
    assert f"<h1>FA-01 — {typeset}</h1>" in sheet.text
    assert f"<title>FA-01 {typeset} — tiflow</title>" in sheet.text
    assert "Pourquoi\u00a0: «\u00a0vite\u00a0»\u202f; et après\u202f!" in sheet.text
    # What the form sends back is what was stored: attributes and textareas are not typeset.
    form = _form(client, FA01 + "/modifier")
    assert form["titre"] == title and form["description"] == description


def test_sheet_of_a_proposed_action_cannot_be_edited(web: Web) -> None:
    with unit_of_work(web.engine) as uow:
        action = uow.repo.action("grand-est-touraine", "FA-02")
        action.state = State.PROPOSED
        uow.session.add(action)
        uow.commit()
    client = sign_in(web, ONLY_COORDINATOR)
    form = _form(client, HOME + "/actions/FA-02/modifier")
    form["titre"] = "Autre intitulé"
    got = client.post(HOME + "/actions/FA-02/modifier", data=form)
    assert got.status_code == 422
    assert (
        "L'action FA-02 est «\u00a0proposée\u00a0»\u00a0: sa fiche ne se modifie qu'à l'état"
        in unescape(got.text)
    )


def test_pilot_signals_a_dossier_filed_through_the_funding_use_case(web: Web) -> None:
    with unit_of_work(web.engine) as uow:
        action = uow.repo.action("grand-est-touraine", "FA-01")
        line = uow.session.exec(
            select(Funding).where(Funding.action_id == action.id).order_by(Funding.id)
        ).first()
        assert line is not None
        line.dossier_due = date(2024, 3, 15)
        uow.session.add(line)
        uow.commit()
        line_id = line.id
    client = sign_in(web, ONLY_PILOT)
    page = client.get(FA01)
    assert 'id="dossier"' in page.text
    data = {"csrf": csrf_of(page.text), "financement": str(line_id), "depose_le": "02/03/2024"}
    done = client.post(FA01 + "/dossier", data=data, follow_redirects=False)
    assert done.status_code == 303
    with unit_of_work(web.engine) as uow:
        assert uow.session.get_one(Funding, line_id).dossier_filed_on == date(2024, 3, 2)
    assert "déposé le" in unescape(client.get(done.headers["location"]).text)
    # A funding row of another action is refused, nothing written.
    with web.engine.connect() as conn:
        other = conn.execute(
            sa.select(Funding.id)  # type: ignore[call-overload]
            .join(ActionSheet, ActionSheet.id == Funding.action_id)  # type: ignore[arg-type]
            .where(ActionSheet.number == "FA-02")
        ).first()[0]
    data["financement"] = str(other)
    got = client.post(FA01 + "/dossier", data=data)
    assert got.status_code == 422
    assert "n'est pas une demande de l'action" in unescape(got.text)
