"""The coordinator sets a person's preferences on their request (the history says who), and a
person records their absence and delegate on « Mes préférences ». CSRF on every write. On
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from html import unescape

from sqlmodel import col, select

from flows.usecases.bus import unit_of_work
from flows.usecases.preferences import choices_of
from models.preferences import Category, Choice, Frequency, PersonAbsence, PersonPreferenceChange
from tests.web.conftest import (
    COORDINATOR,
    OTHER_COORDINATOR,
    OTHER_PILOT,
    PILOT,
    Web,
    csrf_of,
    person_id,
    sign_in,
)


def test_the_coordinator_sets_a_persons_preference_and_the_history_names_her(web: Web) -> None:
    pilot = person_id(web.engine, PILOT)
    path = f"/t/grand-est-touraine/personnes/{pilot}/preferences"
    client = sign_in(web, COORDINATOR)
    page = client.get(path)
    assert page.status_code == 200, page.text
    assert "Préférences d'envoi de Hélène Garnier" in unescape(page.text)
    assert "Aucun changement" in page.text
    form = {"categorie": "deadlines", "frequence": "weekly", "jour": "2", "heure": "10"}
    saved = client.post(path, data=dict(form, csrf=csrf_of(page.text)))
    assert saved.status_code == 200, saved.text  # after the redirect to the page
    assert "C'est enregistré" in unescape(saved.text)
    assert "une fois par semaine, le mercredi à 10 h" in unescape(saved.text)
    assert "Claire Moreau (à la demande de Hélène Garnier)" in unescape(
        saved.text
    )  # the history table
    with unit_of_work(web.engine) as uow:
        assert choices_of(uow, pilot)[Category.DEADLINES] == Choice(Frequency.WEEKLY, 2, 10)
        change = uow.session.exec(select(PersonPreferenceChange)).one()
        assert (change.actor, change.via) == (
            "Claire Moreau (à la demande de Hélène Garnier)",
            "web",
        )

    forged = client.post(path, data=dict(form, frequence="never"))
    assert forged.status_code == 403  # no CSRF token
    bad = client.post(path, data=dict(form, heure="27", csrf=csrf_of(page.text)))
    assert bad.status_code == 400 and "l'heure d'envoi va de 0 à 23" in unescape(bad.text)
    with unit_of_work(web.engine) as uow:
        assert choices_of(uow, pilot)[Category.DEADLINES].frequency is Frequency.WEEKLY


def test_a_person_of_another_territory_is_not_found_from_this_territory(web: Web) -> None:
    stranger = person_id(web.engine, OTHER_PILOT)
    client = sign_in(web, COORDINATOR)
    page = client.get(f"/t/grand-est-touraine/personnes/{stranger}/preferences")
    assert page.status_code == 404
    other = sign_in(web, OTHER_COORDINATOR)
    pilot = person_id(web.engine, PILOT)
    assert other.get(f"/t/grand-est-touraine/personnes/{pilot}/preferences").status_code == 404


def test_a_person_records_an_absence_with_a_delegate_or_waiting_for_the_return(web: Web) -> None:
    client = sign_in(web, PILOT)
    page = client.get("/mes-preferences")
    assert 'id="form-absence"' in page.text
    absence = {"du": "2026-12-14", "au": "2026-12-24", "suppleant": COORDINATOR}
    saved = client.post("/mes-preferences/absence", data=dict(absence, csrf=csrf_of(page.text)))
    assert saved.status_code == 200, saved.text
    assert "absence du 14/12/2026 au 24/12/2026, rappels à Claire Moreau" in unescape(saved.text)
    waiting = dict(absence, du="2027-01-04", au="2027-01-08", attendre="oui")
    held = client.post("/mes-preferences/absence", data=dict(waiting, csrf=csrf_of(page.text)))
    assert "rappels gardés jusqu'au retour" in unescape(held.text)

    backwards = dict(absence, du="2026-12-24", au="2026-12-14", csrf=csrf_of(page.text))
    refused = client.post("/mes-preferences/absence", data=backwards)
    assert refused.status_code == 400 and "la date de retour (au) doit suivre" in unescape(
        refused.text
    )
    unknown = dict(absence, suppleant="personne@inconnue.example", csrf=csrf_of(page.text))
    refused = client.post("/mes-preferences/absence", data=unknown)
    assert (
        refused.status_code == 400
        and "suppléant «\u00a0personne@inconnue.example\u00a0»" in unescape(refused.text)
    )
    assert client.post("/mes-preferences/absence", data=absence).status_code == 403  # no CSRF

    with unit_of_work(web.engine) as uow:
        rows = uow.session.exec(select(PersonAbsence).order_by(col(PersonAbsence.id))).all()
        found = [(r.starts_on, r.ends_on, r.delegate_id is not None, r.hold) for r in rows]
    assert found == [
        (date(2026, 12, 14), date(2026, 12, 24), True, False),
        (date(2027, 1, 4), date(2027, 1, 8), True, True),
    ]
