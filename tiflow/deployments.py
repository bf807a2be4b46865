"""prefect.yaml is the one definition of tiflow's deployments (schedules, triggers, limits).

`prefect deploy --all` reads it for the scale-out mode (workers); `tiflow serve` reads it here
and serves the same deployments from one process for the one-machine mode.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PREFECT_YAML = PROJECT_ROOT / "prefect.yaml"


@dataclass(frozen=True)
class DeploymentSpec:
    name: str
    entrypoint: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    schedules: list[dict[str, Any]] = field(default_factory=list)
    triggers: list[dict[str, Any]] = field(default_factory=list)
    concurrency_limit: Any = None
    tags: list[str] = field(default_factory=list)


def load_specs(path: Path = PREFECT_YAML) -> list[DeploymentSpec]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        DeploymentSpec(
            name=item["name"],
            entrypoint=item["entrypoint"],
            description=item.get("description", ""),
            parameters=item.get("parameters") or {},
            schedules=item.get("schedules") or [],
            triggers=item.get("triggers") or [],
            concurrency_limit=item.get("concurrency_limit"),
            tags=item.get("tags") or [],
        )
        for item in document["deployments"]
    ]


def load_flow(entrypoint: str, root: Path = PROJECT_ROOT) -> Any:
    """`flows/reminders.py:deadline_reminders` -> the flow object."""
    file_part, attribute = entrypoint.rsplit(":", 1)
    module_name = file_part.removesuffix(".py").replace("/", ".")
    spec = importlib.util.find_spec(module_name)
    if spec is None:
        raise LookupError(f"entrypoint module not found: {entrypoint}")
    module = importlib.import_module(module_name)
    return getattr(module, attribute)


def runner_deployments(specs: list[DeploymentSpec]) -> list[Any]:
    """The specs as Prefect RunnerDeployments, ready for `prefect.serve`."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
    from prefect.schedules import Cron

    deployments = []
    for spec in specs:
        limit = spec.concurrency_limit
        if isinstance(limit, dict):
            limit = ConcurrencyLimitConfig(**limit)
        deployments.append(
            load_flow(spec.entrypoint).to_deployment(
                name=spec.name,
                description=spec.description or None,
                parameters=spec.parameters,
                schedules=[
                    Cron(
                        s["cron"],
                        timezone=s.get("timezone"),
                        day_or=s.get("day_or", True),
                        active=s.get("active", True),
                    )
                    for s in spec.schedules
                ],
                triggers=[DeploymentEventTrigger(**t) for t in spec.triggers],
                concurrency_limit=limit,
                tags=spec.tags,
            )
        )
    return deployments
