"""`tiflow preferences voir|regler|absence|fin-absence`, in French, on both databases."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import select

from flows.usecases.bus import unit_of_work
from models.preferences import PersonAbsence, PersonAbsenceChange, PersonPreferenceChange
from tests.cli.conftest import Tiflow

HELENE = "helene.garnier@aicr.example"
KARIM = "karim.haddad@cc-tev.example"


def test_the_coordinator_sets_a_weekly_summary_on_request_and_the_history_says_who(
    tiflow: Tiflow, engine: Engine, example_plan: str
) -> None:
    result = tiflow(
        "preferences", "regler", HELENE, "rappels", "hebdomadaire",
        "--jour", "vendredi", "--heure", "9", "--par", "Claire Moreau",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Hélène Garnier : rappels d'échéance → une fois par semaine, le vendredi à 9 h" in (
        result.stdout
    )
    shown = tiflow("preferences", "voir", HELENE)
    assert shown.exit_code == 0, shown.output
    assert "une fois par semaine, le vendredi à 9 h" in shown.stdout
    assert "budget consolidé" in shown.stdout and "tout de suite" in shown.stdout
    table = PersonPreferenceChange.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        (row,) = conn.execute(sa.select(table.c.actor, table.c.via)).all()
    assert tuple(row) == ("Claire Moreau", "cli")


def test_bad_input_is_refused_in_french_naming_the_field_and_nothing_is_written(
    tiflow: Tiflow, engine: Engine, example_plan: str
) -> None:
    weekly = tiflow("preferences", "regler", HELENE, "rappels", "hebdomadaire")
    assert weekly.exit_code == 1
    assert "une fois par semaine, il faut choisir le jour" in weekly.output
    unknown = tiflow("preferences", "regler", HELENE, "rappels", "souvent")
    assert unknown.exit_code == 1 and "Fréquence « souvent » inconnue" in unknown.output
    nobody = tiflow("preferences", "voir", "personne@inconnue.example")
    assert nobody.exit_code == 1 and "Personne inconnue" in nobody.output
    backwards = tiflow("preferences", "absence", HELENE, "--du", "07/03/2025", "--au", "03/03/2025")
    assert backwards.exit_code == 1 and "la date de retour (au) doit suivre" in backwards.output
    with engine.connect() as conn:
        for table in (PersonPreferenceChange, PersonAbsence):
            count = sa.select(sa.func.count()).select_from(table.__table__)  # type: ignore[attr-defined]
            assert conn.execute(count).scalar_one() == 0


def test_an_absence_with_a_delegate_is_recorded_and_shown(
    tiflow: Tiflow, example_plan: str
) -> None:
    result = tiflow(
        "preferences", "absence", HELENE, "--du", "03/03/2030", "--au", "07/03/2030",
        "--suppleant", KARIM,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "absence du 03/03/2030 au 07/03/2030, rappels à Karim Haddad" in result.stdout
    shown = tiflow("preferences", "voir", HELENE)
    assert "Absence du 03/03/2030 au 07/03/2030 : rappels à Karim Haddad" in shown.stdout


def test_the_calendar_command_prints_a_private_url_and_revokes_it(
    tiflow: Tiflow, example_plan: str
) -> None:
    made = tiflow("preferences", "calendrier", HELENE)
    assert made.exit_code == 0, made.output
    assert "Calendrier de Hélène Garnier (à garder secret)" in made.stdout
    (url,) = [w for w in made.stdout.split() if "/calendrier/" in w]
    assert url.startswith("http://127.0.0.1:8000/calendrier/") and url.endswith(".ics")
    revoked = tiflow("preferences", "calendrier", HELENE, "--revoquer")
    assert revoked.exit_code == 0, revoked.output
    assert "Hélène Garnier : 1 calendrier révoqué." in revoked.stdout


def test_an_absence_is_cancelled_or_shortened_and_the_history_says_who(
    tiflow: Tiflow, example_plan: str, engine: Engine
) -> None:
    tiflow("preferences", "absence", HELENE, "--du", "03/03/2030", "--au", "14/03/2030")
    shortened = tiflow(
        "preferences", "fin-absence", HELENE, "--au", "07/03/2030", "--par", "Claire"
    )
    assert shortened.exit_code == 0, shortened.output
    assert "absence du 03/03/2030 au 14/03/2030 écourtée au 07/03/2030" in shortened.stdout
    assert "Absence du 03/03/2030 au 07/03/2030" in tiflow("preferences", "voir", HELENE).stdout
    longer = tiflow("preferences", "fin-absence", HELENE, "--au", "20/03/2030")
    assert longer.exit_code == 1 and "pour la prolonger" in longer.output
    cancelled = tiflow("preferences", "fin-absence", HELENE, "--du", "03/03/2030")
    assert "absence du 03/03/2030 au 07/03/2030 annulée" in cancelled.stdout
    assert "Absence du" not in tiflow("preferences", "voir", HELENE).stdout
    none_left = tiflow("preferences", "fin-absence", HELENE)
    assert none_left.exit_code == 1 and "aucune absence en cours ou à venir" in none_left.output
    with unit_of_work(engine) as uow:
        changes = uow.session.exec(select(PersonAbsenceChange)).all()
        assert [(c.actor, c.via, c.ends_on) for c in changes] == [
            ("Claire", "cli", date(2030, 3, 7)),
            ("ligne de commande", "cli", None),
        ]
