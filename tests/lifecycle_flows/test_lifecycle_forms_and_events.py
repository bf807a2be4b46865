"""The coordinator's forms (what Prefect's UI shows), the event mapping, and the CLI runner."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import get_args, get_type_hints

import pytest
from pydantic import BaseModel, ValidationError

from flows._shared import artifact_key
from flows.copil import hold_copil, hold_copil_interactively, schedule_copil
from flows.events import to_prefect
from flows.forms import (
    CopilDecisionsForm,
    CopilDecisionsInput,
    DecisionForm,
    FundingForm,
    IndicatorValueForm,
    Outcome,
)
from flows.funding import record_funding
from flows.progress import abandon_action, complete_action, report_progress, start_action
from flows.proposals import propose_action
from models.events import ActionTransitioned, FundingRecorded
from models.lifecycle import State

# The coordinator's flows, each taking one form (what `python -m flows` ran; the French
# commands of `tiflow` now run their use cases: tests/cli/test_cli_lifecycle_commands.py).
FLOWS = {
    "proposer": propose_action,
    "planifier-copil": schedule_copil,
    "tenir-copil": hold_copil,
    "saisir-copil": hold_copil_interactively,
    "financer": record_funding,
    "avancement": report_progress,
    "demarrer": start_action,
    "terminer": complete_action,
    "abandonner": abandon_action,
}


def _forms(model: type[BaseModel]) -> Iterator[type[BaseModel]]:
    """The model and every form nested in its fields (lists and optionals included)."""
    yield model
    for field in model.model_fields.values():
        for candidate in (field.annotation, *get_args(field.annotation)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                yield from _forms(candidate)


def _untitled(model: type[BaseModel]) -> list[str]:
    return [
        f"{form.__name__}.{name}"
        for form in _forms(model)
        for name, field in form.model_fields.items()
        if not (field.title and field.description)
    ]


@pytest.mark.parametrize("key", sorted(FLOWS))
def test_every_form_field_has_a_french_title_and_description(key: str) -> None:
    flow = FLOWS[key]
    schema = flow.parameters.model_dump()
    ((parameter, top),) = schema["properties"].items()
    # pydantic leaves out a title equal to the referenced form's own title
    form = schema["definitions"][top["$ref"].rsplit("/", 1)[1]]
    assert top.get("title", form["title"]) != parameter and top.get("description")
    hints = get_type_hints(flow.fn, include_extras=True)
    form_model = get_args(hints[parameter])[0]  # Annotated[Form, parameter(...)]
    assert _untitled(form_model) == []
    assert flow.description and not flow.description.isascii()  # French prose


def test_the_pause_form_has_french_labels_and_is_prefilled_with_the_agenda() -> None:
    prefilled = CopilDecisionsInput.prefilled(
        "Ordre du jour", [DecisionForm(number="FA-07", outcome=Outcome.NOT_EXAMINED)]
    )
    assert _untitled(prefilled) == []
    schema = prefilled.model_json_schema()
    assert schema["properties"]["decisions"]["default"] == [
        {"number": "FA-07", "outcome": "non examinée", "conditions": "", "comment": ""}
    ]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("12 500,50 €", "12500.50"),
        ("12\u202f500,50\u00a0€", "12500.50"),
        ("1.250.000,00", "1250000.00"),
        ("12500.5", "12500.5"),
        (40000, "40000"),
        (0.1, "0.1"),
    ],
)
def test_amounts_accept_french_writing_and_stay_exact(typed: object, expected: str) -> None:
    form = FundingForm(number="FA-07", funder="Région", granted=typed)  # type: ignore[arg-type]
    assert form.granted == Decimal(expected)


def test_outcomes_are_french_words_and_accept_state_names() -> None:
    decision = DecisionForm(number="FA-07", outcome="validated")  # type: ignore[arg-type]
    assert decision.outcome is Outcome.VALIDATED and decision.outcome.state is State.VALIDATED
    assert DecisionForm(number="FA-07", outcome="Révision demandée").outcome.state is (  # type: ignore[arg-type]
        State.REVISION_REQUESTED
    )
    assert Outcome.NOT_EXAMINED.state is None
    with pytest.raises(ValidationError):
        CopilDecisionsForm(copil_id=1, decisions=[{"number": "FA-07", "outcome": "peut-être"}])  # type: ignore[list-item]


def test_a_transition_becomes_an_event_on_the_action_with_pilot_copil_and_run() -> None:
    run_id = "0b7e6c1e-7d0f-4c1e-9d5a-3f1c2b4a5e6f"
    spec = to_prefect(
        ActionTransitioned(
            territory_code="grand-est-touraine",
            number="FA-07",
            action_id=7,
            title="Plateforme Ressources humaines",
            from_state=State.PROPOSED,
            to_state=State.VALIDATED,
            at=datetime(2024, 1, 25, 8, 30, tzinfo=UTC),
            actor="COPIL du 25/01/2024",
            reason="Conditions : bilan à six mois",
            correlation_id=run_id,
            copil_id=3,
            pilot_email="isabelle.roux@uimm-touraine.example",
        )
    )
    assert spec["event"] == "tiflow.action.validated"
    assert spec["resource"]["prefect.resource.id"] == "tiflow.action.grand-est-touraine.FA-07"
    assert spec["resource"]["tiflow.state"] == "validated"
    roles = {r["prefect.resource.role"]: r["prefect.resource.id"] for r in spec["related"]}
    assert roles == {
        "territory": "tiflow.territory.grand-est-touraine",
        "pilot": "tiflow.person.isabelle.roux@uimm-touraine.example",
        "copil": "tiflow.copil.3",
        "flow-run": f"prefect.flow-run.{run_id}",
    }
    assert spec["payload"]["from_state"] == "proposed"
    assert spec["payload"]["to_label"] == "validée"
    assert spec["payload"]["reason"] == "Conditions : bilan à six mois"


def test_funding_events_carry_exact_amounts_as_text() -> None:
    spec = to_prefect(
        FundingRecorded(
            territory_code="grand-est-touraine",
            number="FA-07",
            action_id=7,
            title="Plateforme Ressources humaines",
            funder="OPCO 2i",
            year=2024,
            requested=Decimal("40000.00"),
            granted=Decimal("39999.99"),
            paid=Decimal("0.00"),
            decision_date=date(2024, 3, 1),
            convention_ref=None,
            budget_total=Decimal("140000.00"),
            granted_total=Decimal("89999.99"),
            at=datetime(2024, 3, 1, tzinfo=UTC),
            actor="Claire Moreau",
        )
    )
    assert spec["event"] == "tiflow.funding.recorded"
    assert spec["payload"]["granted"] == "39999.99"
    assert spec["payload"]["missing"] == "50000.01"
    assert "flow-run" not in {r["prefect.resource.role"] for r in spec["related"]}


def test_artifact_keys_keep_only_lowercase_letters_digits_and_dashes() -> None:
    assert artifact_key("COPIL", "Grand Est Touraine", "2024-01-25", "Décisions") == (
        "copil-grand-est-touraine-2024-01-25-decisions"
    )
    assert artifact_key("financement", "FA-07", "Région", 2024) == "financement-fa-07-region-2024"


def test_each_flow_becomes_a_deployment_whose_form_keeps_the_french_labels() -> None:
    deployment = FLOWS["tenir-copil"].to_deployment(name="à la main")
    schema = deployment._parameter_openapi_schema.model_dump()
    decisions = schema["definitions"]["CopilDecisionsForm"]["properties"]["decisions"]
    assert (decisions["title"], deployment.name) == ("Décisions", "à la main")


def test_indicator_values_accept_a_decimal_comma() -> None:
    value = IndicatorValueForm(name="Taux de couverture", value="99,5")  # type: ignore[arg-type]
    assert value.value == Decimal("99.5")
