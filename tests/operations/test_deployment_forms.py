"""The run form of every deployment, as Prefect builds it from the flow's signature: French
headings, fields and help, and optional fields typable at once (no "X | None" toggle)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from flows.forms import CopilDecisionsInput, FundingForm, ProposalForm
from tiflow.deployments import DeploymentSpec, load_flow, load_specs

# French words spelt like the field's Python name: a title equal to the name is fine for them.
SAME_IN_FRENCH = {"description", "budget", "conditions"}
SPECS = load_specs()


def _schema(spec: DeploymentSpec) -> dict[str, Any]:
    from prefect.utilities.callables import parameter_schema

    return parameter_schema(load_flow(spec.entrypoint)).model_dump_for_openapi()


def _fields(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(where, name, field schema) of the parameters and of every field of their models."""
    found = [("paramètre", name, field) for name, field in schema.get("properties", {}).items()]
    for model, definition in schema.get("definitions", {}).items():
        for name, field in definition.get("properties", {}).items():
            found.append((model, name, field))
    return found


def _nullable(field: dict[str, Any]) -> bool:
    return any(option.get("type") == "null" for option in field.get("anyOf", []))


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_every_heading_and_field_of_the_form_is_french(spec: DeploymentSpec) -> None:
    schema = _schema(spec)
    assert schema["properties"], "a form without parameters"
    for where, name, field in _fields(schema):
        title = field.get("title") or ""
        assert title, f"{where}.{name}: no title (the UI falls back to the Python name)"
        if name not in SAME_IN_FRENCH:
            assert title.lower().replace(" ", "_") != name, f"{where}.{name}: title {title!r}"
        assert field.get("description"), f"{where}.{name}: no help text"


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_optional_fields_are_typable_at_once(spec: DeploymentSpec) -> None:
    schema = _schema(spec)
    toggles = [f"{where}.{name}" for where, name, field in _fields(schema) if _nullable(field)]
    assert toggles == []
    # Choice lists are inline: no definition titled with an English enum name.
    assert all("properties" in d for d in schema.get("definitions", {}).values())


def test_the_heading_of_each_coordinator_form_names_what_it_does() -> None:
    headings = {
        spec.name: next(iter(_schema(spec)["properties"].values()))["title"] for spec in SPECS
    }
    assert headings["tenir-un-copil"] == "Réunion et décisions"
    assert headings["demarrer-une-action"] == "Action à démarrer"
    assert headings["terminer-une-action"] == "Action à terminer"
    assert headings["rappels-quotidiens"] == "Jour de référence"
    assert headings["budget-annuel"] == "Consolidation"


def test_the_resume_form_of_a_paused_copil_has_no_toggle() -> None:
    schema = CopilDecisionsInput.model_json_schema()
    assert [n for n, f in schema["properties"].items() if _nullable(f)] == []


def test_empty_optional_fields_mean_not_given_and_amounts_are_read_in_french() -> None:
    form = FundingForm(
        number="FA-07",
        funder="Région Centre-Val de Loire",
        year="",
        requested="",
        granted="12 500,50 €",
        decision_date="",
        convention_ref=" ",
    )
    assert (form.year, form.requested, form.decision_date, form.convention_ref) == (
        None,
        None,
        None,
        None,
    )
    assert form.granted == Decimal("12500.50")
    proposal = ProposalForm(
        title="Plateforme de formation", firm_commitment="oui", priority="", start_date="2025-03-01"
    )
    assert proposal.firm_commitment is True and proposal.priority is None
    assert proposal.start_date == date(2025, 3, 1)


def test_a_form_with_only_its_required_fields_passes_the_servers_parameter_check() -> None:
    """Prefect's API checks a run's parameters against the deployment's schema: a form left
    empty except its required fields must pass (no null default sent for the optional ones)."""
    from prefect.utilities.schema_tools import validate

    spec = next(s for s in SPECS if s.name == "enregistrer-un-financement")
    parameters = {"funding": {"number": "FA-07", "funder": "Région"}}
    validate(parameters, _schema(spec), raise_on_error=True, ignore_required=False)
    spec = next(s for s in SPECS if s.name == "rappels-quotidiens")
    validate({}, _schema(spec), raise_on_error=True, ignore_required=False)
