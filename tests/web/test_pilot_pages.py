"""The pilot's pages: their actions, the action page, and progress forms through the use case
(history row with the signed-in person as actor; French errors next to the field; nothing
written on error)."""

from __future__ import annotations

from datetime import date
from html import unescape

import sqlalchemy as sa
from sqlmodel import select

from flows.usecases.bus import unit_of_work
from models.event_outbox import EventOutbox
from models.tables import ActionChange, FollowUpNote, Indicator, Milestone
from tests.web.conftest import ONLY_PILOT, Web, csrf_of, person_id, sign_in

ACTION = "/t/grand-est-touraine/actions/FA-01"


def _post(client, path: str, **data: str):  # type: ignore[no-untyped-def]
    page = client.get(ACTION)
    return client.post(path, data=dict(data, csrf=csrf_of(page.text)), follow_redirects=False)


def _counts(web: Web) -> tuple[int, int, int]:
    with web.engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(sa.text(f"select count(*) from {t}")).scalar_one()
            for t in ("follow_up_note", "action_change", "transition_record")
        )


def test_my_actions_lists_the_pilots_actions_only(web: Web) -> None:
    client = sign_in(web, ONLY_PILOT)
    page = client.get("/t/grand-est-touraine/mes-actions")
    assert page.status_code == 200
    assert "FA-01" in page.text and "Usine-témoin" in page.text
    assert "FA-02" not in page.text
    assert 'lang="fr"' in page.text
    assert "en retard de" in page.text  # the 2024 milestones are past


def test_note_from_the_form_is_written_by_the_signed_in_pilot(web: Web) -> None:
    client = sign_in(web, ONLY_PILOT)
    done = _post(client, ACTION + "/note", note="Le bâtiment est choisi : signature en mai.")
    assert done.status_code == 303
    with unit_of_work(web.engine) as uow:
        note = uow.session.exec(select(FollowUpNote.author_id)).one()
        change = uow.session.exec(select(ActionChange.actor, ActionChange.summary)).one()
    assert note == person_id(web.engine, ONLY_PILOT)
    assert tuple(change) == ("Bruno Caron", "Avancement : note de suivi ajoutée.")
    # Its Prefect event is in the event outbox, written with the change (the bus's unit of work).
    with unit_of_work(web.engine) as uow:
        events = uow.session.exec(
            select(EventOutbox.spec).where(EventOutbox.name == "tiflow.progress.reported")
        ).all()
    assert len(events) == 1 and '"actor": "Bruno Caron"' in events[0]
    page = client.get(done.headers["location"])
    assert "Le bâtiment est choisi" in page.text
    assert "Bruno Caron" in page.text and "note de suivi ajoutée" in page.text


def test_milestone_done_and_indicator_value_typed_the_french_way(web: Web) -> None:
    client = sign_in(web, ONLY_PILOT)
    assert (
        _post(client, ACTION + "/jalon", jalon="Choix du site et du bâtiment", fait_le="03/05/2024")
    ).status_code == 303
    assert (
        _post(client, ACTION + "/indicateur", indicateur="Entreprises accueillies", valeur="12,5")
    ).status_code == 303
    with unit_of_work(web.engine) as uow:
        done_on = uow.session.exec(
            select(Milestone.done_on).where(Milestone.title == "Choix du site et du bâtiment")
        ).one()
        actual = uow.session.exec(
            select(Indicator.actual).where(
                Indicator.name == "Entreprises accueillies",
                Indicator.action_id == uow.repo.action("grand-est-touraine", "FA-01").id,
            )
        ).one()
        changes = list(uow.session.exec(select(ActionChange.summary)).all())
    assert done_on == date(2024, 5, 3)
    assert str(actual) == "12.5"
    assert changes[0] == "Avancement : jalon « Choix du site et du bâtiment » fait le 03/05/2024."
    page = client.get(ACTION)
    assert "fait le vendredi 3 mai 2024" in page.text
    assert "12,5 entreprises" in page.text


def test_bad_input_shows_the_use_cases_french_message_and_writes_nothing(web: Web) -> None:
    client = sign_in(web, ONLY_PILOT)
    before = _counts(web)
    empty = _post(client, ACTION + "/note", note="   ")
    assert empty.status_code == 422
    assert "rien à enregistrer" in empty.text
    assert 'id="note-error"' in empty.text
    unknown = _post(client, ACTION + "/jalon", jalon="Jalon inventé")
    assert unknown.status_code == 422
    assert "«\u00a0Jalon inventé\u00a0» n'est pas un jalon de l'action FA-01" in unescape(
        unknown.text
    )
    bad_value = _post(
        client, ACTION + "/indicateur", indicateur="Entreprises accueillies", valeur="douze"
    )
    assert bad_value.status_code == 422
    assert "Valeur\u00a0: nombre illisible" in bad_value.text
    assert 'value="douze"' in bad_value.text  # what was typed is kept
    bad_date = _post(
        client, ACTION + "/jalon", jalon="Choix du site et du bâtiment", fait_le="31/02/2024"
    )
    assert bad_date.status_code == 422 and "date inexistante" in bad_date.text
    assert _counts(web) == before
    with unit_of_work(web.engine) as uow:
        assert set(uow.session.exec(select(Milestone.done_on)).all()) == {None}


def test_reading_roles_see_no_write_form(web: Web) -> None:
    from tests.web.conftest import COPIL_ONLY, NATIONAL

    for address in (COPIL_ONLY, NATIONAL):
        client = sign_in(web, address)
        page = client.get(ACTION)
        assert page.status_code == 200
        assert '<form method="post" action="/t/' not in page.text
    pilot = sign_in(web, ONLY_PILOT)
    assert 'id="form-note"' in pilot.get(ACTION).text
    assert 'id="form-note"' not in pilot.get("/t/grand-est-touraine/actions/FA-02").text


def test_plan_filters_by_axis_state_pilot_and_late(web: Web) -> None:
    client = sign_in(web, ONLY_PILOT)
    plan = "/t/grand-est-touraine/plan"
    everything = client.get(plan).text
    assert "FA-01" in everything and "FA-02" in everything
    skills = client.get(plan + "?axe=competences").text
    assert "FA-02" in skills and "Usine-témoin" not in skills
    mine = client.get(plan + f"?pilote={person_id(web.engine, ONLY_PILOT)}").text
    assert "FA-01" in mine and "Industry-lab" not in mine

    def row(html: str) -> str:
        return next(r for r in html.split("<tr") if '/actions/FA-01"' in r).split("</tr>")[0]

    # A filtered plan reads only its actions' deadlines: the same ones, late and upcoming.
    assert row(mine) == row(everything) and "en retard de" in row(mine)
    assert "Aucune action" in client.get(plan + "?etat=completed").text
    late = client.get(plan + "?retard=1").text
    assert "FA-01" in late
