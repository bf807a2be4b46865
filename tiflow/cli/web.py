"""`tiflow web`: the web application for coordinators, pilots and COPIL members."""

from __future__ import annotations

import typer

from tiflow.cli import app, command
from tiflow.cli.common import console, safe_url


@command(app, "web")
def web(
    host: str = typer.Option("127.0.0.1", "--host", help="Adresse d'écoute."),
    port: int = typer.Option(8000, "--port", help="Port d'écoute."),
    dev: bool = typer.Option(
        False,
        "--dev",
        help="Essai local ou démo : sans TIFLOW_WEB_SECRET_KEY, une clé éphémère est générée"
        " (les sessions ne survivent pas à un redémarrage).",
    ),
    proxy: str = typer.Option(
        "",
        "--proxy",
        help="Adresse du proxy inverse (TLS) dont accepter les en-têtes X-Forwarded-*,"
        " par exemple 127.0.0.1.",
    ),
) -> None:
    """Lance l'application web (connexion par lien e-mail, pages des pilotes et du COPIL)."""
    import uvicorn

    from tiflow.web.app import create_app
    from tiflow.web.config import WebConfigError, load_web_settings

    try:
        settings = load_web_settings(dev=dev, base_url=f"http://{host}:{port}")
    except WebConfigError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None
    if settings.ephemeral_key:
        console.print(
            "[yellow]Mode essai : clé secrète éphémère générée pour ce processus ; les liens"
            " et sessions ne survivront pas à un redémarrage. En production, définissez"
            " TIFLOW_WEB_SECRET_KEY.[/]"
        )
    console.print(
        f"Application web sur [bold]{settings.base_url}[/] — base"
        f" {safe_url(settings.settings.database_url)}"
    )
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        proxy_headers=bool(proxy),
        forwarded_allow_ips=proxy or None,
        log_level="warning",
    )
