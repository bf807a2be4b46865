"""`tiflow serve` (one-machine mode) and `tiflow deploiements` (what prefect.yaml defines)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tiflow.cli import app, command
from tiflow.cli.common import console
from tiflow.deployments import PREFECT_YAML, load_specs


@command(app, "serve")
def serve_command(
    port: Annotated[
        int, typer.Option("--port", help="Port du serveur Prefect local (interface et API).")
    ] = 4200,
    deploiements: Annotated[
        Path,
        typer.Option(
            "--deploiements",
            metavar="FICHIER",
            help="Fichier des déploiements à servir (par défaut : le prefect.yaml de tiflow).",
            exists=True,
            dir_okay=False,
            show_default=False,
        ),
    ] = PREFECT_YAML,
) -> None:
    """Fait tourner tiflow seul sur cette machine : serveur Prefect local, planifications et
    déclencheurs de prefect.yaml. Arrêt par Ctrl-C.

    Si PREFECT_API_URL est défini, utilise ce serveur au lieu d'en démarrer un. Tant qu'il
    tourne, les commandes « tiflow run … » utilisent son serveur."""
    from tiflow.serve import serve

    console.print("Démarrage de tiflow (planifications et déclencheurs) …")
    serve(port=port, prefect_yaml=deploiements)


@command(app, "deploiements")
def deployments_command() -> None:
    """Liste les déploiements de prefect.yaml : planification (heure de Paris) et déclencheurs."""
    table = Table(title="Déploiements tiflow (prefect.yaml)", title_justify="left")
    for header in ("Nom", "Flux", "Planification", "Déclencheur", "Description"):
        table.add_column(header)
    for spec in load_specs():
        schedules = ", ".join(f"{s['cron']} ({s.get('timezone', 'UTC')})" for s in spec.schedules)
        triggers = ", ".join(e for t in spec.triggers for e in t.get("expect", []))
        table.add_row(
            spec.name,
            spec.entrypoint,
            schedules or "à la demande",
            triggers or "—",
            spec.description.strip(),
        )
    console.print(table)
