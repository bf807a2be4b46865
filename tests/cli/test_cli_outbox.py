"""`tiflow envois`: the outbox as the operator sees it (French), and `--relancer N`, once."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from models.uow import UnitOfWork
from notifications.outbox import NewMessage, Recipient, enqueue, status_counts
from tests.cli.conftest import Tiflow

T0 = datetime(2025, 3, 10, 7, 0, tzinfo=UTC)


def _store(engine: Engine) -> list[int]:
    with UnitOfWork(engine) as uow:
        result = enqueue(
            uow,
            [
                NewMessage(
                    key="notice:fa-03:2025-03-10",
                    kind="notice",
                    tag="pilots",
                    to=[
                        Recipient("Hélène Garnier <helene.garnier@aicr.example>"),
                        Recipient("Karim Haddad <karim.haddad@@cc-tev.example>"),  # a typo
                    ],
                    subject="Action FA-03 : décision du COPIL",
                    text="L'action FA-03 a été validée en COPIL.",
                )
            ],
            now=T0,
        )
        uow.commit()
    return result.created


def test_envois_lists_the_outbox_in_french_with_filters(tiflow: Tiflow, engine: Engine) -> None:
    _store(engine)
    listed = tiflow("envois")
    assert listed.exit_code == 0, listed.output
    out = listed.stdout
    assert "Boîte d'envoi (les plus récents d'abord)" in out
    assert "Hélène Garnier" in out and "en attente" in out and "avis" in out
    assert "Adresse e-mail invalide" in out and "échec" in out
    assert "Boîte d'envoi : aucun message en attente" in out

    failed = tiflow("envois", "--etat", "echec")
    assert "Karim Haddad" in failed.stdout and "Hélène Garnier" not in failed.stdout
    helene = tiflow("envois", "--personne", "garnier")
    assert "Hélène Garnier" in helene.stdout and "Karim" not in helene.stdout
    nothing = tiflow("envois", "--etat", "incertain")
    assert "Aucun message ne correspond." in nothing.stdout

    wrong = tiflow("envois", "--etat", "perdu")
    assert wrong.exit_code == 2 and "état inconnu « perdu »" in wrong.stderr


def test_envois_relancer_puts_a_failed_message_back_once(tiflow: Tiflow, engine: Engine) -> None:
    created = _store(engine)
    failed_id = max(created)  # the typo, stored failed
    first = tiflow("envois", "--relancer", str(failed_id))
    assert first.exit_code == 0, first.output
    assert f"Message n° {failed_id}" in first.stdout and "remis en file" in first.stdout
    assert "Remis en file à la main" in tiflow("envois", "--etat", "en-attente").stdout

    pending = tiflow("envois", "--relancer", str(min(created)))
    assert pending.exit_code == 1 and "seul un message en échec" in pending.stderr
    unknown = tiflow("envois", "--relancer", "999")
    assert unknown.exit_code == 1 and "Aucun message n° 999" in unknown.stderr
    assert "Traceback" not in unknown.output


def test_run_envoi_on_a_database_locked_too_long_says_so_in_one_french_line(
    prefect_harness: None,
    tiflow_on: Any,
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import models.db

    _store(engine)
    monkeypatch.setattr(models.db, "BUSY_PAUSE", 0.01)
    url = engine.url
    if url.get_backend_name() == "sqlite":
        impatient = url.update_query_dict({"timeout": "0.2"})
        holder = sqlite3.connect(str(url.database), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
    else:
        options = f"{url.query.get('options', '')} -c lock_timeout=200".strip()
        impatient = url.update_query_dict({"options": options})
        holder = engine.connect()
        holder.execute(sa.text("LOCK TABLE outbox_message IN ACCESS EXCLUSIVE MODE"))
    try:
        result = tiflow_on(impatient.render_as_string(hide_password=False), tmp_path)(
            "run", "envoi"
        )
    finally:
        holder.rollback()
        holder.close()
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Base de données occupée" in lines[0], result.stderr
    assert "Traceback" not in result.output and "locked" not in result.output
    with UnitOfWork(engine) as uow:
        assert status_counts(uow) == {"pending": 1, "failed": 1}  # nothing more marked failed


def test_run_envoi_maintenant_sends_what_waits_for_its_back_off(
    prefect_harness: None, tiflow: Tiflow, engine: Engine
) -> None:
    (pending, _failed) = sorted(_store(engine))
    table = sa.table(
        "outbox_message", sa.column("id"), sa.column("attempts"), sa.column("next_attempt_at")
    )
    later = datetime(2099, 1, 1, tzinfo=UTC).replace(tzinfo=None)  # after a failed attempt
    with engine.begin() as conn:
        conn.execute(
            sa.update(table).where(table.c.id == pending).values(attempts=1, next_attempt_at=later)
        )
    waiting = tiflow("run", "envoi")
    assert waiting.exit_code == 0, waiting.output
    assert "Cette tournée : 0 envoyé," in waiting.stdout
    assert "1 message en attente jusqu'au jeudi 1er janvier 2099" in waiting.stdout
    now = tiflow("run", "envoi", "--maintenant")
    assert now.exit_code == 0, now.output
    assert "Cette tournée : 1 envoyé," in now.stdout
    assert "aucun message en attente" in now.stdout
