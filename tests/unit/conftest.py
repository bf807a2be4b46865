"""Unit tests of the rules: plain facts in, decisions out — no database, no Prefect server.

Any attempt to open a database engine here fails the test: these tests must stay fast."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def no_database(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a unit test opened a database engine")

    import sqlalchemy
    import sqlmodel

    import models.db

    monkeypatch.setattr(sqlalchemy, "create_engine", refused)
    monkeypatch.setattr(sqlmodel, "create_engine", refused)
    monkeypatch.setattr(models.db, "make_engine", refused)
