"""The flow « Consolider le budget annuel » under the Prefect harness, on both databases."""

from __future__ import annotations

import datetime as dt
import json
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

import flows.budget
from flows.budget import FLOW_NAME, BudgetParameters, BudgetRunResult, consolidate_budget
from flows.usecases.budget.calendar import current_year
from flows.usecases.budget.consolidation import View
from models.tables import BudgetSnapshot
from models.vocabulary import Axis


def _snapshots(engine: Engine) -> list[BudgetSnapshot]:
    with Session(engine) as session:
        return list(session.exec(select(BudgetSnapshot).order_by(BudgetSnapshot.id)).all())  # type: ignore[arg-type]


def test_flow_stores_a_snapshot_writes_the_reports_and_publishes_artifacts(
    flow_env: Engine, example_plan: str
) -> None:
    state = consolidate_budget(
        BudgetParameters(year=2024, territory=example_plan, as_of=date(2024, 6, 1)),
        return_state=True,
    )
    result = state.result()
    assert isinstance(result, BudgetRunResult) and result.version == 1
    run_id = str(state.state_details.flow_run_id)
    [snapshot] = _snapshots(flow_env)
    assert (snapshot.flow_run_id, snapshot.year, snapshot.scope) == (run_id, 2024, example_plan)

    reports = Path(flows.budget.settings().reports_dir)
    assert result.files.xlsx == reports / "budget-2024-grand-est-touraine-v1.xlsx"
    assert result.files.csv.read_bytes().startswith(b"\xef\xbb\xbf")
    wb = openpyxl.load_workbook(result.files.xlsx)
    assert View.FUNDER.label in wb.sheetnames

    keys = ["budget-2024-grand-est-touraine", "budget-2024-grand-est-touraine-synthese"]
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys))
        )
    by_key = {a.key: a for a in artifacts if str(a.flow_run_id) == run_id}
    assert by_key[keys[0]].type == "table"
    assert by_key[keys[1]].type == "markdown"
    assert "# Budget 2024 — Grand Est Touraine" in str(by_key[keys[1]].data)
    table = json.loads(str(by_key[keys[0]].data))
    assert [row["Axe"] for row in table] == [*(a.label for a in Axis), "Total"]

    again = consolidate_budget({"year": 2024, "territory": example_plan, "as_of": "2024-06-01"})
    assert isinstance(again, BudgetRunResult) and again.version == 2
    assert again.files.xlsx.name == "budget-2024-grand-est-touraine-v2.xlsx"


def test_scheduled_run_on_another_january_day_does_nothing(
    flow_env: Engine, example_plan: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flows.budget, "scheduled_day", lambda: date(2025, 1, 3))
    state = consolidate_budget(BudgetParameters(scheduled=True), return_state=True)
    assert state.is_completed()
    assert "n'est pas le premier jour ouvré" in (state.message or "")
    assert _snapshots(flow_env) == []


def test_scheduled_run_on_the_first_working_day_consolidates_the_year_that_starts(
    flow_env: Engine, example_plan: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flows.budget, "scheduled_day", lambda: date(2025, 1, 2))
    result = consolidate_budget(BudgetParameters(scheduled=True))
    assert isinstance(result, BudgetRunResult)
    assert (result.year, result.scope, result.version) == (2025, "*", 1)
    assert result.files.xlsx.name == "budget-2025-tous-territoires-v1.xlsx"
    [snapshot] = _snapshots(flow_env)
    assert snapshot.year == 2025 and snapshot.action_count > 0


def test_parameters_have_french_titles_and_sensible_defaults() -> None:
    params = BudgetParameters(territory="  ")
    assert params.territory is None and params.scheduled is False
    assert params.year == current_year()
    schema = BudgetParameters.model_json_schema()
    assert schema["title"] == "Consolidation du budget annuel"
    titles = {name: field["title"] for name, field in schema["properties"].items()}
    assert titles == {
        "year": "Année budgétaire",
        "territory": "Territoire",
        "as_of": "Date de situation",
        "scheduled": "Lancement planifié",
    }
    assert consolidate_budget.name == FLOW_NAME
    flow_schema = consolidate_budget.parameters.model_dump()
    assert "params" in flow_schema["properties"]
    assert dt.date.today().year - 1 <= params.year <= dt.date.today().year + 1
