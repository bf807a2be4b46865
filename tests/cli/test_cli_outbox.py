"""`tiflow envois`: the outbox as the operator sees it (French), and `--relancer N`, once."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from models.uow import UnitOfWork
from notifications.outbox import NewMessage, Recipient, enqueue
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
    assert "Boîte d'envoi : aucun message n'attend de nouvel essai" in out

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
