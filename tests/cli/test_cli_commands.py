"""The coordinator's `tiflow` command: French output, exit codes 0 / 1 (user error) / 2 (usage)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from sqlalchemy.engine import Engine
from sqlmodel import select
from typer.testing import Result

from models.db import make_engine, upgrade
from models.lifecycle import State
from models.tables import ActionSheet, Milestone
from models.transitions import transition_action
from models.uow import UnitOfWork
from tiflow.cli.french import translate
from tiflow.spreadsheet.exporting import ExportSummary

Tiflow = Callable[..., Result]
UowFactory = Callable[[], UnitOfWork]


def test_help_is_french(tiflow: Tiflow) -> None:
    result = tiflow("--help")
    assert result.exit_code == 0
    for text in ("Utilisation : tiflow", "Commandes", "Affiche cette aide et quitte.",
                 "import", "export", "modele", "actions", "territoires", "demo", "db"):  # fmt: skip
        assert text in result.stdout
    result = tiflow("import", "--help")
    assert "--dry-run" in result.stdout and "Vérifie le fichier" in result.stdout
    assert "Usage" not in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--inconnue"], "Erreur : Option inconnue : --inconnue."),
        (["import"], "Erreur : Argument manquant : FICHIER."),
        (["exporter"], "Erreur : Commande inconnue : « exporter ». Vouliez-vous dire export ?"),
        (["actions", "--axe"], "Erreur : L'option --axe attend une valeur."),
        (["actions", "--axe", "Mobilité"], "Valeur invalide pour '--axe' / '--etat' : axe"),
        (["actions", "--au", "31/02/2025"], "Valeur invalide pour '--au' : date inexistante"),
    ],
)
def test_usage_errors_exit_2_with_a_french_message(
    tiflow: Tiflow, args: list[str], message: str
) -> None:
    result = tiflow(*args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Usage" not in result.stderr and "Error" not in result.stderr


def test_usage_errors_show_the_french_usage_line(tiflow: Tiflow) -> None:
    result = tiflow("import")
    assert result.stderr.splitlines()[:2] == [
        "Utilisation : tiflow import [OPTIONS] {FICHIER}",
        "Aide : tiflow import --help",
    ]


def test_untranslated_messages_pass_through_unchanged() -> None:
    assert translate("Quelque chose d'inattendu") == "Quelque chose d'inattendu"


def test_counts_are_real_plurals_never_parenthesised() -> None:
    assert translate("Got unexpected extra argument (x)") == "Argument en trop : x."
    assert translate("Got unexpected extra arguments (x y)") == "Arguments en trop : x y."
    counts = {"Actions": 1, "Jalons": 2, "Budget": 0, "Financements": 3}
    described = ExportSummary(Path("plan.xlsx"), "GET", counts).describe()
    assert described == (
        "0 organisation, 0 personne, 1 action, 2 jalons, 0 indicateur, 0 ligne de budget,"
        " 3 financements"
    )


def test_import_export_reimport_and_dry_run(
    tiflow: Tiflow, engine: Engine, example_plan: str, tmp_path: Path
) -> None:
    path = tmp_path / "plan.xlsx"
    result = tiflow("export", str(path))
    assert result.exit_code == 0, result.output
    assert "Plan de Grand Est Touraine exporté" in result.stdout
    assert "12 actions, 17 jalons" in result.stdout

    result = tiflow("import", str(path))
    assert result.exit_code == 0, result.output
    assert "Rien à changer : la base correspond déjà au fichier." in result.stdout
    assert "12 actions (12 inchangées)" in result.stdout

    workbook = load_workbook(path)
    workbook["Actions"]["B8"] = "Plateforme RH (recrutement, formation, attractivité)"  # FA-07
    workbook.save(path)
    result = tiflow("import", str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "FA-07 Plateforme RH (recrutement, formation, attractivité)" in result.stdout
    assert "modifiée" in result.stdout and "intitulé" in result.stdout
    # 18 more funding rows than when funding sat in the start year: one per funder and year
    assert "Bilan de la simulation (135 lignes lues)" in result.stdout
    assert "Simulation (--dry-run) : rien n'a été enregistré." in result.stdout
    with UnitOfWork(engine) as u:
        fa07 = u.repo.action(example_plan, "FA-07")
        assert fa07.title.startswith("Plateforme Ressources humaines")  # dry run: unchanged
        assert fa07.version == 1

    result = tiflow("import", str(path), "--territoire", example_plan)
    assert result.exit_code == 0, result.output
    assert "Import enregistré dans le territoire grand-est-touraine." in result.stdout
    with UnitOfWork(engine) as u:
        fa07 = u.repo.action(example_plan, "FA-07")
        assert (fa07.title, fa07.version) == (
            "Plateforme RH (recrutement, formation, attractivité)",
            2,
        )


def test_import_with_errors_exits_1_lists_them_and_writes_nothing(
    tiflow: Tiflow, engine: Engine, example_plan: str, tmp_path: Path
) -> None:
    path = tmp_path / "plan.xlsx"
    assert tiflow("export", str(path)).exit_code == 0
    workbook = load_workbook(path)
    workbook["Actions"]["D3"] = "Mobilité"  # FA-02's axis
    workbook["Budget"]["D2"] = "douze mille"
    workbook.save(path)

    result = tiflow("import", str(path))

    assert result.exit_code == 1
    assert "Import refusé : « plan.xlsx » contient 2 erreurs ; rien n'a été enregistré." in (
        result.stderr
    )
    assert "Feuille « Actions », ligne 3, colonne « Axe » : axe « Mobilité » introuvable" in (
        result.stderr
    )
    assert "Feuille « Budget », ligne 2, colonne « Montant » : nombre illisible" in result.stderr
    assert "Traceback" not in result.output


def test_user_errors_exit_1_in_french_without_traceback(
    tiflow: Tiflow, example_plan: str, tmp_path: Path
) -> None:
    cases = [
        (("action", "FA-99"), "Erreur : Action inconnue : FA-99 (territoire « grand-est-"),
        (("actions", "--territoire", "vierzon"), "Erreur : Territoire inconnu : « vierzon »."),
        (("import", str(tmp_path / "absent.xlsx")), "Erreur : Fichier introuvable"),
        (("import", "plan.ods"), "Format de fichier non pris en charge : « plan.ods »"),
    ]  # fmt: skip
    for args, message in cases:
        result = tiflow(*args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.stderr
        assert "Traceback" not in result.output
    existing = tmp_path / "plan.csv"
    existing.write_text("déjà là", encoding="utf-8")
    result = tiflow("export", str(existing))
    assert result.exit_code == 1 and "existe déjà : ajoutez --ecraser" in result.stderr
    assert tiflow("export", str(existing), "--ecraser").exit_code == 0
    assert existing.read_bytes().startswith(b"\xef\xbb\xbfFeuille;")


def test_template_command_writes_a_workbook_to_fill(tiflow: Tiflow, tmp_path: Path) -> None:
    path = tmp_path / "modele.xlsx"
    result = tiflow("modele", str(path))
    assert result.exit_code == 0
    assert "Modèle créé" in result.stdout and "Instructions" in result.stdout
    assert load_workbook(path).sheetnames[:2] == ["Instructions", "Territoire"]


def test_actions_are_listed_and_filtered(
    tiflow: Tiflow, uow: UowFactory, example_plan: str
) -> None:
    with uow() as u:
        transition_action(u, u.repo.action(example_plan, "FA-09"), State.PROPOSED, actor="test")
        u.commit()

    result = tiflow("actions", "--axe", "foncier")
    assert result.exit_code == 0
    numbers = [n for n in ("FA-04", "FA-09", "FA-10", "FA-01") if n in result.stdout]
    assert numbers == ["FA-04", "FA-09", "FA-10"]
    assert "Plan d'actions — Grand Est Touraine (axe Foncier)" in result.stdout
    assert "3 actions sur 12" in result.stdout

    result = tiflow("actions", "--etat", "proposée", "--pilote", "nadia.benali@cc-bvc.example")
    assert "FA-09" in result.stdout and "FA-10" not in result.stdout

    result = tiflow("actions", "--en-retard", "--au", "15/04/2024", "--pilote", "Benali")
    assert result.exit_code == 0
    assert "Aucune action ne correspond à ces critères" in result.stdout
    result = tiflow("actions", "--en-retard", "--au", "01/07/2024", "--pilote", "Benali")
    assert "FA-09" in result.stdout
    # due on Friday 28/06 (a working day, not Sunday 30/06): 3 days late on 01/07
    assert "jalon « Inventaire des parcelles » en retard de 3 j" in result.stdout


def test_action_detail_shows_milestones_budget_funding_and_history(
    tiflow: Tiflow, uow: UowFactory, example_plan: str
) -> None:
    with uow() as u:
        transition_action(
            u,
            u.repo.action(example_plan, "FA-07"),
            State.PROPOSED,
            actor="Claire Moreau",
            at=datetime(2024, 6, 3, 9, tzinfo=UTC),  # before the --au date: in its history
        )
        u.commit()

    result = tiflow("action", "fa-07", "--au", "01/07/2024")

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "FA-07 — Plateforme Ressources humaines" in out
    assert "Isabelle Roux <isabelle.roux@uimm-touraine.example>, UIMM" in out
    assert "jalon « Ouverture de la plateforme » en retard de 28 j" in out  # due 03/06
    assert "Budget par année" in out and "140\u202f000,00\u00a0€" in out
    assert "Financements par financeur" in out and "OPCO 2i" in out
    assert "brouillon" in out and "proposée" in out and "Claire Moreau" in out


def test_territories_are_listed(tiflow: Tiflow, example_plan: str) -> None:
    result = tiflow("territoires")
    assert result.exit_code == 0
    assert "grand-est-touraine" in result.stdout and "Indre-et-Loire" in result.stdout


def test_schema_policy_creates_empty_databases_and_refuses_foreign_revisions(
    tmp_path: Path, tiflow_on: Callable[[str, Path], Tiflow]
) -> None:
    run_on = tiflow_on

    url = f"sqlite:///{tmp_path / 'neuve.db'}"
    result = run_on(url, tmp_path)("territoires")
    assert result.exit_code == 0
    assert "Base créée" in result.stderr and "Aucun territoire dans la base" in result.stdout

    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    result = run_on(url, tmp_path)("actions")
    assert result.exit_code == 1
    assert "migrée par une version plus récente de tiflow (révision 9999)" in result.stderr

    foreign = f"sqlite:///{tmp_path / 'autre.db'}"
    engine = make_engine(foreign)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE clients (id INTEGER)"))
    engine.dispose()
    result = run_on(foreign, tmp_path)("territoires")
    assert result.exit_code == 1 and "ce n'est pas une base tiflow" in result.stderr


def test_db_upgrade_is_idempotent(tmp_path: Path, tiflow_on: Callable[[str, Path], Tiflow]) -> None:
    run_on = tiflow_on

    url = f"sqlite:///{tmp_path / 'tiflow.db'}"
    for _ in range(2):
        result = run_on(url, tmp_path)("db", "upgrade")
        assert result.exit_code == 0 and "Base à jour" in result.stdout
    engine = make_engine(url)
    upgrade(engine)
    with UnitOfWork(engine) as u:
        assert u.session.exec(select(ActionSheet)).all() == []
    engine.dispose()


def test_action_au_is_a_point_in_time_reading_completion_and_history_as_they_were(
    tiflow: Tiflow, uow: UowFactory, example_plan: str
) -> None:
    with uow() as u:
        fa01 = u.repo.action(example_plan, "FA-01")
        for milestone in u.session.exec(select(Milestone).where(Milestone.action_id == fa01.id)):
            if milestone.title == "Installation des démonstrateurs":  # due 15/11/2024
                milestone.done_on = date(2024, 12, 5)
                u.session.add(milestone)
        transition_action(
            u, fa01, State.PROPOSED, actor="Claire Moreau", at=datetime(2024, 1, 9, 9, tzinfo=UTC)
        )
        u.commit()

    before = tiflow("action", "FA-01", "--au", "20/11/2024").stdout
    assert "jalon « Installation des démonstrateurs » en retard de 5 j" in before
    assert "proposée" in before
    after = tiflow("action", "FA-01", "--au", "06/12/2024").stdout
    assert "Installation des démonstrateurs » en retard" not in after
    earlier = tiflow("action", "FA-01", "--au", "05/01/2024").stdout
    assert "brouillon (au" in earlier  # proposed on 09/01 only
