"""`tiflow run …` and `tiflow copil planifier`: the real flows under the session Prefect
harness, started from the command line. SQLite only: the flows themselves are tested on both
databases in their own folders."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import Result

from models.db import make_engine, upgrade
from models.lifecycle import State
from models.outbox import OutboxMessage
from models.tables import CopilMeeting
from models.uow import UnitOfWork
from notifications.outbox import NewMessage, enqueue
from tiflow.example import load_example

Tiflow = Callable[..., Result]
DECISIONS = "numéro;décision;conditions;commentaire\n"


class Cli:
    def __init__(self, run: Tiflow, engine: Engine, data: Path, url: str) -> None:
        self.run, self.engine, self.data, self.url = run, engine, data, url

    def __call__(self, *args: str) -> Result:
        return self.run(*args)

    def states(self, *numbers: str) -> list[State]:
        with UnitOfWork(self.engine) as uow:
            return [State(uow.repo.action("grand-est-touraine", n).state) for n in numbers]

    def outbox(self) -> list[tuple[str, str, str]]:
        m = OutboxMessage.__table__.c  # type: ignore[attr-defined]
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(m.kind, m.address, m.status).order_by(m.id))
            return [(r.kind, r.address, r.status) for r in rows]

    def emls(self) -> list[Path]:
        return sorted((self.data / "data" / "outbox").glob("*.eml"))


@pytest.fixture
def cli(
    prefect_harness: None,
    tiflow_on: Callable[[str, Path], Tiflow],
    database_url: Callable[[str], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Cli:
    """The example plan in a fresh SQLite database (every action a draft)."""
    monkeypatch.delenv("TIFLOW_NOTIFY_CONFIG", raising=False)
    url = database_url("sqlite")
    engine = make_engine(url)
    upgrade(engine)
    with UnitOfWork(engine) as uow:
        load_example(uow)
        uow.commit()
    return Cli(tiflow_on(url, tmp_path), engine, tmp_path, url)


def propose(cli: Cli, *numbers: str) -> None:
    """Proposing is not a CLI command: through the flow, on the CLI's database."""
    from flows.proposals import propose_action

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIFLOW_DATABASE_URL", cli.url)
        patch.setenv("TIFLOW_DATA_DIR", str(cli.data / "data"))
        for number in numbers:
            propose_action({"number": number, "at": "2025-01-06T10:00"})
    assert cli.states(*numbers) == [State.PROPOSED] * len(numbers)


