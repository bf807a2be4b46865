"""The « Préférences » sheet: preferences exported, imported through the preferences use case
(history « import »), checked row by row in French with nothing half-written, dry run included
(SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from flows.usecases.preferences import choices_of, set_preference
from models.errors import InvalidInput
from models.preferences import (
    Category,
    Choice,
    Frequency,
    PersonPreference,
    PersonPreferenceChange,
)
from models.tables import Person
from models.uow import UnitOfWork
from tiflow.spreadsheet import export_plan, import_plan, plan_from_database
from tiflow.spreadsheet.importing import Change

UowFactory = Callable[[], UnitOfWork]
HEADER = ["E-mail", "Type de message", "Fréquence", "Jour", "Heure"]
ROUX = "isabelle.roux@uimm-touraine.example"
HADDAD = "karim.haddad@cc-tev.example"
TYPE_PROBLEM = (
    "Type de message « tout » inconnu : écrivez avis, budget, copil, décisions, rappels,"
    " relances, synthèses, échéances"
)


def _person(u: UnitOfWork, email: str) -> Person:
    return u.session.exec(select(Person).where(Person.email == email)).one()


def _history(u: UnitOfWork) -> list[tuple[str, str, str]]:
    rows = u.session.exec(select(PersonPreferenceChange).order_by(PersonPreferenceChange.id)).all()  # type: ignore[arg-type]
    return [(str(r.category), r.via, r.actor) for r in rows]


def test_sheet_rows_become_preferences_through_the_use_case_and_reimporting_is_a_no_op(
    uow: UowFactory, example_plan: str, write_workbook: Callable[..., Path]
) -> None:
    path = write_workbook(
        {
            "Préférences": [
                HEADER,
                [ROUX, "rappels d'échéance", "hebdomadaire", "Vendredi", 9],
                [ROUX, "relances", "jamais", None, None],
                [HADDAD, "synthèses avant COPIL", "une fois par jour", None, "18 h"],
            ]
        }
    )
    with uow() as u:
        report = import_plan(u, path)
        u.commit()

    assert [(c.label, c.change, c.details) for c in report.changes] == [
        (
            "Isabelle Roux : rappels d'échéance",
            Change.UPDATED,
            ["une fois par semaine, le vendredi à 9 h"],
        ),
        ("Isabelle Roux : « Où en êtes-vous ? »", Change.UPDATED, ["jamais"]),
        ("Karim Haddad : synthèses avant COPIL", Change.UPDATED, ["une fois par jour, à 18 h"]),
    ]
    assert report.summary() == "3 préférences (3 modifiées)"
    with uow() as u:
        roux = choices_of(u, _person(u, ROUX).id)  # type: ignore[arg-type]
        assert roux[Category.DEADLINES] == Choice(Frequency.WEEKLY, 4, 9)
        assert roux[Category.NUDGES].frequency is Frequency.NEVER
        assert roux[Category.DIGESTS] == Choice()  # no row: unchanged default
        haddad = choices_of(u, _person(u, HADDAD).id)  # type: ignore[arg-type]
        assert haddad[Category.DIGESTS] == Choice(Frequency.DAILY, None, 18)
        actor = "import du fichier « plan.xlsx »"
        assert _history(u) == [
            ("deadlines", "import", actor),
            ("nudges", "import", actor),
            ("digests", "import", actor),
        ]

    with uow() as u:
        again = import_plan(u, path)
        u.commit()
    assert not again.changed
    assert again.summary() == "3 préférences (3 inchangées)"
    with uow() as u:
        assert len(_history(u)) == 3


def test_bad_rows_are_reported_with_sheet_row_and_column_and_nothing_is_written(
    uow: UowFactory, example_plan: str, write_workbook: Callable[..., Path]
) -> None:
    path = write_workbook(
        {
            "Préférences": [
                HEADER,
                [ROUX, "rappels d'échéance", "quotidien", None, 7],  # good, yet not written
                ["personne@inconnue.example", "budget", "jamais", None, None],
                [HADDAD, "rappels", "hebdomadaire", None, 9],
                [HADDAD, "budget", "parfois", None, None],
                [HADDAD, "avis", "quotidien", None, 25],
                [HADDAD, "tout", "jamais", None, None],
                [HADDAD, "copil", "immédiat", "jeudi", None],  # a day that is not needed
                [ROUX, "échéances", "jamais", None, None],
            ]
        }
    )
    with uow() as u, pytest.raises(InvalidInput) as raised:
        import_plan(u, path)
    where = "Feuille « Préférences », ligne"
    assert raised.value.problems == [
        f"{where} 3, colonne « E-mail » : personne « personne@inconnue.example » absente de la"
        " feuille Personnes et de la base",
        f"{where} 4, colonne « Jour » : une fois par semaine : indiquez le jour (lundi … dimanche)",
        f"{where} 5, colonne « Fréquence » : Fréquence « parfois » inconnue : écrivez immédiat,"
        " quotidien, hebdomadaire ou jamais",
        f"{where} 6, colonne « Heure » : heure invalide « 25 » (attendu de 0 à 23, par exemple 9)",
        f"{where} 7, colonne « Type de message » : " + TYPE_PROBLEM,
        f"{where} 9, colonne « Type de message » : préférence « rappels d'échéance » de"
        f" {ROUX} en double (déjà ligne 2)",
    ]
    with uow() as u:
        assert u.session.exec(select(PersonPreference)).all() == []
        assert _history(u) == []


def test_dry_run_reports_the_preference_changes_and_writes_nothing(
    uow: UowFactory, example_plan: str, write_workbook: Callable[..., Path]
) -> None:
    path = write_workbook({"Préférences": [HEADER, [ROUX, "budget", "jamais", None, None]]})
    with uow() as u:  # a dry run is an import whose unit of work is not committed
        report = import_plan(u, path)
    assert [(c.key, c.change) for c in report.changes] == [(f"{ROUX} budget", Change.UPDATED)]
    with uow() as u:
        assert u.session.exec(select(PersonPreference)).all() == []
        assert _history(u) == []


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_exported_preferences_come_back_identical_in_an_empty_database(
    uow: UowFactory, example_plan: str, fresh_engine: Engine, tmp_path: Path, suffix: str
) -> None:
    with uow() as u:
        roux, haddad = _person(u, ROUX), _person(u, HADDAD)
        weekly = Choice(Frequency.WEEKLY, 6, 20)
        set_preference(u, roux, Category.DEADLINES, weekly, actor="Isabelle Roux", via="web")
        never = Choice(Frequency.NEVER)
        set_preference(u, roux, Category.BUDGET, never, actor="Isabelle Roux", via="web")
        daily = Choice(Frequency.DAILY, None, 7)
        set_preference(u, haddad, Category.NOTICES, daily, actor="Claire Moreau", via="web")
        u.commit()
    path = tmp_path / f"plan{suffix}"
    with uow() as u:
        export_plan(u, example_plan, path)
        original = plan_from_database(u, example_plan)
    assert original.preferences is not None and len(original.preferences) == 3

    with UnitOfWork(fresh_engine) as u:
        import_plan(u, path)
        u.commit()
    with UnitOfWork(fresh_engine) as u:
        copy = plan_from_database(u, example_plan)
        assert copy.preferences == original.preferences
        assert choices_of(u, _person(u, ROUX).id)[Category.DEADLINES] == weekly  # type: ignore[arg-type]
        assert {via for _, via, _ in _history(u)} == {"import"}


@pytest.fixture
def team_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator configured one channel besides e-mail: « canal-equipe »."""
    monkeypatch.setenv("TIFLOW_NOTIFY_CONFIG", "canal-equipe=json://127.0.0.1:9/")


