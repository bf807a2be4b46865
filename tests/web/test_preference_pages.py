"""The coordinator sets a person's preferences on their request (the history says who), and a
person records their absence and delegate on « Mes préférences ». CSRF on every write. On
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from html import unescape

import pytest
from sqlmodel import col, select

from flows.usecases.bus import unit_of_work
from flows.usecases.preferences import choices_of
from models.preferences import (
    Category,
    Choice,
    Frequency,
    PersonAbsence,
    PersonAbsenceChange,
    PersonPreferenceChange,
)
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


def test_a_person_chooses_one_of_the_operators_channels_and_nothing_else(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIFLOW_NOTIFY_CONFIG", "canal-equipe=json://127.0.0.1:9/")
    client = sign_in(web, PILOT)
    page = client.get("/mes-preferences")
    assert '<option value="canal-equipe">canal-equipe</option>' in page.text
    form = {"categorie": "notices", "frequence": "immediately", "csrf": csrf_of(page.text)}
    saved = client.post("/mes-preferences", data=dict(form, canal="canal-equipe"))
    assert saved.status_code == 200, saved.text
    assert "tout de suite, sur le canal «\u00a0canal-equipe\u00a0»" in unescape(saved.text)
    forged = client.post("/mes-preferences", data=dict(form, canal="json://intrus.example/"))
    assert forged.status_code == 400 and "inconnu" in unescape(forged.text)
    with unit_of_work(web.engine) as uow:
        choice = choices_of(uow, person_id(web.engine, PILOT))[Category.NOTICES]
    assert choice.channel == "canal-equipe"


def test_a_person_shortens_then_cancels_an_absence_and_the_history_keeps_both(web: Web) -> None:
    client = sign_in(web, PILOT)
    page = client.get("/mes-preferences")
    absence = {"du": "2026-12-14", "au": "2026-12-24", "attendre": "oui"}
    client.post("/mes-preferences/absence", data=dict(absence, csrf=csrf_of(page.text)))
    with unit_of_work(web.engine) as uow:
        recorded = uow.session.exec(select(PersonAbsence.id)).one()
    end = f"/mes-preferences/absence/{recorded}/fin"
    page = client.get("/mes-preferences")
    assert f'action="{end}"' in page.text and "Du 14/12/2026 au 24/12/2026" in page.text
    shorter = client.post(end, data={"au": "2026-12-18", "csrf": csrf_of(page.text)})
    assert shorter.status_code == 200, shorter.text
    assert "écourtée au 18/12/2026" in unescape(shorter.text)
    assert "Du 14/12/2026 au 18/12/2026" in shorter.text
    longer = client.post(end, data={"au": "2026-12-30", "csrf": csrf_of(page.text)})
    assert longer.status_code == 400 and "pour la prolonger" in unescape(longer.text)
    assert client.post(end, data={"au": ""}).status_code == 403  # no CSRF token
    cancelled = client.post(end, data={"csrf": csrf_of(page.text)})
    assert "absence du 14/12/2026 au 18/12/2026 annulée" in unescape(cancelled.text)
    assert "Aucune absence à venir" in unescape(cancelled.text)
    other = sign_in(web, OTHER_PILOT)  # not hers: not found
    other_page = other.get("/mes-preferences")
    assert other.post(end, data={"csrf": csrf_of(other_page.text)}).status_code == 404
    with unit_of_work(web.engine) as uow:
        changes = uow.session.exec(
            select(PersonAbsenceChange.ends_on, PersonAbsenceChange.via).order_by(
                col(PersonAbsenceChange.id)
            )
        ).all()
    assert [tuple(c) for c in changes] == [(date(2026, 12, 18), "web"), (None, "web")]


def test_the_coordinator_reaches_a_persons_page_from_the_people_list_and_cancels_an_absence(
    web: Web,
) -> None:
    client = sign_in(web, COORDINATOR)
    plan = client.get("/t/grand-est-touraine/plan")
    assert 'href="/t/grand-est-touraine/personnes"' in plan.text  # the navigation
    people = client.get("/t/grand-est-touraine/personnes")
    assert people.status_code == 200, people.text
    pilot = person_id(web.engine, PILOT)
    link = f"/t/grand-est-touraine/personnes/{pilot}/preferences"
    assert f'href="{link}"' in people.text
    assert "Préférences et absences de Hélène Garnier" in unescape(people.text)
    with unit_of_work(web.engine) as uow:
        uow.session.add(
            PersonAbsence(
                person_id=pilot,
                starts_on=date(2026, 12, 14),
                ends_on=date(2026, 12, 24),
                hold=True,
                actor="Hélène Garnier",
            )
        )
        uow.commit()
        absence_id = uow.session.exec(select(PersonAbsence.id)).one()
    page = client.get(link)
    end = f"/t/grand-est-touraine/personnes/{pilot}/absences/{absence_id}/fin"
    assert f'action="{end}"' in page.text
    done = client.post(end, data={"csrf": csrf_of(page.text)})
    assert done.status_code == 200 and "Aucune absence à venir" in unescape(done.text)
    with unit_of_work(web.engine) as uow:
        actor = uow.session.exec(select(PersonAbsenceChange.actor)).one()
    assert actor == "Claire Moreau (à la demande de Hélène Garnier)"
    pilot_client = sign_in(web, PILOT)  # a pilot has no « Personnes » page
    assert pilot_client.get("/t/grand-est-touraine/personnes").status_code == 403