def test_a_copil_is_scheduled_its_digest_sent_and_its_decisions_read_from_a_csv(
    cli: Cli, tmp_path: Path
) -> None:
    propose(cli, "FA-07", "FA-09")
    result = cli("copil", "planifier", "--date", "23/01/2025 9h30", "--lieu", "Amboise")

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "COPIL n° 1 planifié — Grand Est Touraine — exécution Prefect « planifier-copil-" in out
    assert "Le 23/01/2025 à 09 h 30, Amboise ; 7 membres invités." in out
    assert "FA-07" in out and "FA-09" in out and "Ordre du jour (2 actions)" in out

    result = cli("run", "synthese", "--au", "13/01/2025")  # J-10
    assert result.exit_code == 0, result.output
    assert "COPIL n° 1 : 7 e-mails mis en file" in result.stdout
    assert "7 envoyés, 0 à réessayer, 0 en échec" in result.stdout
    assert len(cli.emls()) == 7

    decisions = tmp_path / "decisions.csv"
    decisions.write_bytes(
        (
            "\ufeffNuméro;Décision;Conditions;Commentaire\n"
            "FA-07;Validée;Bilan à six mois;\n"
            "fa-9;revision demandee;;Chiffrage à préciser\n"
        ).encode()
    )
    result = cli(
        "run", "copil", "1", "--decisions", str(decisions), "--budget", "1 250 000,00",
        "--le", "23/01/2025 12:00",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "COPIL du 23/01/2025 — Grand Est Touraine : décisions enregistrées" in out
    assert "tenir-copil-1" in out
    assert "validée" in out and "Bilan à six mois" in out and "révision demandée" in out
    assert "Budget 2025 validé : 1 250 000,00 €" in out.replace("\u202f", " ").replace(
        "\u00a0", " "
    )
    assert cli.states("FA-07", "FA-09") == [State.VALIDATED, State.REVISION_REQUESTED]
    with cli.engine.connect() as conn:
        status = conn.execute(sa.select(CopilMeeting.__table__.c.status)).scalar_one()  # type: ignore[attr-defined]
    assert status == "held"

    # The day after: the record of decisions; J+3: the minutes reminder, until recorded.
    result = cli("run", "suites", "--au", "24/01/2025")
    assert result.exit_code == 0, result.output
    assert "Relevé de décisions du COPIL du 23/01/2025 mis en file." in result.stdout
    assert cli("copil", "compte-rendu", "1").exit_code == 1  # neither --texte nor --fichier
    minutes = tmp_path / "compte-rendu.txt"
    minutes.write_text("FA-07 validée, FA-09 à revoir.\n", encoding="utf-8")
    result = cli("copil", "compte-rendu", "1", "--fichier", str(minutes))
    assert result.exit_code == 0, result.output
    assert "Compte rendu du COPIL n° 1 (réuni le jeudi 23 janvier 2025 à 9 h 30)" in result.stdout
    assert "plus de rappel au chargé de mission" in result.stdout
    result = cli("run", "suites", "--au", "26/01/2025")
    assert result.exit_code == 0, result.output
    assert "Rien à envoyer ce jour-là" in result.stdout
    assert [k for k, _, _ in cli.outbox()].count("minutes-reminder") == 0


def test_a_decisions_file_with_errors_lists_them_all_and_records_nothing(
    cli: Cli, tmp_path: Path
) -> None:
    propose(cli, "FA-07")
    assert cli("copil", "planifier", "--date", "23/01/2025").exit_code == 0
    bad = tmp_path / "decisions.csv"
    bad.write_text(DECISIONS + "FA-07;validé;;\n;rejetée;;\nFA-09;;;\n", encoding="utf-8")

    result = cli("run", "copil", "1", "--decisions", str(bad))

    assert result.exit_code == 1
    err = result.stderr
    assert "Erreur : 3 problèmes :" in err
    assert "Ligne 2, colonne « décision » : « validé » n'est pas une décision de COPIL" in err
    assert "Ligne 3, colonne « numéro » : indiquez le numéro de l'action" in err
    assert "Ligne 4, colonne « décision » : indiquez la décision." in err

    impossible = tmp_path / "impossible.csv"
    impossible.write_text(DECISIONS + "FA-07;validée;;\nFA-10;validée;;\n", encoding="utf-8")
    result = cli("run", "copil", "1", "--decisions", str(impossible))

    assert result.exit_code == 1
    assert "Décision n° 2 (FA-10) : Transition impossible pour l'action FA-10" in result.stderr
    assert "Traceback" not in result.output
    assert cli.states("FA-07", "FA-10") == [State.PROPOSED, State.DRAFT]  # all or nothing


def test_reminders_budget_and_delivery_run_by_hand_with_an_as_of_date(cli: Cli) -> None:
    # 16/01/2024: funding dossiers due on 02/01 (the first working day) are 14 days late,
    # the coordinator is alerted.
    result = cli("run", "rappels", "--au", "16/01/2024")

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Rappels d'échéances du mardi 16 janvier 2024 — exécution Prefect «" in out
    # real plurals, never "(s)": « 5 rappels aux pilotes, 1 alerte au chargé de mission »
    assert re.search(r"\d+ rappels? aux pilotes, \d+ alertes? au chargé de mission", out), out
    assert "(s)" not in out
    sent = len(cli.emls())
    assert sent > 1 and f"{sent} envoyés" in out
    again = cli("run", "rappels", "--au", "16/01/2024")
    # The same day twice: nothing new, and the summary says why.
    assert "Aucun nouvel e-mail :" in again.stdout and "du jour déjà en file" in again.stdout
    assert len(cli.emls()) == sent

    result = cli("run", "budget", "2024", "-t", "grand-est-touraine", "--au", "31/12/2024")
    assert result.exit_code == 0, result.output
    assert "Budget 2024 consolidé — version 1" in result.stdout
    xlsx = cli.data / "data" / "reports" / "budget-2024-grand-est-touraine-v1.xlsx"
    assert f"Classeur : {xlsx}" in result.stdout and xlsx.is_file()
    assert "Classeur envoyé aux chargés de mission : 1 e-mail mis en file." in result.stdout
    assert cli.outbox()[-1] == ("budget", "claire.moreau@grand-est-touraine.example", "sent")

    with UnitOfWork(cli.engine) as uow:  # a message left pending (e.g. SMTP was down)
        enqueue(uow, [NewMessage("test:1", "note", "coordinator", ["Claire <c@example.org>"],
                                 "Essai", "Bonjour")])  # fmt: skip
        uow.commit()
    result = cli("run", "envoi")
    assert result.exit_code == 0, result.output
    assert "Envoi des messages en attente — exécution Prefect «" in result.stdout
    assert "1 envoyé," in result.stdout
    assert "aucun message en attente" in result.stdout
    assert cli.outbox()[-1] == ("note", "c@example.org", "sent")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["run", "copil", "1"], 2, "Option manquante : --decisions"),
        (["copil", "planifier", "--date", "31/02/2025"], 2, "date inexistante « 31/02/2025 »"),
        (["copil", "planifier", "--date", "23/01/2025 25:00"], 2, "heure illisible « 25:00 »"),
        (["run", "rappels", "--territoire", "vierzon"], 1, "Territoire inconnu : « vierzon »"),
        (["run", "copil", "1", "--decisions", "d.ods"], 1, "Fichier introuvable : d.ods"),
        (["run", "copil", "9", "--decisions", "{csv}"], 1, "COPIL : aucune réunion n° 9."),
        (["run", "budget", "1999"], 2, "Valeur invalide pour ANNÉE : 1999 n'est pas une année"),
    ],
)
def test_refusals_are_one_french_message_and_the_right_exit_code(
    cli: Cli, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    csv = tmp_path / "decisions.csv"
    csv.write_text(DECISIONS + "FA-07;validée;;\n", encoding="utf-8")
    result = cli(*(a.replace("{csv}", str(csv)) for a in args))
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output and "Usage" not in result.stderr


def test_run_help_lists_the_flows_in_french(cli: Cli) -> None:
    result = cli("run", "--help")
    assert result.exit_code == 0
    for name in ("rappels", "synthese", "budget", "copil", "envoi"):
        assert name in result.stdout
    assert "Lance un flux Prefect à la main" in result.stdout
    help_copil = cli("run", "copil", "--help").stdout
    assert "numéro;décision;conditions;commentaire" in help_copil