def test_the_canal_column_sets_a_configured_channel_and_an_empty_cell_keeps_the_stored_one(
    uow: UowFactory,
    example_plan: str,
    write_workbook: Callable[..., Path],
    team_channel: None,
) -> None:
    with uow() as u:  # Karim Haddad chose the team's channel for his notices, on the web
        on_channel = Choice(Frequency.IMMEDIATELY, None, 8, "canal-equipe")
        set_preference(u, _person(u, HADDAD), Category.NOTICES, on_channel, actor="K", via="web")
        u.commit()
    path = write_workbook(
        {
            "Préférences": [
                [*HEADER, "Canal"],
                [ROUX, "rappels d'échéance", "immédiat", None, None, "Canal-Equipe"],
                [ROUX, "budget", "jamais", None, None, "e-mail"],
                [HADDAD, "avis", "quotidien", None, 9, None],  # empty: his channel stays
            ]
        }
    )
    with uow() as u:
        import_plan(u, path)
        u.commit()
    with uow() as u:
        roux = choices_of(u, _person(u, ROUX).id)  # type: ignore[arg-type]
        assert roux[Category.DEADLINES].channel == "canal-equipe"
        assert roux[Category.BUDGET] == Choice(Frequency.NEVER, None, 8, "email")
        haddad = choices_of(u, _person(u, HADDAD).id)  # type: ignore[arg-type]
        assert haddad[Category.NOTICES] == Choice(Frequency.DAILY, None, 9, "canal-equipe")
        exported = plan_from_database(u, example_plan).preferences
    assert exported is not None
    assert {(r.email, r.category, r.channel) for r in exported} == {
        (ROUX, Category.DEADLINES, "canal-equipe"),
        (ROUX, Category.BUDGET, "email"),
        (HADDAD, Category.NOTICES, "canal-equipe"),
    }


def test_a_channel_the_operator_did_not_configure_is_refused_by_row_and_column(
    uow: UowFactory,
    example_plan: str,
    write_workbook: Callable[..., Path],
    team_channel: None,
) -> None:
    path = write_workbook(
        {
            "Préférences": [
                [*HEADER, "Canal"],
                [ROUX, "budget", "jamais", None, None, "canal-equipe"],  # good, yet not written
                [ROUX, "avis", "immédiat", None, None, "canal-secret"],
                [HADDAD, "avis", "immédiat", None, None, "https://evil.example/hook"],
            ]
        }
    )
    with uow() as u, pytest.raises(InvalidInput) as raised:
        import_plan(u, path)
    where = "Feuille « Préférences », ligne"
    assert raised.value.problems == [
        f"{where} 3, colonne « Canal » : canal « canal-secret » inconnu de l'exploitant"
        " (canaux possibles : e-mail, canal-equipe)",
        f"{where} 4, colonne « Canal » : canal invalide « https://evil.example/hook » (attendu"
        " « e-mail » ou « canal-… »)",
    ]
    with uow() as u:
        assert u.session.exec(select(PersonPreference)).all() == []
