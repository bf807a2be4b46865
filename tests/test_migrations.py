"""Migrations build the schema from nothing and match the models exactly."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from alembic import command

from models.db import alembic_config, make_engine, upgrade


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_empty_database_upgrades_to_head_without_drift(
    database_url: Callable[[str], str], backend: str
) -> None:
    engine = make_engine(database_url(backend))
    try:
        upgrade(engine)
        tables = set(sa.inspect(engine).get_table_names())
        assert {"action_sheet", "transition_record", "funding", "copil_meeting"} <= tables
        command.check(alembic_config(engine))  # raises if the models and migrations differ
        upgrade(engine)  # idempotent
        command.downgrade(alembic_config(engine), "base")
        assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(engine)
    finally:
        engine.dispose()
