"""The demo's folder is replaced only by a year played in full; the demo ends with the command
that explores its database; its timeline tells what each step put in the outbox."""

from __future__ import annotations

import re
import shlex
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import tiflow.demo_year
from models.deadlines import NUDGE, paris_date
from models.errors import TiflowError
from models.outbox import OutboxItem, OutboxMessage, OutboxStatus
from tests.demo.conftest import DemoRun
from tiflow.cli import app
from tiflow.cli.common import console
from tiflow.cli.demo import _show_month
from tiflow.demo_folder import new_build_folder, restore_interrupted_swap, swap_in
from tiflow.demo_year import Happening, Step, Year


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_new_year_replaces_the_previous_demo_in_one_swap(tmp_path: Path) -> None:
    final = tmp_path / "demo"
    final.mkdir()
    (final / "ancienne.txt").write_text("année précédente")
    build = new_build_folder(final)
    assert build.parent == tmp_path and build.name.startswith(".demo-")
    (build / "nouvelle.txt").write_text("année jouée en entier")
    swap_in(build, final)
    assert _files(final) == {"nouvelle.txt": "année jouée en entier".encode()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]  # nothing left aside


def test_a_swap_cut_between_its_two_renames_gets_the_old_demo_back(tmp_path: Path) -> None:
    final = tmp_path / "demo"
    aside = tmp_path / ".demo-previous"  # where swap_in puts the old demo for a moment
    aside.mkdir()
    (aside / "tiflow-demo.db").write_text("la démo précédente")
    restore_interrupted_swap(final)
    assert _files(final) == {"tiflow-demo.db": "la démo précédente".encode()}


def test_a_failed_run_leaves_the_previous_demo_intact(
    demo_run: DemoRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _files(demo_run.folder)

    def broken_step(year: Year) -> str:
        raise TiflowError("Étape de démonstration impossible (panne simulée).")

    # The new year fails at its first step, before anything of it could replace the old one.
    monkeypatch.setattr(
        tiflow.demo_year, "steps", lambda: [Step(datetime(2024, 1, 1, 7, 30), broken_step)]
    )
    result = CliRunner().invoke(
        app,
        ["demo"],
        env={"TIFLOW_DATA_DIR": str(demo_run.data_dir), "NO_COLOR": "1"},
        prog_name="tiflow",
    )
    assert result.exit_code == 1
    assert "panne simulée" in result.output
    assert _files(demo_run.folder) == before
    assert sorted(p.name for p in demo_run.data_dir.iterdir()) == ["demo"]


def test_the_demo_ends_with_the_command_that_explores_its_database(demo_run: DemoRun) -> None:
    last = demo_run.output.rstrip().splitlines()[-1].strip()
    data_dir = shlex.quote(str(demo_run.data_dir))
    assert last == f"TIFLOW_DATA_DIR={data_dir} tiflow --base demo actions"
    words = shlex.split(last)
    env = {"TIFLOW_DATA_DIR": str(demo_run.data_dir), "NO_COLOR": "1", "TIFLOW_DATABASE_URL": ""}
    result = CliRunner().invoke(app, words[2:], env=env, prog_name="tiflow")
    assert result.exit_code == 0, result.output
    assert "12 actions sur 12" in result.output
    late = CliRunner().invoke(app, [*words[2:], "--en-retard"], env=env, prog_name="tiflow")
    assert "en retard au 02/01/2025" in late.output  # the demo's clock, not the machine's


def test_base_demo_without_a_demo_says_what_to_do(tmp_path: Path) -> None:
    env = {"TIFLOW_DATA_DIR": str(tmp_path), "NO_COLOR": "1"}
    result = CliRunner().invoke(app, ["--base", "demo", "actions"], env=env, prog_name="tiflow")
    assert result.exit_code == 1
    assert "Pas de base de démonstration" in result.output and "tiflow demo" in result.output
    assert not (tmp_path / "tiflow.db").exists()  # no empty database created beside it


def test_the_reminder_lines_of_the_timeline_add_up_to_the_outbox(demo_run: DemoRun) -> None:
    reminded: Counter[str] = Counter()
    for line in re.findall(r"rappels d'échéances \([^)]*\) : (.*)", demo_run.output):
        for n, what in re.findall(r"(\d+) (rappels? aux pilotes|alertes? au chargé)", line):
            reminded["reminder" if what.startswith("rappel") else "escalation"] += int(n)
    sent = Counter(e.kind for e in demo_run.emails)
    # What the sweeps enqueued and did not send: only nudges enqueued ahead, waiting for their
    # day after the year's end (January 2025), or dropped because a note or the end of the
    # action came first (their still-valid items enqueued again).
    m = OutboxMessage.__table__.c  # type: ignore[attr-defined]
    i = OutboxItem.__table__.c  # type: ignore[attr-defined]
    with demo_run.engine.connect() as conn:
        unsent = conn.execute(
            sa.select(m.id, m.kind, m.status, m.next_attempt_at).where(
                m.kind.in_(("reminder", "escalation")), m.status != OutboxStatus.SENT.value
            )
        ).all()
        kinds = set(
            conn.execute(
                sa.select(i.ref_kind).where(i.message_id.in_([r.id for r in unsent]))
            ).scalars()
        )
    assert kinds <= {NUDGE}
    for row in unsent:
        assert row.status == OutboxStatus.DROPPED.value or (
            row.status == OutboxStatus.PENDING.value
            and paris_date(row.next_attempt_at) > date(2025, 1, 2)
        ), row
    waiting = Counter(r.kind for r in unsent)
    assert reminded == Counter({k: sent[k] + waiting[k] for k in ("reminder", "escalation")})


def test_a_step_line_tells_the_emails_it_set_off_whatever_their_kind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(console, "_width", 200)
    day = date(2024, 1, 25)
    happenings = [
        Happening(day, "COPIL du 25/01/2024 : validée FA-01", emails=Counter({"next-steps": 3})),
        Happening(day, " → financée", "financement", Counter({"kickoff": 1}), "FA-08", "État"),
        Happening(day, "", emails=Counter({"releve-decisions": 7})),
        Happening(day, "synthèse J-3 envoyée aux 7 membres", emails=Counter({"digest": 7})),
    ]
    with console.capture() as captured:
        _show_month("janvier 2024", happenings)
    lines = captured.get().splitlines()
    assert lines == [
        "janvier 2024",
        "  25/01  COPIL du 25/01/2024 : validée FA-01 → e-mails : 3 avis de suite à la validation",
        "  25/01  FA-08 : financement État → financée → e-mails : 1 avis de lancement",
        "  25/01  e-mails : 7 releve-decisions",
        "  25/01  synthèse J-3 envoyée aux 7 membres",  # its line already says whom
    ]
