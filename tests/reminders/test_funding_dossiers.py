"""Funding dossiers as they really go: the filed date stops the « dépôt du dossier » reminder,
the decision's date the « décision attendue » one, full payment the « versement attendu » one,
and a payment reminder names what remains to be paid. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy.engine import Engine

from models.deadlines import (
    FUNDING_DECISION,
    FUNDING_DOSSIER,
    FUNDING_PAYMENT,
    load_snapshot,
)
from models.tables import Funding, Organisation
from models.uow import UnitOfWork
from models.vocabulary import OrganisationKind
from tests.reminders.conftest import SmallPlan, inbox, run_day, smtp_deliverer
from tests.smtp_sink import SmtpSink, body_of

HELENE = "helene.garnier@aicr.example"


def _funding(engine: Engine, plan: SmallPlan, **fields: object) -> int:
    with UnitOfWork(engine) as uow:
        region = Organisation(
            territory_id=plan.territory_id,
            name="Région Centre-Val de Loire",
            short_name="Région",
            kind=OrganisationKind.REGION,
            is_funder=True,
        )
        uow.session.add(region)
        uow.session.flush()
        assert region.id is not None
        row = Funding(action_id=plan.fa01, funder_id=region.id, year=2025, **fields)
        uow.session.add(row)
        uow.commit()
        assert row.id is not None
        return row.id


def _update(engine: Engine, funding_id: int, **fields: object) -> None:
    with UnitOfWork(engine) as uow:
        row = uow.session.get_one(Funding, funding_id)
        for name, value in fields.items():
            setattr(row, name, value)
        uow.session.add(row)
        uow.commit()


def _kinds(engine: Engine) -> set[str]:
    with UnitOfWork(engine) as uow:
        return {d.ref_kind for d in load_snapshot(uow.session).deadlines}


def test_each_dossier_date_stops_its_own_reminder(engine: Engine, plan: SmallPlan) -> None:
    funding = _funding(
        engine,
        plan,
        requested=Decimal("60000.00"),
        dossier_due=date(2025, 2, 3),
        decision_expected=date(2025, 4, 1),
        payment_expected=date(2025, 9, 1),
    )
    assert {FUNDING_DOSSIER, FUNDING_DECISION} <= _kinds(engine)
    _update(engine, funding, dossier_filed_on=date(2025, 1, 30))  # filed, not decided yet
    assert FUNDING_DOSSIER not in _kinds(engine)
    assert FUNDING_DECISION in _kinds(engine)
    _update(
        engine,
        funding,
        decision_date=date(2025, 3, 20),
        granted=Decimal("60000.00"),
        paid=Decimal("18000.00"),
    )
    assert FUNDING_DECISION not in _kinds(engine)
    assert FUNDING_PAYMENT in _kinds(engine)
    _update(engine, funding, paid=Decimal("60000.00"))
    assert not {FUNDING_DOSSIER, FUNDING_DECISION, FUNDING_PAYMENT} & _kinds(engine)


def test_a_filed_dossier_is_not_reminded_as_late_for_months(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    _funding(
        engine,
        plan,
        requested=Decimal("60000.00"),
        dossier_due=date(2025, 2, 3),
        dossier_filed_on=date(2025, 1, 31),
    )
    with smtp_deliverer(smtp_sink) as deliverer:
        for day in (date(2025, 2, 3), date(2025, 2, 10), date(2025, 6, 2)):
            run_day(engine, deliverer, day)
    assert inbox(smtp_sink, HELENE) == []


def test_a_payment_reminder_names_what_remains_to_be_paid(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    _funding(
        engine,
        plan,
        requested=Decimal("60000.00"),
        granted=Decimal("60000.00"),
        paid=Decimal("18000.00"),
        decision_date=date(2025, 3, 20),
        payment_expected=date(2025, 9, 1),
    )
    with smtp_deliverer(smtp_sink) as deliverer:
        run_day(engine, deliverer, date(2025, 8, 25))  # J-7
    (message,) = inbox(smtp_sink, HELENE)
    text = body_of(message)
    assert (
        "Versement attendu (Région), reste à verser 42\u202f000,00\u00a0€ sur"
        " 60\u202f000,00\u00a0€ accordés" in text
    )


def test_replies_reach_the_coordinator_named_in_header_and_footer(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    _funding(
        engine,
        plan,
        granted=Decimal("60000.00"),
        paid=Decimal("18000.00"),
        decision_date=date(2025, 3, 20),
        payment_expected=date(2025, 9, 1),
    )
    with smtp_deliverer(smtp_sink) as deliverer:
        run_day(engine, deliverer, date(2025, 8, 25))
    (message,) = inbox(smtp_sink, HELENE)
    assert message["Reply-To"] == "Claire Moreau <claire.moreau@grand-est-touraine.example>"
    html = body_of(message, "html")
    assert 'parvient à <a href="mailto:claire.moreau@grand-est-touraine.example"' in html
    assert "Claire Moreau <claire.moreau@grand-est-touraine.example>." in body_of(message)
