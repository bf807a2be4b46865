"""`tiflow demo`: one year of the Grand Est Touraine example, played through the real flows.

The demo lives in ``TIFLOW_DATA_DIR/demo/``: its SQLite database, the outbox folder where
every e-mail is written as an ``.eml`` file (TIFLOW_NOTIFY_CONFIG is ignored: the example's
addresses are invented), and the budget reports. Each run plays the year in a new folder and
swaps it in only when the year is played in full (`tiflow.demo_folder`): a failed run leaves
the previous demo as it was. The year itself is
`tiflow.demo_year`; this module prepares the folder, runs it under Prefect (ephemeral mode
unless PREFECT_API_URL is set) and prints the French summary.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
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
from models import clock
from models.db import engine_for, upgrade
from models.errors import TiflowError
from models.settings import load_settings
from notifications.kinds import in_order, kind_count, kind_heading
from tiflow.cli import app, command, plan_table
from tiflow.cli.common import console, progress_bar, safe_url
from tiflow.cli.french import err_console
from tiflow.cli.prefect_runs import (
    EphemeralStart,
    ephemeral,
    prefect_session,
    quiet_console,
    start_ephemeral_server,
)
from tiflow.demo_folder import (
    DATABASE_NAME,
    EXAMPLE_LOADED,
    build_engine,
    database_url,
    demo_folder,
    new_build_folder,
    swap_in,
)
from tiflow.example import load_example

if TYPE_CHECKING:
    from flows.budget import BudgetRunResult
    from tiflow.demo_year import Happening, YearReport

TOLD_BY_STEP = {"digest", "budget", "decision-record", "minutes-reminder"}  # told by their line


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
    classeur du budget sont écrits dans TIFLOW_DATA_DIR/demo/, qui ne remplace la démo
    précédente qu'une fois l'année jouée en entier ; le résumé de l'année s'affiche à la fin,
    puis la commande pour explorer la base de la démo (tiflow --base demo …)."""
    started = time.perf_counter()
    import prefect  # noqa: F401  (its logging first: quiet_console finds its handlers)

    explore = explore_command()  # before the demo points TIFLOW_DATA_DIR at its folder
    with quiet_console(journal):
        server = start_ephemeral_server()  # starts in the background while we prepare
        final = demo_folder()
        build = new_build_folder(final)
        try:
            report, territory_id = _play_in(build, journal, server)
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)  # the previous demo stays as it was
            raise
        swap_in(build, final)  # the new year replaces the old one only now, in full
        url = database_url(final)
        with demo_environment(final, url):
            settings = load_settings()
            files = DemoFiles(
                final, final / DATABASE_NAME, settings.outbox_dir, read_outbox(settings.outbox_dir)
            )
            if report.budget is not None:
                report.budget = _moved(report.budget, build, final)
            _show(report, files, engine_for(url), territory_id, time.perf_counter() - started)
        engine_for(url).dispose()
    console.print()
    console.print("Pour explorer la base de la démo (au 2 janvier 2025) :", highlight=False)
    console.print(f"  {escape(explore)}", highlight=False, soft_wrap=True)


def explore_command(command: str = "actions") -> str:
    """The exact line that runs `tiflow --base demo <command>` from the user's shell: the
    program as it was called (``.venv/bin/tiflow`` through dev.py), TIFLOW_DATA_DIR if set."""
    program = "tiflow"
    called = Path(sys.argv[0])
    if called.name == "tiflow" and called.exists():
        found = shutil.which("tiflow")
        if found is None or Path(found).resolve() != called.resolve():
            relative = os.path.relpath(called.absolute(), Path.cwd())
            program = relative if not relative.startswith("..") else str(called.absolute())
            program = program if "/" in program else f"./{program}"
    data_dir = os.environ.get("TIFLOW_DATA_DIR")
    prefix = f"TIFLOW_DATA_DIR={shlex.quote(data_dir)} " if data_dir else ""
    return f"{prefix}{shlex.quote(program)} --base demo {command}"


def _play_in(folder: Path, journal: bool, server: EphemeralStart | None) -> tuple[YearReport, int]:
    """Load the example into a new database in `folder` and play the year there."""
    url = database_url(folder)
    with demo_environment(folder, url):
        engine = build_engine(folder)
        upgrade(engine)
        with clock.frozen(EXAMPLE_LOADED), unit_of_work(engine) as uow:
            territory = load_example(uow)
            uow.commit()
            assert territory.id is not None
            territory_id = territory.id
        from tiflow.demo_year import play_year

        with prefect_session(journal, server, heartbeat=False) as running:
            if running is not None:
                with err_console.status("Démarrage du serveur Prefect temporaire…"):
                    running.wait()
            with progress_bar() as progress:
                report = play_year(engine, progress)
        engine.dispose()  # the folder is about to be renamed
    return report, territory_id


