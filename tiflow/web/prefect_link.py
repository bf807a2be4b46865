"""The Prefect server the web application starts flows on and reads runs from.

The same server as the coordinator's commands (`tiflow.prefect_server.prefect_api`), except
that the web application never starts a temporary one: a flow started from a page runs on a
worker or a `tiflow serve` that serves the deployments of prefect.yaml, so without a running
server there is nothing to start it on. In order:

1. ``PREFECT_API_URL`` (environment or Prefect profile), if it answers;
2. else the local server of a running ``tiflow serve`` for ``TIFLOW_DATA_DIR`` (it records its
   address there);
3. else none: the page says so in French, and how to run the flow from the command line.

A run is created from its deployment (``<flow name>/<deployment name>``) through Prefect's API:
the flow itself runs on the worker, with the same code and guards as any other run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from tiflow.deployments import DeploymentSpec, load_flow, load_specs
from tiflow.prefect_server import is_healthy, local_server

NO_SERVER = (
    "Aucun serveur Prefect n'est joignable : les flux se lancent depuis tiflow quand « tiflow"
    " serve » tourne (ou qu'un serveur Prefect et ses workers sont configurés par"
    " PREFECT_API_URL). Demandez à l'exploitant de le démarrer, ou lancez le flux en ligne de"
    " commande."
)
UNKNOWN_DEPLOYMENT = (
    "Le serveur Prefect ne connaît pas ce flux : ses déploiements ne sont pas enregistrés"
    " (« tiflow serve » les enregistre ; en mode workers : « prefect deploy --all »)."
)
PREFECT_ERROR = "Le serveur Prefect n'a pas répondu comme attendu : réessayez dans un instant."

# Prefect's state types, in French.
STATE_LABELS = {
    "SCHEDULED": "Planifiée",
    "PENDING": "En attente",
    "RUNNING": "En cours",
    "COMPLETED": "Terminée",
    "FAILED": "Échouée",
    "CANCELLED": "Annulée",
    "CANCELLING": "Annulation en cours",
    "CRASHED": "Interrompue (plantage)",
    "PAUSED": "En pause (saisie attendue)",
}


class PrefectProblem(Exception):
    """A French message: why the flow could not be started or the runs read."""


@dataclass(frozen=True)
class PrefectLink:
    api_url: str | None
    problem: str = ""

    @property
    def ui_url(self) -> str:
        """Prefect's UI, for the operator (the API's address without ``/api``, as `tiflow
        serve` serves both)."""
        return (self.api_url or "").removesuffix("/api")

    def run_url(self, run_id: str) -> str:
        return f"{self.ui_url}/runs/flow-run/{run_id}" if self.api_url else ""


def find(data_dir: Path) -> PrefectLink:
    from prefect.settings import PREFECT_API_URL

    configured = PREFECT_API_URL.value()
    if configured:
        if is_healthy(configured, timeout=3):
            return PrefectLink(configured)
        return PrefectLink(
            None,
            f"Le serveur Prefect de PREFECT_API_URL ({configured}) ne répond pas : demandez à"
            " l'exploitant de le redémarrer.",
        )
    local = local_server(data_dir)
    return PrefectLink(local) if local else PrefectLink(None, NO_SERVER)


@contextmanager
def client(link: PrefectLink) -> Iterator[Any]:
    """Prefect's client on this server (its basic auth string, as `tiflow serve` sends it)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import temporary_settings

    from tiflow.serve import client_settings

    if link.api_url is None:
        raise PrefectProblem(link.problem or NO_SERVER)
    with temporary_settings(client_settings(link.api_url)), get_client(sync_client=True) as c:
        yield c


@dataclass(frozen=True)
class Startable:
    """A deployment of prefect.yaml the coordinator may start by hand."""

    spec: DeploymentSpec
    flow: Any

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def title(self) -> str:
        return str(self.flow.name)

    @property
    def description(self) -> str:
        return str(self.flow.description or self.spec.description or "")


@cache
def startable() -> dict[str, Startable]:
    """The deployments started by hand (not the ones an event starts), by name."""
    return {
        spec.name: Startable(spec, load_flow(spec.entrypoint))
        for spec in load_specs()
        if not spec.triggers
    }


def start(link: PrefectLink, deployment: str, parameters: dict[str, Any], by: str) -> Any:
    """Create a run of `deployment` (a name of prefect.yaml); returns Prefect's FlowRun."""
    from prefect.exceptions import ObjectNotFound

    item = startable()[deployment]
    try:
        with client(link) as c:
            found = c.read_deployment_by_name(f"{item.flow.name}/{deployment}")
            return c.create_flow_run_from_deployment(
                found.id, parameters=parameters, tags=["tiflow-web", f"par:{by}"]
            )
    except ObjectNotFound:
        raise PrefectProblem(UNKNOWN_DEPLOYMENT) from None
    except PrefectProblem:
        raise
    except Exception as error:  # the API's errors (httpx, Prefect's own): said in French
        raise PrefectProblem(f"{PREFECT_ERROR} ({type(error).__name__})") from None


@dataclass(frozen=True)
class RunRow:
    id: str
    name: str
    flow: str
    deployment: str
    state: str  # French
    state_type: str
    message: str
    expected: datetime | None
    started: datetime | None
    ended: datetime | None
    territory: str | None


def recent_runs(link: PrefectLink, territory: str, limit: int = 30) -> list[RunRow]:
    """The latest runs of tiflow's flows that concern `territory` (or every territory)."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    names = {s.flow.name: s.title for s in startable().values()}
    flows = FlowFilter(name=FlowFilterName(any_=list(names)))
    try:
        with client(link) as c:
            deployments = {d.id: d.name for d in c.read_deployments(flow_filter=flows)}
            flow_names = {f.id: f.name for f in c.read_flows(flow_filter=flows)}
            runs = c.read_flow_runs(
                flow_filter=flows, sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=limit * 3
            )
    except PrefectProblem:
        raise
    except Exception as error:
        raise PrefectProblem(f"{PREFECT_ERROR} ({type(error).__name__})") from None
    rows = [_row(run, flow_names, deployments) for run in runs]
    return [r for r in rows if r.territory in (None, territory)][:limit]


def _row(run: Any, flow_names: dict[Any, str], deployments: dict[Any, str]) -> RunRow:
    state_type = run.state_type.value if run.state_type else "SCHEDULED"
    label = STATE_LABELS.get(state_type, state_type)
    if run.state_name == "Late":
        label = "En retard"
    return RunRow(
        id=str(run.id),
        name=run.name,
        flow=flow_names.get(run.flow_id, ""),
        deployment=deployments.get(run.deployment_id, "") if run.deployment_id else "",
        state=label,
        state_type=state_type,
        message=(run.state.message or "") if run.state else "",
        expected=run.expected_start_time,
        started=run.start_time,
        ended=run.end_time,
        territory=territory_of(run.parameters or {}),
    )


def territory_of(parameters: dict[str, Any]) -> str | None:
    """The territory a run's parameters name (a form's ``territory``), None for all."""
    for value in parameters.values():
        if isinstance(value, dict) and isinstance(value.get("territory"), str):
            return str(value["territory"]) or None
    value = parameters.get("territory")
    return str(value) if isinstance(value, str) and value else None
