"""`tiflow demo`: one year of the Grand Est Touraine example, played through the real flows.

The demo works in ``TIFLOW_DATA_DIR/demo/`` (recreated at each run): its SQLite database, the
outbox folder where every e-mail is written as an ``.eml`` file (TIFLOW_NOTIFY_CONFIG is
ignored: the example's addresses are invented), and the budget reports. The year itself is
`tiflow.demo_year`; this module prepares the folder, runs it under Prefect (ephemeral mode
unless PREFECT_API_URL is set) and prints the French summary.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.engine import Engine

from flows.usecases.bus import unit_of_work
from models.db import engine_for, upgrade
from models.settings import load_settings
from tiflow.cli import app, command, plan_table
from tiflow.cli.common import console, progress_bar
from tiflow.cli.french import err_console
from tiflow.cli.prefect_runs import (
    ephemeral,
    prefect_session,
    quiet_console,
    start_ephemeral_server,
)
from tiflow.example import load_example

if TYPE_CHECKING:
    from tiflow.demo_year import Happening, YearReport

DATABASE_NAME = "tiflow-demo.db"
KIND_LABELS = {
    "reminder": "Rappels aux pilotes",
    "escalation": "Alertes au chargé de mission",
    "digest": "Synthèses avant COPIL",
    "budget": "Budget consolidé",
    "next-steps": "Suites d'une validation",
    "revision": "Révisions demandées",
    "rejection": "Rejets en COPIL",
    "deferral": "Ajournements",
    "kickoff": "Avis de lancement",
}
KIND_NAMES = {  # (one, many)
    "reminder": ("rappel aux pilotes", "rappels aux pilotes"),
    "escalation": ("alerte au chargé de mission", "alertes au chargé de mission"),
    "digest": ("synthèse COPIL", "synthèses COPIL"),
    "budget": ("envoi du budget", "envois du budget"),
}


@dataclass(frozen=True)
class Email:
    path: Path
    kind: str
    to: str
    subject: str


@dataclass(frozen=True)
class DemoFiles:
    folder: Path
    database: Path
    outbox: Path
    emails: list[Email]


@contextmanager
def demo_environment(folder: Path, database_url: str) -> Iterator[None]:
    """The flows read their settings from the environment: point them at the demo folder,
    and never at a real mail server, for the duration of the demo."""
    saved = {k: os.environ.get(k) for k in ("TIFLOW_DATA_DIR", "TIFLOW_DATABASE_URL")}
    saved["TIFLOW_NOTIFY_CONFIG"] = os.environ.get("TIFLOW_NOTIFY_CONFIG")
    os.environ["TIFLOW_DATA_DIR"] = str(folder)
    os.environ["TIFLOW_DATABASE_URL"] = database_url
    os.environ.pop("TIFLOW_NOTIFY_CONFIG", None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def read_outbox(folder: Path) -> list[Email]:
    """The .eml files of the outbox, oldest first (their names start with the UTC time)."""
    emails = []
    parser = BytesParser(policy=policy.default)
    for path in sorted(folder.glob("*.eml")):
        # <time>_<kind>.<key digest>_<recipient>.eml (notifications/eml.py)
        kind = path.name.split("_", 2)[1].split(".", 1)[0]
        with path.open("rb") as handle:
            headers = parser.parse(handle, headersonly=True)
        emails.append(Email(path, kind, str(headers["To"] or ""), str(headers["Subject"] or "")))
    return emails


@command(app)
def demo(
    journal: Annotated[
        bool,
        typer.Option(
            "--journal", help="Affiche aussi le journal de Prefect (sur la sortie d'erreur)."
        ),
    ] = False,
) -> None:
    """Joue une année de l'exemple Grand Est Touraine avec les vrais flux Prefect.

    De janvier 2024 à janvier 2025, avec une horloge simulée : propositions, COPIL,
    synthèses, financements, rappels et alertes, budget. La base, les e-mails (.eml) et le
    classeur du budget sont écrits dans TIFLOW_DATA_DIR/demo/ (recréé à chaque fois) ; le
    résumé de l'année s'affiche à la fin."""
    started = time.perf_counter()
    import prefect  # noqa: F401  (its logging first: quiet_console finds its handlers)

    with quiet_console(journal):
        server = start_ephemeral_server()  # starts in the background while we prepare
        folder = load_settings().data_dir / "demo"
        url = f"sqlite:///{folder / DATABASE_NAME}"
        engine_for(url).dispose()  # a previous demo in this process held the old file open
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        with demo_environment(folder, url):
            engine = engine_for(url)
            upgrade(engine)
            with unit_of_work(engine) as uow:
                territory = load_example(uow)
                uow.commit()
            from tiflow.demo_year import play_year

            with prefect_session(journal, server, heartbeat=False) as running:
                if running is not None:
                    with err_console.status("Démarrage du serveur Prefect temporaire…"):
                        running.wait()
                with progress_bar() as progress:
                    report = play_year(engine, progress)
            settings = load_settings()
            files = DemoFiles(
                folder,
                folder / DATABASE_NAME,
                settings.outbox_dir,
                read_outbox(settings.outbox_dir),
            )
            assert territory.id is not None
            _show(report, files, engine_for(url), territory.id, time.perf_counter() - started)
        engine_for(url).dispose()


def _show(
    report: YearReport, files: DemoFiles, engine: Engine, territory_id: int, elapsed: float
) -> None:
    from tiflow.demo_year import month_label

    console.print(
        "[bold]Une année du plan d'actions de Grand Est Touraine[/] (janvier 2024 → janvier"
        " 2025), jouée avec les vrais flux Prefect et une horloge simulée.",
        highlight=False,
    )
    console.print()
    for month, items in groupby(report.happenings, key=lambda h: month_label(h.day)):
        _show_month(month, list(items))
    console.print()
    _show_emails(files)
    _show_notable(report, files)
    with unit_of_work(engine) as uow:
        console.print(plan_table(uow, territory_id, "Plan d'actions au 2 janvier 2025"))
    console.print()
    console.print("[bold]Fichiers écrits[/]")
    rows = [
        ("Base de démonstration (SQLite)", files.database),
        (f"Boîte d'envoi : {len(files.emails)} e-mails (.eml)", files.outbox),
    ]
    if report.budget is not None:
        rows += [
            ("Budget 2024, classeur", report.budget.files.xlsx),
            ("Budget 2024, CSV", report.budget.files.csv),
        ]
    for label, path in rows:
        console.print(f"  {escape(label)} : {path}", highlight=False, soft_wrap=True)
    console.print()
    console.print(
        f"{report.flow_runs} exécutions de flux Prefect, dont {report.sweeps} passages des rappels"
        f" (le lundi, toutes les quatre semaines), en {elapsed:.0f} s.",
        highlight=False,
    )
    if ephemeral():
        console.print(
            "Elles sont dans la base locale de Prefect : « prefect server start », puis"
            " http://127.0.0.1:4200 pour les parcourir.",
            highlight=False,
        )


def _count(kind: str, n: int) -> str:
    one, many = KIND_NAMES.get(kind, (kind, kind))
    return f"{n} {one if n == 1 else many}"


def _show_month(month: str, items: list[Happening]) -> None:
    console.print(f"[bold]{month}[/]")
    funding: dict[str, list[Happening]] = {}
    for item in items:
        if item.kind == "financement":
            funding.setdefault(item.number, []).append(item)
    for item in items:
        if item.kind == "financement":
            records = funding[item.number]
            if item is not records[-1]:
                continue  # one line per action and month, on its last funding record
            text = (
                f"{item.number} : financement " + ", ".join(r.detail for r in records) + item.text
            )
        else:
            text = item.text
        if text:
            console.print(f"  {item.day:%d/%m}  {escape(text)}", highlight=False, soft_wrap=True)
    sweeps = [h for h in items if h.kind == "rappels"]
    if sweeps:
        emails: Counter[str] = Counter()
        for sweep in sweeps:
            emails.update(sweep.emails)
        detail = ", ".join(_count(kind, emails[kind]) for kind in KIND_NAMES if emails[kind])
        days = ", ".join(f"{s.day:%d/%m}" for s in sweeps)
        console.print(
            f"  rappels d'échéances ({days}) : {detail or 'rien à envoyer'}",
            highlight=False,
            soft_wrap=True,
        )


def _show_emails(files: DemoFiles) -> None:
    counts = Counter(e.kind for e in files.emails)
    table = Table(
        title=f"E-mails écrits dans {files.outbox}", title_justify="left", show_footer=True
    )
    table.add_column("Type", footer="Total")
    table.add_column("E-mails", justify="right", footer=str(len(files.emails)))
    table.add_column("Destinataires", footer="")
    for kind in [*KIND_LABELS, *sorted(set(counts) - set(KIND_LABELS))]:
        if counts[kind]:
            people = sorted({e.to.split(" <")[0] for e in files.emails if e.kind == kind})
            table.add_row(KIND_LABELS.get(kind, kind), str(counts[kind]), escape(", ".join(people)))
    console.print(table)


def _show_notable(report: YearReport, files: DemoFiles) -> None:
    from notifications.eml import file_suffix
    from notifications.outbox import message_key

    if not report.notable:
        return
    console.print("[bold]À ouvrir en premier[/] (avec votre messagerie) :")
    for email in report.notable:
        suffix = file_suffix(message_key(email.kind, email.key), email.address)
        found = sorted(files.outbox.glob(f"*_{suffix}.eml"))
        name = found[0].name if found else "(fichier introuvable)"
        console.print(
            f"  {email.day:%d/%m/%Y}  {escape(email.subject)} → {email.address}\n      {name}",
            highlight=False,
            soft_wrap=True,
        )
    console.print()
