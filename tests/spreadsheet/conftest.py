"""Fixtures for the spreadsheet tests: workbooks written cell by cell, as a coordinator would
fill them, and a second empty database on the same backend (for round trips)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from openpyxl import Workbook
from sqlalchemy.engine import Engine

from models.db import make_engine, upgrade

Sheets = dict[str, list[list[object]]]


@pytest.fixture
def fresh_engine(engine: Engine, database_url: Callable[[str], str]) -> Iterator[Engine]:
    """A second, empty and migrated database on the same backend as `engine`."""
    url = database_url(engine.dialect.name)
    fresh = make_engine(url)
    upgrade(fresh)
    yield fresh
    fresh.dispose()
    if fresh.dialect.name == "postgresql":
        options = sa.make_url(url).query.get("options", "")
        schema = str(options).removeprefix("-csearch_path=")
        admin = make_engine(url)
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def write_workbook(tmp_path: Path) -> Callable[..., Path]:
    """Write `{sheet title: [header row, data rows...]}` to an .xlsx file, values as given
    (text, numbers, real date cells), like a workbook typed by hand."""

    def write(sheets: Sheets, name: str = "plan.xlsx") -> Path:
        workbook = Workbook()
        first = workbook.active
        assert first is not None
        workbook.remove(first)
        for title, rows in sheets.items():
            worksheet = workbook.create_sheet(title)
            for row in rows:
                worksheet.append(row)
        path = tmp_path / name
        workbook.save(path)
        return path

    return write


def small_plan() -> Sheets:
    """Three Grand Est Touraine actions, typed the way a coordinator types: French labels,
    French dates (text and date cells), amounts with spaces, commas and €."""
    nbsp, narrow = "\u00a0", "\u202f"
    return {
        "Territoire": [
            ["Code", "Nom", "Département", "Région"],
            ["grand-est-touraine", "Grand Est Touraine", "Indre-et-Loire", "Centre-Val de Loire"],
        ],
        "Organisations": [
            ["Nom", "Sigle", "Type", "Financeur (oui/non)"],
            ["Région Centre-Val de Loire", "Région", "Région", "oui"],
            ["UIMM Touraine", "UIMM", "Emploi et formation", "non"],
            [
                "Communauté de communes Touraine-Est Vallées",
                "CC TEV",
                "Communauté de communes",
                "oui",
            ],
        ],
        "Personnes": [
            ["Nom complet", "E-mail", "Organisation", "Fonction", "Rôles"],
            [
                "Isabelle Roux",
                "Isabelle.Roux@uimm-touraine.example",
                "UIMM",
                "Responsable emploi-formation",
                "pilote d'action",
            ],
            [
                "Karim Haddad",
                "karim.haddad@cc-tev.example",
                "CC TEV",
                "Directeur du développement économique",
                "pilote d'action, membre du COPIL",
            ],
        ],
        "Actions": [
            [
                "Numéro",
                "Intitulé",
                "Description",
                "Axe",
                "Pilote (e-mail)",
                "Partenaires",
                "Engagement ferme",
                "Priorité",
                "Début",
                "Fin",
                "État",
            ],
            [
                "FA-02",
                "Industry-lab au CFAI d'Amboise",
                "Former aux nouveaux métiers de l'industrie.",
                "Compétences",
                "isabelle.roux@uimm-touraine.example",
                "UIMM, Région",
                "oui",
                "haute",
                "01/03/2024",
                datetime(2025, 6, 30),
                "",
            ],
            [
                "FA-03",
                "Lieu d'accueil de start-up en intelligence artificielle",
                "",
                "innovation",
                "karim.haddad@cc-tev.example",
                "CC TEV",
                "non",
                "",
                "2024-04-01",
                "31/12/2025",
                "validée",
            ],
            [
                "FA-11",
                "Écologie industrielle et territoriale",
                "Mutualiser les flux entre entreprises voisines.",
                "Transition écologique",
                "",
                "",
                "",
                3,
                date(2024, 5, 1),
                None,
                "brouillon",
            ],
        ],
        "Jalons": [
            ["Action", "Intitulé", "Échéance", "Réalisé le"],
            ["FA-02", "Cahier des charges des équipements", "15/05/2024", "10/05/2024"],
            ["FA-02", "Premières sessions de formation", datetime(2024, 10, 1), None],
            ["FA-03", "Appel à candidatures des start-up", "2024-09-01", None],
        ],
        "Indicateurs": [
            ["Action", "Nom", "Unité", "Cible", "Valeur atteinte", "Mesurée le"],
            ["FA-02", "Apprentis formés par an", "personnes", 80, "12,5", "30/06/2024"],
            ["FA-03", "Start-up hébergées", "start-up", "8", None, None],
        ],
        "Budget": [
            ["Action", "Année", "Nature", "Montant"],
            ["FA-02", 2024, "Investissement", f"180{nbsp}000,00{nbsp}€"],
            ["FA-02", "2024", "fonctionnement", 25000.5],
            ["FA-03", 2024, "Investissement", f"90{narrow}000,10"],
            ["FA-03", 2025, "Fonctionnement", "30000"],
        ],
        "Financements": [
            [
                "Action",
                "Financeur",
                "Année",
                "Demandé",
                "Accordé",
                "Versé",
                "Dépôt du dossier",
                "Décision attendue",
                "Versement attendu",
                "Date de décision",
                "Référence convention",
            ],
            [
                "FA-02",
                "Région",
                2024,
                "120 000 €",
                "120 000,00",
                "60 000,5",
                "01/02/2024",
                "15/04/2024",
                "15/08/2024",
                "12/04/2024",
                "CRCVL-2024-117",
            ],
            ["FA-03", "CC TEV", 2024, "12500.5", None, None, None, None, None, None, None],
        ],
    }


@pytest.fixture
def plan_sheets() -> Sheets:
    return small_plan()
