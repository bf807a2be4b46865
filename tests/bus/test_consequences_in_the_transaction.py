"""A COPIL decision and its consequences (the notice to the pilot, the Prefect events) are one
transaction: committed together by `tiflow run copil` with no Prefect server or worker
attached, or not at all. On SQLite and PostgreSQL; the notice is counted at a real SMTP server
on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows.usecases.bus import HANDLERS, unit_of_work
from flows.usecases.copil import DecisionInput, hold_copil, schedule_copil
from flows.usecases.proposals import propose
from models.event_outbox import EventOutbox
from models.events import ActionTransitioned
from models.lifecycle import State
from models.outbox import OutboxMessage
from models.tables import TransitionRecord
from models.uow import UnitOfWork
from tests.smtp_sink import SmtpSink, body_of, running_sink
from tiflow.example import TERRITORY_CODE
from tiflow.prefect_server import prefect_env

PARIS = ZoneInfo("Europe/Paris")
PILOT_FA07 = "isabelle.roux@uimm-touraine.example"
PILOT_FA09 = "sophie.lambert@cc-tev.example"


def _copil_with(engine: Engine, *numbers: str) -> int:
    with unit_of_work(engine) as uow:
        for number in numbers:
            propose(uow, TERRITORY_CODE, number, recorded_by="Claire Moreau")
        info = schedule_copil(
            uow, TERRITORY_CODE, held_at=datetime(2025, 1, 23, 9, 30), place="Amboise"
        )
        uow.commit()
    return info.copil_id


def _count(engine: Engine, table: Any, *where: Any) -> int:
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(table)
        return int(conn.execute(query.where(*where) if where else query).scalar_one())


def _pilot_of(engine: Engine, number: str) -> str:
    with unit_of_work(engine) as uow:
        person = uow.repo.person(uow.repo.action(TERRITORY_CODE, number).pilot_id)
        assert person is not None
        return person.email


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One Prefect home for the module's ephemeral servers (its database migrates once)."""
    return tmp_path_factory.mktemp("prefect-home")


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with running_sink() as sink:
        yield sink