def _moved(budget: BudgetRunResult, build: Path, final: Path) -> BudgetRunResult:
    """The budget files' paths once the build folder became the demo folder."""

    def there(path: Path) -> Path:
        return final / path.relative_to(build) if path.is_relative_to(build) else path

    files = replace(budget.files, xlsx=there(budget.files.xlsx), csv=there(budget.files.csv))
    return replace(budget, files=files)


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
        f"{report.flow_runs} exécutions de flux Prefect (une par mois,"
        f" {report.days_played} journées simulées), où ont tourné {report.flows_played} flux du"
        f" plan, dont {report.sweeps} passages des rappels (le"
        f" lundi, toutes les quatre semaines), en {elapsed:.0f} s.",
        highlight=False,
    )
    if ephemeral():
        console.print(
            "Elles sont dans la base locale de Prefect : « prefect server start », puis"
            " http://127.0.0.1:4200 pour les parcourir.",
            highlight=False,
        )


def _emails_set_off(emails: Counter[str]) -> str:
    """« e-mails : 3 avis de suite à la validation » for what a step put in the outbox, of the
    kinds its own line does not already tell (a digest step says whom it was sent to)."""
    told = [k for k in in_order(list(emails)) if emails[k] and k not in TOLD_BY_STEP]
    if not told:
        return ""
    return "e-mails : " + ", ".join(kind_count(kind, emails[kind]) for kind in told)


def _show_month(month: str, items: list[Happening]) -> None:
    console.print(f"[bold]{month}[/]")
    funding: dict[str, list[Happening]] = {}
    for item in items:
        if item.kind == "financement":
            funding.setdefault(item.number, []).append(item)
    for item in items:
        emails = item.emails
        if item.kind == "financement":
            records = funding[item.number]
            if item is not records[-1]:
                continue  # one line per action and month, on its last funding record
            text = (
                f"{item.number} : financement " + ", ".join(r.detail for r in records) + item.text
            )
            emails = sum((r.emails for r in records), Counter())
        elif item.kind == "rappels":
            text = item.text  # its e-mails are summed up for the month below
            emails = Counter()
        else:
            text = item.text
        text = " → ".join(part for part in (text, _emails_set_off(emails)) if part)
        if text:
            console.print(f"  {item.day:%d/%m}  {escape(text)}", highlight=False, soft_wrap=True)
    sweeps = [h for h in items if h.kind == "rappels"]
    if sweeps:
        reminded: Counter[str] = Counter()
        for sweep in sweeps:
            reminded.update(sweep.emails)
        detail = ", ".join(kind_count(k, reminded[k]) for k in in_order(list(reminded)))
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
    for kind in in_order(list(counts)):
        if counts[kind]:
            people = sorted({e.to.split(" <")[0] for e in files.emails if e.kind == kind})
            table.add_row(kind_heading(kind), str(counts[kind]), escape(", ".join(people)))
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


@command(app)
def exemple() -> None:
    """Charge le plan d'exemple de Grand Est Touraine dans la base, sans jouer l'année.

    Les 12 fiches actions à l'état brouillon, leurs jalons, indicateurs, budgets et
    financements prévus, les partenaires et les personnes (adresses inventées). La base est
    TIFLOW_DATABASE_URL (ou --base) ; le territoire ne doit pas y être déjà."""
    from tiflow.cli.common import database
    from tiflow.example import TERRITORY_CODE

    engine = database()
    with unit_of_work(engine) as uow:
        if any(t.code == TERRITORY_CODE for t in uow.repo.territories()):
            raise TiflowError(
                f"Le territoire {TERRITORY_CODE} est déjà dans la base {safe_url(engine.url)} :"
                " rien n'a été chargé."
            )
        territory = load_example(uow)
        uow.commit()
        assert territory.id is not None
        console.print(plan_table(uow, territory.id, f"Exemple chargé : {territory.name}"))
    console.print(
        f"Base : {safe_url(engine.url)}. Suite : tiflow actions, tiflow action FA-01,"
        " tiflow copil planifier …",
        highlight=False,
        soft_wrap=True,
    )
