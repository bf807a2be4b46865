"""Importing an action plan: all checked first, then all or nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, col, select

from models.errors import InvalidInput, TiflowError
from models.lifecycle import State
from models.tables import (
    ActionPartner,
    ActionSheet,
    BudgetLine,
    Funding,
    Indicator,
    Milestone,
    Organisation,
    Person,
    PersonRole,
    TransitionRecord,
)
from models.transitions import transition_action
from models.uow import UnitOfWork
from models.vocabulary import Axis, BudgetKind, Priority, Role
from tiflow.example import TERRITORY_CODE
from tiflow.spreadsheet import Change, export_plan, import_plan, write_template

Sheets = dict[str, list[list[object]]]
UowFactory = Callable[[], UnitOfWork]


def table_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in SQLModel.metadata.sorted_tables
        }


def action_versions(engine: Engine) -> dict[str, tuple[int, object]]:
    with UnitOfWork(engine) as u:
        return {a.number: (a.version, a.updated_at) for a in u.session.exec(select(ActionSheet))}


def run_import(uow: UowFactory, path: Path, **kwargs: object) -> object:
    with uow() as u:
        report = import_plan(u, path, **kwargs)  # type: ignore[arg-type]
        u.commit()
    return report


def test_valid_workbook_fills_an_empty_database(
    uow: UowFactory, write_workbook: Callable[..., Path], plan_sheets: Sheets
) -> None:
    report = run_import(uow, write_workbook(plan_sheets))

    assert report.summary() == (  # type: ignore[attr-defined]
        "1 territoire (1 créé) ; 3 organisations (3 créées) ; 2 personnes (2 créées) ;"
        " 3 actions (3 créées)"
    )
    with uow() as u:
        fa02 = u.repo.action(TERRITORY_CODE, "FA-02")
        pilot = u.repo.person(fa02.pilot_id)
        assert pilot is not None and pilot.email == "isabelle.roux@uimm-touraine.example"
        assert (fa02.axis, fa02.priority, fa02.firm_commitment) == (
            Axis.COMPETENCES,
            Priority.HIGH,
            True,
        )
        assert (fa02.start_date, fa02.end_date) == (date(2024, 3, 1), date(2025, 6, 30))
        assert fa02.state is State.DRAFT  # empty « État »: a new action starts as a draft
        partners = u.session.exec(
            select(Organisation.short_name)
            .join(ActionPartner, col(ActionPartner.organisation_id) == col(Organisation.id))
            .where(ActionPartner.action_id == fa02.id)
        ).all()
        assert sorted(p or "" for p in partners) == ["Région", "UIMM"]
        budget = {
            (b.year, b.kind): b.amount
            for b in u.session.exec(select(BudgetLine).where(BudgetLine.action_id == fa02.id))
        }
        assert budget == {
            (2024, BudgetKind.INVESTISSEMENT): Decimal("180000.00"),
            (2024, BudgetKind.FONCTIONNEMENT): Decimal("25000.50"),
        }
        (funding,) = u.session.exec(select(Funding).where(Funding.action_id == fa02.id)).all()
        assert (funding.requested, funding.granted, funding.paid) == (
            Decimal("120000.00"),
            Decimal("120000.00"),
            Decimal("60000.50"),
        )
        assert funding.decision_date == date(2024, 4, 12)
        assert funding.convention_ref == "CRCVL-2024-117"
        milestones = u.session.exec(
            select(Milestone).where(Milestone.action_id == fa02.id).order_by(Milestone.due_date)
        ).all()
        assert [(m.due_date, m.done_on) for m in milestones] == [
            (date(2024, 5, 15), date(2024, 5, 10)),
            (date(2024, 10, 1), None),
        ]
        (indicator,) = u.session.exec(select(Indicator).where(Indicator.action_id == fa02.id)).all()
        assert (indicator.target, indicator.actual) == (Decimal(80), Decimal("12.5"))

        fa03 = u.repo.action(TERRITORY_CODE, "FA-03")
        assert fa03.state is State.VALIDATED  # the imported state is the initial state
        assert u.repo.history(fa03.id) == []  # no invented transition  # type: ignore[arg-type]
        fa11 = u.repo.action(TERRITORY_CODE, "FA-11")
        assert (fa11.pilot_id, fa11.priority, fa11.end_date) == (None, Priority.LOW, None)
        haddad = u.repo.person_by_email(fa03.territory_id, "karim.haddad@cc-tev.example")
        assert haddad is not None
        roles = set(
            u.session.exec(select(PersonRole.role).where(PersonRole.person_id == haddad.id))
        )
        assert roles == {Role.PILOT, Role.COPIL_MEMBER}


def _bad_plan(sheets: Sheets) -> Sheets:
    """Every kind of mistake the issue names, on distinct rows, plus one valid new action."""
    bad = copy.deepcopy(sheets)
    actions = bad["Actions"]
    actions[1][3] = "Mobilité"  # FA-02, row 2: unknown axis
    actions[2][9] = "31/02/2025"  # FA-03, row 3: impossible date
    actions[3][1] = ""  # FA-11, row 4: missing title
    actions.append(
        ["FA-02", "Doublon", "", "Innovation", "", "", "", "", "", "", ""]  # row 5: duplicate
    )
    actions.append(
        ["FA-12", "Diagnostics énergie", "", "Transition écologique",
         "inconnu@nulle-part.example", "", "", "", "01/04/2025", "31/12/2024", "en pause"]
    )  # row 6: unknown pilot, end before start, unknown state  # fmt: skip
    actions.append(
        ["FA-20", "Action valide", "", "Foncier", "", "", "", "", "", "", ""]  # row 7: valid
    )
    bad["Budget"][2][3] = "25 000,505"  # row 3: three decimals
    bad["Budget"].append(["FA-03", 2025, "Fonctionnement", "1 000"])  # row 6: same year+kind
    bad["Jalons"].append(["FA-99", "Jalon orphelin", "01/01/2025", None])  # row 5
    bad["Financements"][2][1] = "Conseil départemental"  # row 3: unknown funder
    return bad


def test_every_bad_row_is_reported_with_sheet_row_and_column_and_nothing_is_written(
    engine: Engine,
    uow: UowFactory,
    example_plan: str,
    write_workbook: Callable[..., Path],
    plan_sheets: Sheets,
) -> None:
    before = table_counts(engine)
    versions = action_versions(engine)
    path = write_workbook(_bad_plan(plan_sheets))

    with uow() as u, pytest.raises(InvalidInput) as raised:
        import_plan(u, path)

    problems = raised.value.problems
    expected = [
        "Feuille « Actions », ligne 2, colonne « Axe » : axe « Mobilité » introuvable",
        "Feuille « Actions », ligne 3, colonne « Fin » : date inexistante « 31/02/2025 »",
        "Feuille « Actions », ligne 3, colonne « État » : l'action FA-03 est « brouillon » ;"
        " l'import ne change pas l'état d'une action existante (« validée » demandé)",
        "Feuille « Actions », ligne 4, colonne « Intitulé » : valeur obligatoire manquante",
        "Feuille « Actions », ligne 5, colonne « Numéro » : numéro d'action FA-02 en double"
        " (déjà ligne 2)",
        "Feuille « Actions », ligne 6, colonne « Pilote (e-mail) » : pilote inconnu"
        " « inconnu@nulle-part.example »",
        "Feuille « Actions », ligne 6, colonne « Fin » : l'action FA-12 finit le 31/12/2024,"
        " avant son début le 01/04/2025",
        "Feuille « Actions », ligne 6, colonne « État » : état « en pause » introuvable",
        "Feuille « Jalons », ligne 5, colonne « Action » : action « FA-99 » absente de la"
        " feuille Actions",
        "Feuille « Budget », ligne 3, colonne « Montant » : montant « 25 000,505 » : pas plus"
        " de deux décimales",
        "Feuille « Budget », ligne 6, colonne « Nature » : budget fonctionnement 2025 de"
        " l'action FA-03 en double (déjà ligne 5)",
        "Feuille « Financements », ligne 3, colonne « Financeur » : organisation « Conseil"
        " départemental » inconnue",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in problems), (start, problems)
    assert len(problems) == len(expected), "\n".join(problems)
    assert problems == sorted(problems, key=problems.index)  # reading order (sheet, row)
    # Nothing written, not even the valid FA-20 nor the new people or organisations.
    assert table_counts(engine) == before
    assert action_versions(engine) == versions


def test_reimporting_the_same_file_changes_nothing(
    engine: Engine, uow: UowFactory, example_plan: str, tmp_path: Path
) -> None:
    path = tmp_path / "plan.xlsx"
    with uow() as u:
        export_plan(u, example_plan, path)
    before, versions = table_counts(engine), action_versions(engine)

    for _ in range(2):
        report = run_import(uow, path)
        assert not report.changed  # type: ignore[attr-defined]
        assert {c.change for c in report.changes} == {Change.UNCHANGED}  # type: ignore[attr-defined]

    assert table_counts(engine) == before
    assert action_versions(engine) == versions


def test_changes_are_applied_per_action_and_bump_only_the_changed_versions(
    engine: Engine,
    uow: UowFactory,
    example_plan: str,
    write_workbook: Callable[..., Path],
) -> None:
    versions = action_versions(engine)
    path = write_workbook(
        {
            "Actions": [
                ["Numéro", "Intitulé", "Axe", "Pilote (e-mail)"],
                [
                    "FA-07",
                    "Plateforme RH du Grand Est Touraine",
                    "Compétences",
                    "isabelle.roux@uimm-touraine.example",
                ],
                [
                    "FA-09",
                    "Observatoire du foncier économique disponible",
                    "Foncier",
                    "nadia.benali@cc-bvc.example",
                ],
                [
                    "FA-12",
                    "Diagnostics énergie et décarbonation des PME",
                    "Transition écologique",
                    "lucas.fontaine@ademe.example",
                ],
            ],
            "Budget": [
                ["Action", "Année", "Nature", "Montant"],
                ["FA-09", 2024, "Fonctionnement", "27 500,00 €"],
                ["FA-09", 2025, "Fonctionnement", "5 000"],
            ],
            "Jalons": [
                ["Action", "Intitulé", "Échéance"],
                ["FA-12", "30 diagnostics réalisés", "13/12/2024"],
            ],
        }
    )

    report = run_import(uow, path)

    by_number = {c.key: c for c in report.actions}  # type: ignore[attr-defined]
    assert by_number["FA-07"].change is Change.UPDATED
    assert by_number["FA-07"].details == ["intitulé"]
    assert by_number["FA-09"].change is Change.UPDATED
    assert by_number["FA-09"].details == ["lignes de budget : 1 ajoutée, 1 modifiée"]
    assert by_number["FA-12"].change is Change.UNCHANGED
    after = action_versions(engine)
    assert after["FA-07"][0] == versions["FA-07"][0] + 1
    assert after["FA-09"][0] == versions["FA-09"][0] + 1  # a child changed: the aggregate too
    unchanged = set(versions) - {"FA-07", "FA-09"}
    assert {n: after[n] for n in unchanged} == {n: versions[n] for n in unchanged}
    with uow() as u:
        fa09 = u.repo.action(example_plan, "FA-09")
        assert u.repo.budget_total(fa09.id) == Decimal("32500.00")  # type: ignore[arg-type]
        fa07 = u.repo.action(example_plan, "FA-07")
        # Columns absent from the sheet (description, dates…) were left as they were.
        assert fa07.description.startswith("Accompagner les entreprises")
        assert fa07.start_date == date(2024, 2, 15)


def test_child_rows_left_out_of_a_sheet_are_deleted_only_for_the_actions_it_lists(
    uow: UowFactory, example_plan: str, write_workbook: Callable[..., Path]
) -> None:
    path = write_workbook(
        {
            "Actions": [
                ["Numéro", "Intitulé", "Axe"],
                ["FA-01", "Usine-témoin de l'industrie du futur", "Innovation"],
                ["FA-02", "Industry-lab au CFAI d'Amboise", "Compétences"],
            ],
            "Jalons": [
                ["Action", "Intitulé", "Échéance"],
                ["FA-01", "Choix du site et du bâtiment", "30/04/2024"],
            ],
        }
    )
    with uow() as u:
        report = import_plan(u, path)
        u.commit()

    fa01 = next(c for c in report.actions if c.key == "FA-01")
    assert fa01.details == ["jalons : 2 supprimés"]
    with uow() as u:
        titles = {}
        for number in ("FA-01", "FA-02"):
            action_id = u.repo.action(example_plan, number).id
            rows = u.session.exec(select(Milestone).where(Milestone.action_id == action_id))
            titles[number] = [m.title for m in rows]
    assert titles["FA-01"] == ["Choix du site et du bâtiment"]
    assert titles["FA-02"] == [
        "Cahier des charges des équipements",
        "Premières sessions de formation",
    ]


def test_import_refuses_to_change_the_state_of_an_existing_action(
    engine: Engine,
    uow: UowFactory,
    example_plan: str,
    write_workbook: Callable[..., Path],
) -> None:
    with uow() as u:
        transition_action(u, u.repo.action(example_plan, "FA-04"), State.PROPOSED, actor="test")
        u.commit()
    path = write_workbook(
        {
            "Actions": [
                ["Numéro", "Intitulé", "Axe", "État"],
                [
                    "FA-04",
                    "Couverture mobile 4G puis 5G de tout le territoire",
                    "Foncier",
                    "validée",
                ],
                [
                    "FA-05",
                    "Relations entreprises – Éducation nationale",
                    "Compétences",
                    "brouillon",
                ],
                [
                    "FA-06",
                    "Soutien aux 3 clubs d'entreprises par l'embauche de personnel",
                    "Compétences",
                    "",
                ],
            ],
        }
    )
    before = table_counts(engine)

    with uow() as u, pytest.raises(InvalidInput) as raised:
        import_plan(u, path)

    (problem,) = raised.value.problems  # same state, or empty: accepted
    assert problem.startswith("Feuille « Actions », ligne 2, colonne « État » : l'action FA-04")
    assert "est « proposée »" in problem and "« validée » demandé" in problem
    assert "flux tiflow (décision de COPIL" in problem
    assert table_counts(engine) == before
    with uow() as u:
        assert u.repo.action(example_plan, "FA-04").state is State.PROPOSED
        assert len(u.session.exec(select(TransitionRecord)).all()) == 1


def test_dry_run_reports_the_changes_and_rolls_them_back(
    engine: Engine, uow: UowFactory, example_plan: str, write_workbook: Callable[..., Path]
) -> None:
    path = write_workbook(
        {
            "Actions": [
                ["Numéro", "Intitulé", "Axe"],
                ["FA-08", "Tiers-lieu Le Rubixco", "Innovation"],
                ["FA-21", "Navette vers les zones d'activités", "Foncier"],
            ]
        }
    )
    before, versions = table_counts(engine), action_versions(engine)

    with uow() as u:  # a dry run is an import whose unit of work is not committed
        report = import_plan(u, path)

    assert [(c.key, c.change) for c in report.actions] == [
        ("FA-08", Change.UPDATED),
        ("FA-21", Change.CREATED),
    ]
    assert table_counts(engine) == before
    assert action_versions(engine) == versions


def test_template_has_every_sheet_and_importing_it_blank_changes_nothing(
    engine: Engine, uow: UowFactory, example_plan: str, tmp_path: Path
) -> None:
    from openpyxl import load_workbook

    path = tmp_path / "modele.xlsx"
    write_template(path)
    workbook = load_workbook(path)
    assert workbook.sheetnames == [
        "Instructions", "Territoire", "Organisations", "Personnes", "Actions", "Jalons",
        "Indicateurs", "Budget", "Financements", "Préférences",
    ]  # fmt: skip
    actions = workbook["Actions"]
    assert [c.value for c in actions[1]][:4] == ["Numéro", "Intitulé", "Description", "Axe"]
    validations = actions.data_validations.dataValidation
    lists = {str(dv.sqref).split(":")[0]: dv.formula1 for dv in validations}
    assert lists["D2"] == '"Compétences,Innovation,Foncier,Transition écologique"'
    assert "brouillon" in lists["K2"] and lists["G2"] == '"oui,non"'
    notice = " ".join(
        str(c.value) for row in workbook["Instructions"].iter_rows() for c in row if c.value
    )
    assert "15/03/2025" in notice and "12 500,50 €" in notice and "--dry-run" in notice

    before = table_counts(engine)
    report = run_import(uow, path)
    assert report.changes == []  # type: ignore[attr-defined]
    assert table_counts(engine) == before


def test_a_file_that_is_not_a_workbook_is_a_french_error(tmp_path: Path, uow: UowFactory) -> None:
    notes = tmp_path / "plan.xlsx"
    notes.write_text("ceci n'est pas un classeur", encoding="utf-8")
    with uow() as u, pytest.raises(TiflowError, match="Classeur illisible"):
        import_plan(u, notes)
    with uow() as u, pytest.raises(TiflowError, match="non pris en charge"):
        import_plan(u, tmp_path / "plan.ods")


def test_unknown_territory_without_a_territory_sheet_is_reported(
    uow: UowFactory, example_plan: str, write_workbook: Callable[..., Path]
) -> None:
    path = write_workbook({"Actions": [["Numéro", "Intitulé", "Axe"], ["FA-01", "x", "Foncier"]]})
    with uow() as u, pytest.raises(InvalidInput) as raised:
        import_plan(u, path, territory="vierzon")
    assert raised.value.problems == [
        "Feuille « Territoire » : le territoire « vierzon » n'existe pas encore : ajoutez une"
        " feuille « Territoire » (code, nom) pour le créer"
    ]


def test_people_and_organisations_are_created_or_updated_from_their_sheets(
    engine: Engine, uow: UowFactory, example_plan: str, write_workbook: Callable[..., Path]
) -> None:
    path = write_workbook(
        {
            "Organisations": [
                ["Nom", "Sigle", "Type", "Financeur (oui/non)"],
                ["Conseil départemental d'Indre-et-Loire", "CD 37", "Autre partenaire", "oui"],
            ],
            "Personnes": [
                ["Nom complet", "E-mail", "Organisation", "Fonction", "Rôles"],
                [
                    "Isabelle Roux-Martin",
                    "isabelle.roux@uimm-touraine.example",
                    "UIMM",
                    "Responsable emploi-formation",
                    "pilote d'action",
                ],
                [
                    "Paul Girard",
                    "paul.girard@cd37.example",
                    "CD 37",
                    "Chargé de mission",
                    "membre du COPIL",
                ],
            ],
            "Actions": [
                ["Numéro", "Intitulé", "Axe", "Pilote (e-mail)"],
                [
                    "FA-22",
                    "Schéma départemental des zones d'activités",
                    "Foncier",
                    "paul.girard@cd37.example",
                ],
            ],
            "Financements": [
                ["Action", "Financeur", "Année", "Demandé"],
                ["FA-22", "CD 37", 2025, "40 000"],
            ],
        }
    )
    report = run_import(uow, path)

    changes = {(c.sheet, c.key): (c.change, c.details) for c in report.changes}  # type: ignore[attr-defined]
    assert changes[("Personnes", "isabelle.roux@uimm-touraine.example")] == (
        Change.UPDATED,
        ["nom complet"],
    )
    assert changes[("Personnes", "paul.girard@cd37.example")][0] is Change.CREATED
    assert changes[("Organisations", "Conseil départemental d'Indre-et-Loire")][0] is Change.CREATED
    with uow() as u:
        fa22 = u.repo.action(example_plan, "FA-22")
        assert u.repo.person(fa22.pilot_id).email == "paul.girard@cd37.example"  # type: ignore[union-attr]
        (funding,) = u.session.exec(select(Funding).where(Funding.action_id == fa22.id)).all()
        funder = u.session.get(Organisation, funding.funder_id)
        assert funder is not None and funder.short_name == "CD 37" and funder.is_funder
        people = u.session.exec(select(Person).where(Person.full_name == "Isabelle Roux-Martin"))
        assert len(people.all()) == 1