def test_tiflow_run_copil_without_server_or_worker_tells_the_pilots(
    engine: Engine, example_plan: str, smtp: SmtpSink, prefect_home: Path, tmp_path: Path
) -> None:
    copil_id = _copil_with(engine, "FA-07", "FA-09")
    assert _count(engine, OutboxMessage) == 0  # proposing and scheduling notify nobody
    decisions = tmp_path / "decisions.csv"
    decisions.write_text(
        "numéro;décision;conditions;commentaire\n"
        "FA-07;validée;Bilan à six mois;\n"
        "FA-09;révision demandée;;Chiffrage à préciser\n",
        encoding="utf-8",
    )
    # No PREFECT_API_URL, no `tiflow serve`, no worker: Prefect's temporary local server only.
    env = prefect_env(dict(os.environ), prefect_home)
    env.update(
        TIFLOW_DATABASE_URL=engine.url.render_as_string(hide_password=False),
        TIFLOW_DATA_DIR=str(tmp_path / "data"),
        TIFLOW_NOTIFY_CONFIG=f"pilots,copil,coordinator={smtp.url()}",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
        NO_COLOR="1",
    )
    command = [sys.executable, "-m", "tiflow", "run", "copil", str(copil_id)]
    done = subprocess.run(
        [*command, "--decisions", str(decisions), "--le", "23/01/2025 12:00"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    (validated,) = smtp.messages_to(PILOT_FA07)
    assert validated["Subject"] == "Action FA-07 validée en COPIL\u00a0: prochaines étapes"
    assert "Bilan à six mois" in body_of(validated)
    (revision,) = smtp.messages_to(_pilot_of(engine, "FA-09"))
    assert revision["Subject"] == "Action FA-09\u00a0: révision demandée par le COPIL"
    text = body_of(revision)
    assert "Ce qu'il faut changer\u00a0: Chiffrage à préciser" in text
    assert "À faire avant le prochain COPIL" in text
    # Written by the run that recorded the decisions: same correlation id as the history rows.
    with engine.connect() as conn:
        runs = set(
            conn.execute(
                sa.select(TransitionRecord.__table__.c.correlation_id).where(  # type: ignore[attr-defined]
                    TransitionRecord.__table__.c.copil_id == copil_id  # type: ignore[attr-defined]
                )
            ).scalars()
        )
        notices = set(
            conn.execute(sa.select(OutboxMessage.__table__.c.correlation_id)).scalars()  # type: ignore[attr-defined]
        )
    assert len(runs) == 1 and runs == notices and None not in runs
    # Its Prefect events went to the temporary server after commit, with those the setup left
    # waiting (proposals and scheduling, committed here without a Prefect API).
    e = EventOutbox.__table__.c  # type: ignore[attr-defined]
    assert _count(engine, EventOutbox, e.published_at.is_(None)) == 0
    assert _count(engine, EventOutbox, e.correlation_id.in_(runs)) == 3  # 2 decisions, 1 held


def test_a_decision_rolled_back_enqueues_nothing(engine: Engine, example_plan: str) -> None:
    copil_id = _copil_with(engine, "FA-07")
    events_before = _count(engine, EventOutbox)
    with unit_of_work(engine) as uow:
        hold_copil(uow, copil_id, [DecisionInput("FA-07", State.VALIDATED)])
        uow.flush()
        assert uow.events  # decided, but never committed
    assert _count(engine, OutboxMessage) == 0
    assert _count(engine, EventOutbox) == events_before
    with unit_of_work(engine) as uow:
        assert uow.repo.action(TERRITORY_CODE, "FA-07").state is State.PROPOSED


def test_a_failing_consequence_rolls_the_decision_back(engine: Engine, example_plan: str) -> None:
    copil_id = _copil_with(engine, "FA-07")
    events_before = _count(engine, EventOutbox)

    def mail_server_full(event: ActionTransitioned, uow: UnitOfWork) -> None:
        raise RuntimeError("consequence failed")

    handlers = {**HANDLERS, ActionTransitioned: [*HANDLERS[ActionTransitioned], mail_server_full]}
    with (
        pytest.raises(RuntimeError, match="consequence failed"),
        UnitOfWork(engine, handlers=handlers) as uow,
    ):
        hold_copil(uow, copil_id, [DecisionInput("FA-07", State.VALIDATED)])
        uow.commit()
    assert _count(engine, OutboxMessage) == 0
    assert _count(engine, EventOutbox) == events_before
    assert (
        _count(engine, TransitionRecord, TransitionRecord.__table__.c.to_state == "validated") == 0
    )  # type: ignore[attr-defined]
    with unit_of_work(engine) as uow:
        assert uow.repo.action(TERRITORY_CODE, "FA-07").state is State.PROPOSED


def test_each_decision_gets_its_notice_once_even_if_its_events_are_handled_twice(
    engine: Engine, example_plan: str
) -> None:
    copil_id = _copil_with(engine, "FA-07", "FA-09", "FA-10")
    before = _count(engine, EventOutbox)  # the proposals and the scheduling
    decisions = [
        DecisionInput("FA-07", State.VALIDATED),
        DecisionInput("FA-09", State.REJECTED, comment="Hors du périmètre du contrat"),
        DecisionInput("FA-10", State.DEFERRED),
    ]
    with unit_of_work(engine) as uow:
        hold_copil(uow, copil_id, decisions)
        uow.commit()
        events = list(uow.events)
    kinds = _kinds(engine)
    assert kinds["rejection"] == 1 and kinds["deferral"] == 1 and kinds["next-steps"] >= 1
    stored = _count(engine, EventOutbox)
    assert stored - before == 4  # three decisions and the meeting held
    with unit_of_work(engine) as uow:  # a second trigger for the same transitions
        uow.events.extend(events)
        uow.commit()
    assert _kinds(engine) == kinds
    assert _count(engine, EventOutbox) == stored


def _kinds(engine: Engine) -> dict[str, int]:
    m = OutboxMessage.__table__.c  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(m.kind, sa.func.count()).group_by(m.kind)).all()
    return {kind: n for kind, n in rows}
