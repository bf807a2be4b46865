"""The notices that follow a decision, enqueued by the message bus in the decision's own unit
of work: next steps after validation, kick-off after funding.

On SQLite and PostgreSQL, delivering to a real loopback SMTP server.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from flows.notices import digest_days
from flows.usecases.bus import NOTICE_KINDS, enqueue_notice, unit_of_work
from flows.usecases.funding import record_funding
from flows.usecases.notices import kickoff_notice
from flows.usecases.proposals import propose
from models.events import ActionTransitioned
from models.lifecycle import State
from models.outbox import OutboxMessage
from models.settings import load_settings
from models.tables import CopilMeeting
from models.transitions import transition_action
from notifications.outbox import DeliveryReport, deliver_pending, open_deliverer
from tests.smtp_sink import SmtpSink, body_of, running_sink
from tiflow.example import TERRITORY_CODE

PILOT = "isabelle.roux@uimm-touraine.example"  # FA-07
COORDINATOR = "claire.moreau@grand-est-touraine.example"


@pytest.fixture
def smtp(flow_env: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpSink]:
    with running_sink() as sink:
        monkeypatch.setenv("TIFLOW_NOTIFY_CONFIG", f"pilots,copil,coordinator={sink.url()}")
        yield sink


def _deliver(engine: Engine, kinds: tuple[str, ...] = NOTICE_KINDS) -> DeliveryReport:
    with open_deliverer(load_settings()) as deliverer:
        return deliver_pending(engine, deliverer, kinds=list(kinds))


def _outbox_rows(engine: Engine) -> int:
    with unit_of_work(engine) as uow:
        return len(uow.session.exec(select(OutboxMessage)).all())


def _validate(engine: Engine, number: str) -> ActionTransitioned:
    with unit_of_work(engine) as uow:
        propose(uow, TERRITORY_CODE, number, recorded_by="Claire Moreau")
        territory = uow.repo.territory(TERRITORY_CODE)
        copil = CopilMeeting(
            territory_id=territory.id, held_at=datetime(2024, 1, 25, 9, tzinfo=UTC)
        )  # type: ignore[arg-type]
        uow.session.add(copil)
        uow.flush()
        action = uow.repo.action(TERRITORY_CODE, number)
        event = transition_action(
            uow,
            action,
            State.VALIDATED,
            actor="COPIL",
            copil_id=copil.id,
            reason="Sous réserve de l'accord de la Région",
        )
        uow.commit()
    return event


def test_validation_notice_reaches_pilot_and_funders_once_even_if_triggered_twice(
    flow_env: Engine, example_plan: str, smtp: SmtpSink
) -> None:
    event = _validate(flow_env, "FA-07")  # the notices are enqueued with the validation
    queued = _outbox_rows(flow_env)
    first = _deliver(flow_env)
    with unit_of_work(flow_env) as uow:  # the same transition handled again: a no-op
        enqueue_notice(event, uow)
        uow.commit()
    again = _deliver(flow_env)
    assert queued >= 2 and first.sent == queued
    assert _outbox_rows(flow_env) == queued and again.sent == 0

    (to_pilot,) = smtp.messages_to(PILOT)
    assert to_pilot["Subject"] == "Action FA-07 validée en COPIL\u00a0: prochaines étapes"
    text = body_of(to_pilot)
    assert "Sous réserve de l'accord de la Région" in text
    assert "140\u202f000,00\u00a0€" in text  # the budget, French format
    # the example requests funding per year, as its budget lines: 20 000 € in 2024, 2025
    assert "OPCO 2i (2024)\u00a0: demandé 20\u202f000,00\u00a0€" in text
    assert "OPCO 2i (2025)\u00a0: demandé 20\u202f000,00\u00a0€" in text
    # FA-07's funders (État, OPCO 2i, CC TEV): the example has a contact at État and CC TEV.
    funders = {"marc.aubert@prefecture.example", "karim.haddad@cc-tev.example"}
    assert all(len(smtp.messages_to(address)) == 1 for address in funders)


def test_kickoff_notice_lists_coming_milestones_for_pilot_and_coordinator(
    flow_env: Engine, example_plan: str, smtp: SmtpSink
) -> None:
    _validate(flow_env, "FA-05")
    with unit_of_work(flow_env) as uow:
        for funder, amount in (("Région", "20000.00"), ("CC Val d'Amboise", "15000.00")):
            record_funding(
                uow,
                TERRITORY_CODE,
                "FA-05",
                funder=funder,
                granted=Decimal(amount),
                recorded_by="Claire Moreau",
            )
        uow.commit()
        assert uow.repo.action(TERRITORY_CODE, "FA-05").state is State.FUNDED

    result = _deliver(flow_env, ("kickoff",))
    assert result.sent == 2
    for address in ("thomas.petit@eret.example", COORDINATOR):
        (message,) = smtp.messages_to(address)
        assert message["Subject"] == "Action FA-05 financée\u00a0: lancement"
        assert "Bilan des visites et stages\u00a0: vendredi 5 juillet 2024" in body_of(message)


def test_kickoff_of_an_action_never_funded_fails_with_a_french_message(
    flow_env: Engine, example_plan: str, smtp: SmtpSink
) -> None:
    with (
        unit_of_work(flow_env) as uow,
        pytest.raises(Exception, match="n'est jamais passée à « financée »"),
    ):
        kickoff_notice(uow, TERRITORY_CODE, "FA-03")
    assert _deliver(flow_env).sent == 0
    assert smtp.received == []


def test_digest_days_count_calendar_days_before_the_copil() -> None:
    held = date(2024, 4, 2)  # two days after the spring DST change
    assert digest_days(held, [10, 3]) == [date(2024, 3, 23), date(2024, 3, 30)]
    assert digest_days(held, [3, 3]) == [held - timedelta(days=3)]
