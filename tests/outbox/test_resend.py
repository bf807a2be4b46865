"""« Renvoyer » from the sent-mail page (flows.usecases.resend): a failed or pending message
goes back in the queue once; a second click, or another tab, changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine

from flows.usecases.bus import unit_of_work
from flows.usecases.resend import resend_message
from models.errors import NotFound, TiflowError
from models.outbox import OutboxMessage, OutboxStatus
from models.tables import Territory

LATER = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
NOW = datetime(2029, 12, 31, 8, 0, tzinfo=UTC)


def _message(engine: Engine, status: OutboxStatus) -> tuple[int, int]:
    with unit_of_work(engine) as uow:
        territory = Territory(code="grand-est-touraine", name="Grand Est Touraine")
        uow.session.add(territory)
        uow.flush()
        assert territory.id is not None
        row = OutboxMessage(
            key="reminder:test",
            address="karim.haddad@tev.example",
            recipient="Karim Haddad <karim.haddad@tev.example>",
            kind="reminder",
            tag="pilots",
            territory_id=territory.id,
            subject="Rappel",
            text_body="Bonjour",
            status=status,
            attempts=3,
            next_attempt_at=LATER,
            last_error="serveur SMTP indisponible : connexion refusée",
        )
        uow.session.add(row)
        uow.commit()
        assert row.id is not None
        return territory.id, row.id


def _resend(engine: Engine, territory_id: int, message_id: int) -> bool:
    with unit_of_work(engine) as uow:
        done = resend_message(uow, territory_id, message_id, now=NOW)
        uow.commit()
    return done.already


def _row(engine: Engine, message_id: int) -> OutboxMessage:
    with unit_of_work(engine) as uow:
        row = uow.session.get_one(OutboxMessage, message_id)
        return OutboxMessage(**row.model_dump())  # a plain copy, readable after the block


def test_a_pending_message_is_made_due_now_once(engine: Engine) -> None:
    territory_id, message_id = _message(engine, OutboxStatus.PENDING)
    assert _resend(engine, territory_id, message_id) is False
    assert _resend(engine, territory_id, message_id) is True  # the second tab
    row = _row(engine, message_id)
    assert row.status == OutboxStatus.PENDING and row.attempts == 3
    assert row.next_attempt_at.replace(tzinfo=UTC) == NOW


def test_a_failed_message_goes_back_once_and_not_a_second_time_after_failing_again(
    engine: Engine,
) -> None:
    territory_id, message_id = _message(engine, OutboxStatus.FAILED)
    assert _resend(engine, territory_id, message_id) is False
    assert _resend(engine, territory_id, message_id) is True  # double click: nothing more
    row = _row(engine, message_id)
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 0)
    with unit_of_work(engine) as uow:
        uow.session.get_one(OutboxMessage, message_id).status = OutboxStatus.FAILED
        uow.commit()
    with pytest.raises(TiflowError, match="il ne l'est qu'une fois"):
        _resend(engine, territory_id, message_id)


def test_a_message_of_another_territory_is_not_found(engine: Engine) -> None:
    territory_id, message_id = _message(engine, OutboxStatus.FAILED)
    with pytest.raises(NotFound, match=f"Aucun message n° {message_id}"):
        _resend(engine, territory_id + 1, message_id)
