"""prefect.yaml: every deployment loads; both modes (deploy, serve) read the same definitions."""

from __future__ import annotations

import pytest

from tiflow.deployments import load_flow, load_specs, runner_deployments

SPECS = load_specs()
# Helpers of the flows, and the demo's simulated year (`tiflow demo`), are nothing to deploy.
NOT_PROCESSES = {"runtime.py", "events.py", "forms.py", "demo_year.py"}


def test_every_flow_module_has_a_deployment() -> None:
    from pathlib import Path

    deployed = {spec.entrypoint.split(":")[0] for spec in SPECS}
    modules = {
        f"flows/{path.name}"
        for path in Path("flows").glob("*.py")
        if not path.name.startswith("_") and path.name not in NOT_PROCESSES
    }
    assert modules <= deployed, f"flows without a deployment: {sorted(modules - deployed)}"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_each_entrypoint_is_a_flow_and_its_parameters_validate(spec) -> None:  # type: ignore[no-untyped-def]
    flow = load_flow(spec.entrypoint)
    assert hasattr(flow, "to_deployment")
    assert set(spec.parameters) <= set(flow.parameters.properties)
    if spec.schedules or spec.triggers:  # unattended: the configured parameters must be enough
        # A triggered run gets its parameters from the event: "1" stands for a rendered template.
        from_events = {k: "1" for t in spec.triggers for k in t.get("parameters", {})}
        flow.validate_parameters({**spec.parameters, **from_events})  # raises if ill-typed


def test_sweeps_never_overlap_and_are_scheduled_in_paris_time() -> None:
    scheduled = [s for s in SPECS if s.schedules]
    assert {s.name for s in scheduled} == {
        "rappels-quotidiens",
        "syntheses-copil",
        "suites-copil",
        "envoi-messages-en-attente",
        "budget-annuel",
    }
    for spec in scheduled:
        assert all(s["timezone"] == "Europe/Paris" for s in spec.schedules)
        assert spec.concurrency_limit["limit"] == 1


def test_serve_mode_builds_the_same_deployments_with_schedules_and_triggers() -> None:
    deployments = {d.name: d for d in runner_deployments(SPECS)}
    assert set(deployments) == {s.name for s in SPECS}
    reminders = deployments["rappels-quotidiens"]
    (schedule,) = reminders.schedules
    assert schedule.schedule.cron == "0 8 * * *" and schedule.schedule.timezone == "Europe/Paris"
    assert reminders.concurrency_limit == 1
    (trigger,) = deployments["planifier-syntheses-copil"].triggers
    assert trigger.expect == {"tiflow.copil.scheduled"}
    assert deployments["budget-annuel"].parameters == {"params": {"scheduled": True}}


def test_decision_notices_need_no_triggered_deployment() -> None:
    """The bus enqueues them with the decision (flows/usecases/bus.py): a deployment reacting
    to `tiflow.action.validated` / `.funded` would be a second path that can be missed."""
    expected = {e for s in SPECS for t in s.triggers for e in t.get("expect", [])}
    assert expected == {"tiflow.copil.scheduled"}


def test_no_secret_in_prefect_yaml() -> None:
    from pathlib import Path

    text = Path("prefect.yaml").read_text(encoding="utf-8").lower()
    for needle in ("password", "mailto://", "mailtos://", "postgresql://", "api_key", "token"):
        assert needle not in text
