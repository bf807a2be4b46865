"""Every Prefect form refuses a name or title with a line break, and a « Saisi par » name that
looks like an address; ordinary French names and titles pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prefect.input import RunInput
from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import select

from flows import forms
from flows.forms import ONE_LINE_FIELDS, Form
from models.tables import CopilMeeting
from models.uow import UnitOfWork
from tests.cli.conftest import run_on

BASES = (Form, RunInput)

FORMS = sorted(
    (
        cls
        for cls in vars(forms).values()
        if isinstance(cls, type) and issubclass(cls, (Form, RunInput)) and cls not in BASES
    ),
    key=lambda cls: cls.__name__,
)
CHECKED = [
    (cls, name)
    for cls in FORMS
    for name in cls.model_fields
    if name in ONE_LINE_FIELDS or name == "recorded_by"
]


def _errors_at(cls: type[BaseModel], name: str, value: Any) -> list[str]:
    """Messages of the errors `value` causes at field `name` (other fields may be missing)."""
    try:
        cls.model_validate({name: value})
    except ValidationError as error:
        return [e["msg"] for e in error.errors() if e["loc"][0] == name]
    return []


def test_the_rule_reaches_the_fields_that_name_things() -> None:
    names = {(cls.__name__, name) for cls, name in CHECKED}
    assert {
        ("ProposalForm", "title"),
        ("ProposalForm", "partners"),
        ("MilestoneForm", "title"),
        ("IndicatorForm", "name"),
        ("CopilScheduleForm", "place"),
        ("FundingForm", "funder"),
        ("StepForm", "recorded_by"),
        ("CopilDecisionsInput", "recorded_by"),  # the paused COPIL run's form
    } <= names


@pytest.mark.parametrize(("cls", "name"), CHECKED, ids=lambda v: getattr(v, "__name__", v))
def test_a_line_break_is_refused_in_every_form(cls: type[BaseModel], name: str) -> None:
    is_list = "list" in str(cls.model_fields[name].annotation)
    for bad in ("Jalon 1\nBcc: tous@exemple.example", "Salle\r\ndu conseil", "Fin\u2028"):
        messages = _errors_at(cls, name, [bad] if is_list else bad)
        assert any("retour à la ligne interdit" in m for m in messages), (bad, messages)
    good = "Château-Renault, salle « Jean Moulin »"
    assert _errors_at(cls, name, [good] if is_list else good) == []


@pytest.mark.parametrize("cls", [c for c, n in CHECKED if n == "recorded_by"], ids=str)
def test_recorded_by_cannot_look_like_an_address(cls: type[BaseModel]) -> None:
    for bad in ("Claire Moreau <claire@intrus.example>", "claire@intrus.example", "a > b"):
        messages = _errors_at(cls, "recorded_by", bad)
        assert any("« < », « > » et « @ » interdits" in m for m in messages), (bad, messages)
    assert _errors_at(cls, "recorded_by", "Claire Moreau") == []


def test_the_command_line_refuses_a_place_with_a_line_break_in_french(
    engine: Engine, example_plan: str, tmp_path: Path
) -> None:
    url = engine.url.render_as_string(hide_password=False)
    args = ["copil", "planifier", "--date", "23/01/2025", "--lieu", "Salle\nBcc: tous@x.example"]

    result = run_on(url, tmp_path)(*args, "--saisi-par", "Claire <claire@intrus.example>")

    assert result.exit_code == 1, result.output
    assert "Lieu : retour à la ligne interdit ici" in result.output
    assert "Saisi par : caractères « < », « > » et « @ » interdits dans un nom" in result.output
    assert "Traceback" not in result.output
    with UnitOfWork(engine) as uow:
        assert uow.session.exec(select(CopilMeeting)).all() == []
