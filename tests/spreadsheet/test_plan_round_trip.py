"""Export → import into an empty database keeps every field, amounts to the cent; the CSV
variant too (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import select

from models.errors import InvalidInput
from models.lifecycle import State
from models.tables import (
    ActionPartner,
    ActionSheet,
    BudgetLine,
    CopilMeeting,
    Funding,
    Indicator,
    Milestone,
    Organisation,
    Person,
)
from models.transitions import transition_action
from models.uow import UnitOfWork
from models.vocabulary import OrganisationKind
from tiflow.example import TERRITORY_CODE
from tiflow.spreadsheet import export_plan, import_plan, plan_from_database

UowFactory = Callable[[], UnitOfWork]


def _enrich(uow: UowFactory) -> None:
    """Give every exported field a non-default value somewhere: states, granted and paid
    amounts with cents, decision dates, done milestones, measured indicators, a multi-line
    description with quotes and semicolons, an organisation whose name has a comma."""
    with uow() as u:
        plan = u.repo.territory(TERRITORY_CODE)
        copil = CopilMeeting(
            territory_id=plan.id,  # type: ignore[arg-type]
            held_at=datetime(2024, 1, 25, 14, 0, tzinfo=UTC),
            place="Amboise",
        )
        u.session.add(copil)
        u.flush()
        fa01 = u.repo.action(TERRITORY_CODE, "FA-01")
        transition_action(u, fa01, State.PROPOSED, actor="Claire Moreau")
        transition_action(u, fa01, State.VALIDATED, actor="COPIL du 25/01/2024", copil_id=copil.id)
        region = u.repo.organisation(plan.id, "Région")  # type: ignore[arg-type]
        assert region is not None
        funding = u.session.exec(
            select(Funding).where(
                Funding.action_id == fa01.id, Funding.funder_id == region.id, Funding.year == 2024
            )
        ).one()
        funding.granted, funding.paid = Decimal("249999.99"), Decimal("12345.67")
        funding.decision_date, funding.convention_ref = date(2024, 3, 12), "CRCVL-2024-042"
        funding.dossier_filed_on = date(2024, 1, 29)  # the new column makes the round trip too
        line = u.session.exec(select(BudgetLine).where(BudgetLine.action_id == fa01.id)).first()
        assert line is not None
        line.amount = Decimal("350000.01")
        transition_action(u, u.repo.action(TERRITORY_CODE, "FA-02"), State.PROPOSED, actor="x")
        transition_action(
            u,
            u.repo.action(TERRITORY_CODE, "FA-12"),
            State.ABANDONED,
            actor="Claire Moreau",
            reason="Remplacée par un dispositif régional",
        )
        milestone = u.session.exec(select(Milestone).where(Milestone.action_id == fa01.id)).first()
        assert milestone is not None
        milestone.done_on = date(2024, 4, 22)
        indicator = u.session.exec(select(Indicator).where(Indicator.action_id == fa01.id)).one()
        indicator.actual, indicator.measured_on = Decimal("12.75"), date(2024, 6, 30)
        fa05 = u.repo.action(TERRITORY_CODE, "FA-05")
        fa05.description = 'Visites d\'usines ; stages « découverte »\net "portes ouvertes".'
        fa05.pilot_id, fa05.start_date, fa05.end_date = None, None, None
        chamber = Organisation(
            territory_id=plan.id,  # type: ignore[arg-type]
            name="Chambre de commerce, d'industrie et de services de Touraine",
            kind=OrganisationKind.AUTRE,
        )
        u.session.add(chamber)
        u.flush()
        u.session.add(ActionPartner(action_id=fa05.id, organisation_id=chamber.id))  # type: ignore[arg-type]
        u.session.add(
            Person(
                territory_id=plan.id,  # type: ignore[arg-type]
                full_name="Élodie Marchand",
                email="elodie.marchand@cci-touraine.example",
            )
        )
        u.commit()


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_export_then_import_into_an_empty_database_keeps_every_field(
    uow: UowFactory, example_plan: str, fresh_engine: Engine, tmp_path: Path, suffix: str
) -> None:
    _enrich(uow)
    path = tmp_path / f"plan{suffix}"
    with uow() as u:
        export_plan(u, example_plan, path)
        original = plan_from_database(u, example_plan)

    with UnitOfWork(fresh_engine) as u:
        report = import_plan(u, path)
        u.commit()
    with UnitOfWork(fresh_engine) as u:
        copy = plan_from_database(u, example_plan)

    assert report.changed
    assert copy == original  # every sheet, every row, every field
    assert copy.funding is not None and copy.actions is not None
    granted = {(f.action, f.funder, f.year): f.granted for f in copy.funding}
    assert granted[("FA-01", "Région", 2024)] == Decimal("249999.99")
    filed = {(f.action, f.funder, f.year): f.dossier_filed_on for f in copy.funding}
    assert filed[("FA-01", "Région", 2024)] == date(2024, 1, 29)
    assert {a.number: a.state for a in copy.actions}["FA-12"] is State.ABANDONED
    with UnitOfWork(fresh_engine) as u:
        total = u.session.exec(select(sa.func.sum(Funding.paid))).one()
        assert total == Decimal("12345.67")
        fa05 = u.repo.action(example_plan, "FA-05")
        assert fa05.description.endswith('et "portes ouvertes".')
        assert len(u.session.exec(select(ActionSheet)).all()) == 12


def test_csv_is_semicolon_separated_utf8_with_bom_and_decimal_comma(
    uow: UowFactory, example_plan: str, tmp_path: Path
) -> None:
    path = tmp_path / "plan.csv"
    with uow() as u:
        export_plan(u, example_plan, path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines(), delimiter=";"))
    header = rows[0]
    assert header[:3] == ["Feuille", "Code", "Nom"]
    budget = [dict(zip(header, r, strict=True)) for r in rows if r[0] == "Budget"]
    fa09 = [
        {k: b[k] for k in ("Année", "Nature", "Montant")} for b in budget if b["Action"] == "FA-09"
    ]
    assert fa09 == [{"Année": "2024", "Nature": "Fonctionnement", "Montant": "25000,00"}]
    assert all(b["Nom"] == "" for b in budget)  # other sheets' columns stay empty
    dates = [r[header.index("Échéance")] for r in rows if r[0] == "Jalons"]
    assert "30/04/2024" in dates


def test_csv_without_sheet_column_is_read_as_actions_in_windows_1252(
    uow: UowFactory, example_plan: str, tmp_path: Path
) -> None:
    """What Excel saves as « CSV (séparateur : point-virgule) » in France."""
    path = tmp_path / "actions.csv"
    path.write_bytes(
        "Numéro;Intitulé;Axe;Pilote (e-mail);Début;Fin;État\r\n"
        "FA-13;Forum des métiers de l'industrie;Compétences;thomas.petit@eret.example;"
        "01/10/2025;30/11/2025;brouillon\r\n"
        "FA-14;Réseau de chaleur de la zone d'Amboise;Transition écologique;;;;\r\n".encode(
            "cp1252"
        )
    )
    with uow() as u:
        report = import_plan(u, path)
        u.commit()
    assert [(c.key, c.change.value) for c in report.actions] == [
        ("FA-13", "created"),
        ("FA-14", "created"),
    ]
    assert report.warnings == ["Fichier CSV lu en Windows-1252 (il n'est pas en UTF-8)."]
    with uow() as u:
        fa13 = u.repo.action(example_plan, "FA-13")
        assert fa13.title == "Forum des métiers de l'industrie"
        assert u.repo.person(fa13.pilot_id).full_name == "Thomas Petit"  # type: ignore[union-attr]
        assert u.repo.action(example_plan, "FA-14").end_date is None


def test_csv_problems_name_the_line_and_the_sheet(
    uow: UowFactory, example_plan: str, tmp_path: Path
) -> None:
    path = tmp_path / "plan.csv"
    path.write_text(
        "Feuille;Numéro;Intitulé;Axe;Action;Année;Nature;Montant;Échéance\n"
        "Actions;FA-15;Atelier partagé;Innovation;;;;;\n"
        "Budget;;;;FA-15;2025;Investissement;12 500,505 €;\n"
        "Jalon;;Réception;;FA-15;;;;\n"
        "Tableau;;;;;;;;\n"
        "Jalons;;Livraison;Foncier;FA-15;;;;01/12/2025\n",
        encoding="utf-8-sig",
    )
    with uow() as u, pytest.raises(InvalidInput) as raised:
        import_plan(u, path)
    assert raised.value.problems == [
        "Ligne 3 (feuille Budget), colonne « Montant » : montant « 12 500,505 € » : pas plus de"
        " deux décimales (les milliers se séparent par des espaces : 12 500,50)",
        "Ligne 4 (feuille Jalons), colonne « Échéance » : valeur obligatoire manquante",
        "Ligne 5 : colonne « Feuille » : valeur « Tableau » inconnue (attendu : Territoire,"
        " Organisations, Personnes, Actions, Jalons, Indicateurs, Budget, Financements,"
        " Préférences)",
        "Ligne 6 (feuille Jalons) : colonne « Axe » : ne s'applique pas à la feuille Jalons"
        " (laissez-la vide)",
    ]
