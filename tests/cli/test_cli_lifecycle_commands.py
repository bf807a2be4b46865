"""`tiflow proposer|financer|avancement|demarrer|terminer|abandonner`: each lifecycle step in
French, without JSON, on both databases; the notices they call for reach a real SMTP server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import Result

from flows.usecases.bus import unit_of_work
from flows.usecases.copil import DecisionInput, hold_copil, schedule_copil
from models.event_outbox import EventOutbox
from models.lifecycle import State
from models.tables import Funding, TransitionRecord
from tests.smtp_sink import SmtpSink, running_sink
from tiflow.example import TERRITORY_CODE

PILOT_FA07 = "isabelle.roux@uimm-touraine.example"


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpSink]:
    with running_sink() as sink:
        monkeypatch.setenv("TIFLOW_NOTIFY_CONFIG", f"pilots,copil,coordinator={sink.url()}")
        monkeypatch.delenv("PREFECT_API_URL", raising=False)
        yield sink


def _state(engine: Engine, number: str) -> State:
    with unit_of_work(engine) as uow:
        return State(uow.repo.action(TERRITORY_CODE, number).state)


def _ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout.replace("\u202f", " ").replace("\u00a0", " ")


def _validate(engine: Engine, number: str) -> None:
    with unit_of_work(engine) as uow:
        copil = schedule_copil(uow, TERRITORY_CODE, held_at=datetime(2025, 1, 23, 9, 30))
        hold_copil(uow, copil.copil_id, [DecisionInput(number, State.VALIDATED)])
        uow.commit()


def test_an_action_goes_from_proposal_to_completion_on_the_command_line(
    tiflow: object, engine: Engine, example_plan: str, smtp: SmtpSink
) -> None:
    run = tiflow  # type: ignore[assignment]
    out = _ok(run("proposer", "FA-07", "--saisi-par", "Claire Moreau"))  # type: ignore[operator]
    assert "FA-07 « Plateforme" in out and "brouillon → proposée" in out
    assert "Aucun COPIL planifié" in out
    _validate(engine, "FA-07")

    out = _ok(
        run(  # type: ignore[operator]
            "financer", "FA-07", "--financeur", "État", "--annee", "2024", "--accorde", "50 000",
            "--decision-le", "01/03/2025", "--dossier-avant", "15/02/2025",
            "--dossier-depose", "10/02/2025",
            "--decision-attendue", "28/02/2025", "--convention", "CONV-2025-017",
        )
    )  # fmt: skip
    # The example funds FA-07 per funder and year (2024, 2025): the year is named.
    assert "FA-07 : financement État 2024 enregistré" in out
    with engine.connect() as conn:
        line = conn.execute(
            sa.select(Funding.__table__).where(
                Funding.__table__.c.convention_ref == "CONV-2025-017"
            )
        ).one()  # type: ignore[attr-defined]
    assert (line.dossier_due, line.decision_expected) == (date(2025, 2, 15), date(2025, 2, 28))
    assert line.decision_date == date(2025, 3, 1) and line.year == 2024
    assert line.dossier_filed_on == date(2025, 2, 10)
    year = ("--annee", "2024")
    _ok(run("financer", "FA-07", "--financeur", "OPCO 2i", *year, "--accorde", "40 000,00 €"))  # type: ignore[operator]
    out = _ok(run("financer", "FA-07", "--financeur", "CC TEV", *year, "--accorde", "50.000,00"))  # type: ignore[operator]
    assert _state(engine, "FA-07") is State.FUNDED
    # The kick-off, to the pilot and the coordinator (and the validation's next steps, which
    # were waiting: the COPIL was recorded here without a delivery round).
    assert re.search(r"Avis : [2-9] envoyés, 0 à réessayer, 0 en échec", out), out
    subjects = [m["Subject"] for m in smtp.messages_to(PILOT_FA07)]
    assert subjects.count("Action FA-07 financée\u00a0: lancement") == 1
    assert subjects.count("Action FA-07 validée en COPIL\u00a0: prochaines étapes") == 1
    # Published to the Prefect API if this process has one (the session harness, when an
    # earlier test started it), else waiting in the event outbox: committed either way.
    assert re.search(r"événements? Prefect (publiés?|en attente)", out), out

    out = _ok(run("demarrer", "FA-07"))  # type: ignore[operator]
    assert "FA-07 « Plateforme" in out and "financée → en cours" in out
    out = _ok(
        run(  # type: ignore[operator]
            "avancement", "FA-07", "--jalon", "Ouverture de la plateforme",
            "--indicateur", "Recrutements accompagnés=45", "--note", "Plateforme ouverte.",
        )
    )  # fmt: skip
    assert "jalons franchis : Ouverture de la plateforme ; note écrite" in out
    assert "Recrutements accompagnés : 45 / 120" in out
    out = _ok(run("terminer", "FA-07", "--motif", "Objectifs atteints"))  # type: ignore[operator]
    assert "en cours → terminée" in out and _state(engine, "FA-07") is State.COMPLETED
    with engine.connect() as conn:
        history = conn.execute(
            sa.select(TransitionRecord.__table__.c.correlation_id)  # type: ignore[attr-defined]
        ).scalars()
        assert any(c and c.startswith("tiflow-cli-") for c in history)
        waiting = conn.execute(sa.select(sa.func.count()).select_from(EventOutbox)).scalar_one()
    assert waiting > 0


def test_abandon_needs_a_reason_and_bad_amounts_are_refused_in_french(
    tiflow: object, engine: Engine, example_plan: str, smtp: SmtpSink
) -> None:
    run = tiflow  # type: ignore[assignment]
    missing = run("abandonner", "FA-12")  # type: ignore[operator]
    assert missing.exit_code == 2 and "--motif" in missing.output
    out = _ok(run("abandonner", "FA-12", "--motif", "Projet repris par la Région"))  # type: ignore[operator]
    assert "→ abandonnée" in out and _state(engine, "FA-12") is State.ABANDONED

    bad = run("financer", "FA-07", "--financeur", "État", "--accorde", "12 50")  # type: ignore[operator]
    assert bad.exit_code == 2 and "nombre illisible « 12 50 »" in bad.output
    refused = run("demarrer", "FA-07")  # type: ignore[operator]
    assert refused.exit_code == 1
    assert "Transition impossible pour l'action FA-07" in refused.output
    assert _state(engine, "FA-07") is State.DRAFT


def test_the_help_lists_each_lifecycle_step_in_french(tiflow: object) -> None:
    run = tiflow  # type: ignore[assignment]
    out = _ok(run("--help"))  # type: ignore[operator]
    for name in ("proposer", "financer", "avancement", "demarrer", "terminer", "abandonner"):
        assert name in out
    out = _ok(run("financer", "--help"))  # type: ignore[operator]
    for option in (
        "--financeur",
        "--accorde",
        "--dossier-avant",
        "--dossier-depose",
        "--decision-attendue",
    ):
        assert option in out
    assert "Enregistre la part d'un financeur" in out
