"""`tiflow exemple` loads the Grand Est Touraine example plan into the current database without
playing the year: twelve draft sheets, no history, no e-mail; never twice."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from models.lifecycle import State
from models.outbox import OutboxMessage
from models.tables import ActionSheet, TransitionRecord
from tests.cli.conftest import Tiflow


def _count(engine: Engine, table: type) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_exemple_loads_the_plan_as_drafts_without_playing_the_year(
    tiflow: Tiflow, engine: Engine
) -> None:
    result = tiflow("exemple")
    assert result.exit_code == 0, result.output
    assert "Exemple chargé : Grand Est Touraine" in result.stdout
    a = ActionSheet.__table__.c  # type: ignore[attr-defined]
    with engine.connect() as conn:
        states = conn.execute(sa.select(a.number, a.state).order_by(a.number)).all()
    assert [n for n, _ in states] == [f"FA-{i:02d}" for i in range(1, 13)]
    assert {State(s) for _, s in states} == {State.DRAFT}
    assert _count(engine, TransitionRecord) == 0 and _count(engine, OutboxMessage) == 0


def test_exemple_refuses_to_load_the_plan_twice(tiflow: Tiflow, engine: Engine) -> None:
    assert tiflow("exemple").exit_code == 0
    again = tiflow("exemple")
    assert again.exit_code == 1
    assert "Le territoire grand-est-touraine est déjà dans la base" in again.output
    assert "rien n'a été chargé" in again.output
    assert _count(engine, ActionSheet) == 12
