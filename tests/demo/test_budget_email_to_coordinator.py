"""The budget flow e-mails its workbook to the coordinators, through the outbox, on both
databases: a real SMTP server on loopback receives it (no mock of smtplib or apprise)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from sqlalchemy.engine import Engine

from flows.budget import BudgetParameters, BudgetRunResult, consolidate_budget
from flows.usecases.budget.consolidation import consolidate
from flows.usecases.budget.mail import enqueue_budget_mail
from flows.usecases.budget.reports import XLSX_CONTENT_TYPE
from flows.usecases.budget.snapshots import store_snapshot
from models.money import format_eur
from models.outbox import OutboxMessage
from models.uow import UnitOfWork
from tests.smtp_sink import SmtpSink, body_of, running_sink
from tiflow.example import ACTIONS

CLAIRE = "claire.moreau@grand-est-touraine.example"
NATIONAL = "animation@anct.example"
XLSX = "budget-2024-grand-est-touraine-v{}.xlsx"


@pytest.fixture
def smtp_env(flow_env: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpSink]:
    with running_sink() as sink:
        url = sink.url("tiflow@grand-est-touraine.example", to=NATIONAL)
        monkeypatch.setenv("TIFLOW_NOTIFY_CONFIG", f"pilots,copil,coordinator={url}")
        yield sink


def _workbook(mail: object) -> tuple[str, bytes]:
    from email.message import EmailMessage

    assert isinstance(mail, EmailMessage)
    [part] = [p for p in mail.iter_attachments() if p.get_content_type() == XLSX_CONTENT_TYPE]
    data = part.get_content()
    assert isinstance(data, bytes)
    return str(part.get_filename()), data


def _budget_rows(engine: Engine) -> list[tuple[str, str, str]]:
    m = OutboxMessage.__table__.c  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(m.key, m.address, m.status).where(m.kind == "budget").order_by(m.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def planned_2024() -> Decimal:
    """The example's 2024 budget lines, summed independently of the consolidation."""
    return sum(
        (Decimal(v) for a in ACTIONS for (year, _), v in a.budget.items() if year == 2024),
        Decimal(0),
    )


def test_the_workbook_goes_to_the_coordinators_once_per_version(
    flow_env: Engine, smtp_env: SmtpSink, example_plan: str
) -> None:
    params = BudgetParameters(year=2024, territory=example_plan, as_of=date(2024, 6, 1))

    first = consolidate_budget(params)

    assert isinstance(first, BudgetRunResult)
    assert (first.version, first.emails, first.sent) == (1, 1, 1)
    [mail] = smtp_env.messages_to(CLAIRE)
    assert mail["Subject"] == "Budget 2024 consolidé — Grand Est Touraine (version 1)"
    text = body_of(mail)
    assert "Bonjour Claire Moreau," in text
    assert "Le budget 2024 du territoire Grand Est Touraine a été consolidé" in text
    assert f"Prévu total\u00a0: {format_eur(planned_2024())}" in text
    name, data = _workbook(mail)
    assert name == XLSX.format(1)
    assert data == first.files.xlsx.read_bytes()  # the very workbook written to disk
    summary = load_workbook(io.BytesIO(data))["Synthèse"]
    facts = {row[0]: row[1] for row in summary.iter_rows(values_only=True) if row and row[0]}
    assert facts["Version de l'instantané"] == 1
    assert Decimal(str(facts["Prévu total"])) == planned_2024()

    second = consolidate_budget(params)  # a re-run is a new version, hence a new e-mail

    assert isinstance(second, BudgetRunResult)
    assert (second.version, second.emails, second.sent) == (2, 1, 1)
    mails = smtp_env.messages_to(CLAIRE)
    assert [_workbook(m)[0] for m in mails] == [XLSX.format(1), XLSX.format(2)]
    assert "la version 1 reste archivée" in body_of(mails[1])
    assert _budget_rows(flow_env) == [
        ("budget:2024:grand-est-touraine:v1", CLAIRE, "sent"),
        ("budget:2024:grand-est-touraine:v2", CLAIRE, "sent"),
    ]
    assert smtp_env.messages_to(NATIONAL) == []

    # All territories: the national workbook goes once to the coordinator tag's own address.
    national = consolidate_budget(BudgetParameters(year=2024, as_of=date(2024, 6, 1)))

    assert isinstance(national, BudgetRunResult) and national.sent == 1
    assert len(smtp_env.messages_to(CLAIRE)) == 2
    [mail] = smtp_env.messages_to(NATIONAL)
    assert mail["Subject"] == "Budget 2024 consolidé — Tous les territoires (version 1)"
    assert "Le budget 2024 de tous les territoires a été consolidé" in body_of(mail)
    assert _workbook(mail)[0] == "budget-2024-tous-territoires-v1.xlsx"


def test_the_same_snapshot_is_enqueued_once(engine: Engine, example_plan: str) -> None:
    with UnitOfWork(engine) as uow:
        figures = consolidate(uow, 2024, example_plan, date(2024, 6, 1))
    snapshot = store_snapshot(lambda: UnitOfWork(engine), figures, "run-1")

    results = []
    for _ in range(2):
        with UnitOfWork(engine) as uow:
            results.append(enqueue_budget_mail(uow, snapshot, correlation_id="run-1"))
            uow.commit()

    assert [(len(r.created), r.existing) for r in results] == [(1, 0), (0, 1)]
    assert _budget_rows(engine) == [("budget:2024:grand-est-touraine:v1", CLAIRE, "pending")]
