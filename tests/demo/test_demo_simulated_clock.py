"""The demo's year has one clock: every timestamp it writes — ``Date:`` headers, ``.eml`` file
names, the invitations' DTSTAMP and SEQUENCE, outbox rows, history rows, the budget's
"consolidé le" — is an instant of the simulated year, never the machine's today."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

import icalendar
import sqlalchemy as sa
from openpyxl import load_workbook

from models.outbox import OutboxMessage, OutboxStatus
from models.tables import ActionSheet, BudgetSnapshot, TransitionRecord
from tests.demo.conftest import DemoRun

PARIS = ZoneInfo("Europe/Paris")
YEAR_START = datetime(2024, 1, 1, tzinfo=PARIS)
YEAR_END = datetime(2025, 1, 2, 23, 59, tzinfo=PARIS)  # the budget runs on 2 January 2025


def in_the_year(instant: datetime) -> bool:
    if instant.tzinfo is None:  # SQLite drops the offset; tiflow stores UTC
        instant = instant.replace(tzinfo=UTC)
    return YEAR_START <= instant <= YEAR_END


def test_every_email_of_the_demo_is_dated_inside_the_simulated_year(demo_run: DemoRun) -> None:
    assert len(demo_run.emails) > 100
    for email in demo_run.emails:
        sent = parsedate_to_datetime(str(email.message["Date"]))
        assert in_the_year(sent), (email.path.name, email.message["Date"])
        # The file name starts with the same instant, in UTC.
        stamp = datetime.strptime(email.path.name.split("_")[0], "%Y-%m-%dT%H%M%S.%fZ")
        assert stamp.replace(tzinfo=UTC) == sent.astimezone(UTC).replace(microsecond=0)


def test_the_copil_invitations_are_stamped_on_the_day_their_digest_went_out(
    demo_run: DemoRun,
) -> None:
    stamps = set()
    for email in demo_run.of_kind("digest"):
        sent = parsedate_to_datetime(str(email.message["Date"]))
        ics = email.attachments()["invitation-copil.ics"]
        event = icalendar.Calendar.from_ical(ics).walk("VEVENT")[0]
        assert event.decoded("dtstamp") == sent.astimezone(UTC)
        # SEQUENCE counts the minutes since 1 January 2024: a J-3 invitation replaces the J-10.
        minutes = (sent - datetime(2024, 1, 1, tzinfo=UTC)).total_seconds() // 60
        assert int(event["sequence"]) == minutes
        stamps.add(sent.astimezone(PARIS).strftime("%d/%m/%Y"))
    assert {"15/01/2024", "10/06/2024", "17/06/2024"} <= stamps


def test_outbox_and_history_rows_carry_simulated_instants(demo_run: DemoRun) -> None:
    m = OutboxMessage.__table__.c  # type: ignore[attr-defined]
    t = TransitionRecord.__table__.c  # type: ignore[attr-defined]
    a = ActionSheet.__table__.c  # type: ignore[attr-defined]
    with demo_run.engine.connect() as conn:
        outbox = conn.execute(
            sa.select(m.created_at, m.sent_at, m.next_attempt_at, m.status, m.kind)
        ).all()
        history = conn.execute(sa.select(t.at)).scalars().all()
        actions = conn.execute(sa.select(a.created_at, a.updated_at)).all()
    assert outbox and history and actions
    for row in outbox:
        if row.status == OutboxStatus.PENDING.value:
            # Only nudges the last sweep enqueued ahead, for their day after the year's end.
            assert row.kind == "reminder" and row.next_attempt_at > YEAR_END, row
            assert in_the_year(row.created_at) and row.sent_at is None, row
        elif row.status == OutboxStatus.DROPPED.value:  # a note came first: never sent
            assert in_the_year(row.created_at) and in_the_year(row.next_attempt_at), row
            assert row.kind == "reminder" and row.sent_at is None, row
        else:  # everything else of the demo was delivered, in the year
            assert row.status == OutboxStatus.SENT.value, row
            assert all(in_the_year(v) for v in row[:3]), row
    assert all(in_the_year(value) for value in history)
    # The example is loaded on the year's first morning; every action moved during the year.
    assert all(in_the_year(value) for row in actions for value in row)


def test_the_budget_says_it_was_consolidated_on_2_january_2025(demo_run: DemoRun) -> None:
    s = BudgetSnapshot.__table__.c  # type: ignore[attr-defined]
    with demo_run.engine.connect() as conn:
        created = conn.execute(sa.select(s.created_at)).scalar_one()
    assert created.replace(tzinfo=UTC).astimezone(PARIS) == datetime(2025, 1, 2, 7, tzinfo=PARIS)

    (mail,) = demo_run.of_kind("budget")
    assert "consolidé le jeudi 2 janvier 2025 à 7 h" in mail.text()
    workbook = next(data for name, data in mail.attachments().items() if name.endswith(".xlsx"))
    sheet = load_workbook(io.BytesIO(workbook)).worksheets[0]
    facts = {row[0]: row[1] for row in sheet.iter_rows(values_only=True) if row and row[0]}
    assert facts["Consolidé le (heure de Paris)"] == datetime(2025, 1, 2, 7, 0)
