"""One definition of each figure (models.figures), used by the consolidation, the workbook and
the e-mail: actions out of the plan apart, grants above the plan flagged, the consolidated
budget against the one the COPIL validated. Both databases (the `uow` fixture)."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

import openpyxl

from flows.usecases.budget.consolidation import View, consolidate
from flows.usecases.budget.mail import budget_message
from flows.usecases.budget.reports import budget_workbook, markdown_summary
from flows.usecases.budget.snapshots import load_snapshot, record_snapshot
from models import figures
from models.lifecycle import State
from models.tables import CopilMeeting
from models.uow import UnitOfWork
from models.vocabulary import CopilStatus
from tests.budget.builders import FON, INV, add_action, add_funder, add_territory

UowFactory = Callable[[], UnitOfWork]
CODE = "figures-test"


def test_figures_are_defined_once_with_their_french_labels() -> None:
    assert figures.left_to_fund(Decimal("100.00"), Decimal("30.00")) == Decimal("70.00")
    assert figures.left_to_fund(Decimal("100.00"), Decimal("130.00")) == Decimal("0.00")
    assert figures.over_granted(Decimal("100.00"), Decimal("130.00")) == Decimal("30.00")
    assert figures.left_to_pay(Decimal("60.00"), Decimal("18.00")) == Decimal("42.00")
    assert not figures.in_plan(State.ABANDONED) and not figures.in_plan(State.REJECTED)
    assert figures.in_plan(State.PROPOSED) and figures.in_plan(State.COMPLETED)
    assert [f.label for f in figures.Figure][:7] == [
        "Prévu",
        "Validé en COPIL",
        "Demandé",
        "Accordé",
        "Versé",
        "Reste à financer",
        "Reste à verser",
    ]


def _plan(u: UnitOfWork) -> None:
    t = add_territory(u, CODE, "Figures (test)")
    region, etat = add_funder(u, t, "Région"), add_funder(u, t, "État")
    # FA-01: 2024 granted above its 2024 plan (the whole grant booked in the start year)
    add_action(
        u,
        t,
        "FA-01",
        state=State.FUNDED,
        budget={(2024, INV): "100000.00", (2025, INV): "40000.00"},
        funding={(region, 2024): ("140000.00", "140000.00", "42000.00")},
    )
    # FA-02: short of funding this year
    add_action(
        u,
        t,
        "FA-02",
        state=State.VALIDATED,
        budget={(2024, FON): "50000.00"},
        funding={(etat, 2024): ("30000.00", "20000.00", "0.00")},
    )
    # FA-03: abandoned, out of the plan
    add_action(
        u,
        t,
        "FA-03",
        state=State.ABANDONED,
        budget={(2024, FON): "60000.00"},
        funding={(etat, 2024): ("42000.00", "0.00", "0.00")},
    )
    u.session.add(
        CopilMeeting(
            territory_id=t,
            held_at=datetime(2024, 1, 25, 11, 0, tzinfo=UTC),
            status=CopilStatus.HELD,
            budget_year=2024,
            validated_budget=Decimal("210000.00"),
        )
    )
    u.commit()


def test_out_of_plan_actions_apart_over_grants_flagged_and_validated_budget_compared(
    uow: UowFactory,
) -> None:
    with uow() as u:
        _plan(u)
    with uow() as u:
        c = consolidate(u, 2024, CODE, as_of=date(2024, 12, 31))
    total = c.total()
    assert total.planned == Decimal("150000.00")  # FA-03's 60 000 € is not « prévu »
    assert total.requested == Decimal("170000.00")
    assert total.granted == Decimal("160000.00")
    assert total.paid == Decimal("42000.00")
    assert total.left_to_pay == Decimal("118000.00")
    # per action and year: FA-01's excess does not hide FA-02's 30 000 € shortfall
    assert total.left_to_fund == Decimal("30000.00")
    assert total.over_granted == Decimal("40000.00")
    assert [line.key for line in c.view(View.DROPPED)] == ["FA-03"]
    assert c.total(View.AXIS).planned == total.planned
    assert c.total(View.FUNDER).requested == Decimal("170000.00")
    [flagged] = c.over_granted()
    assert flagged.key == "FA-01"
    assert "Accordé au-delà du prévu : 40\u202f000,00\u00a0€" in flagged.note
    assert c.validated is not None and c.validated.on == date(2024, 1, 25)
    rows = dict(c.against_validated())
    assert rows["Validé en COPIL du 25/01/2024"] == Decimal("210000.00")
    assert rows["Écart (prévu consolidé − validé en COPIL)"] == Decimal("-60000.00")
    assert rows[f"{figures.OUT_OF_PLAN_LABEL}, prévu non compté (FA-03)"] == Decimal("60000.00")


def test_workbook_and_email_show_validated_against_consolidated_from_the_snapshot(
    uow: UowFactory,
) -> None:
    with uow() as u:
        _plan(u)
    with uow() as u:
        record_snapshot(u, consolidate(u, 2024, CODE, as_of=date(2024, 12, 31)))
        u.commit()
    with uow() as u:
        snapshot = load_snapshot(u, 2024, CODE)  # read back: the stored figures say it all
    assert snapshot.figures.validated is not None
    assert snapshot.figures.total().over_granted == Decimal("40000.00")
    wb = openpyxl.load_workbook(io.BytesIO(budget_workbook(snapshot)[0]))
    summary = {row[0]: row[1] for row in wb["Synthèse"].iter_rows(values_only=True) if row}
    assert summary["Validé en COPIL du 25/01/2024"] == 210000
    assert summary["Prévu consolidé (actions du plan)"] == 150000
    assert summary["Reste à financer"] == 30000
    assert [r[1] for r in wb["Rejetées ou abandonnées"].iter_rows(min_row=2, values_only=True)][
        :1
    ] == ["FA-03"]
    header = [c.value for c in next(wb["Par action"].iter_rows(max_row=1))]
    assert "Reste à financer" in header and "Reste à verser" in header
    message = budget_message(snapshot, [])
    assert "Validé en COPIL du 25/01/2024\u00a0: 210\u202f000,00\u00a0€" in message.text
    assert (
        "Écart (prévu consolidé − validé en"
        " COPIL)\u00a0: \u221260\u202f000,00\u00a0€" in message.text
    )
    assert "accordé au-delà du prévu" in message.text
    assert "FA-01 «\u00a0Action FA-01\u00a0»\u00a0: Accordé au-delà du prévu" in message.text


def test_a_summary_lists_the_largest_over_grants_and_says_where_the_others_are(
    uow: UowFactory,
) -> None:
    """Beyond OVER_GRANTED_SHOWN (20) the artifact and the e-mail list the largest excesses and
    count the others; the workbook's summary sheet still lists every one."""
    with uow() as u:
        t = add_territory(u, CODE, "Figures (test)")
        region = add_funder(u, t, "Région")
        for n in range(1, 24):  # 23 actions, FA-23 granted the most above its plan
            add_action(
                u,
                t,
                f"FA-{n:02d}",
                state=State.FUNDED,
                budget={(2024, INV): "10000.00"},
                funding={(region, 2024): (f"{10000 + 1000 * n}.00", f"{10000 + 1000 * n}.00", "0")},
            )
        u.commit()
    with uow() as u:
        record_snapshot(u, consolidate(u, 2024, CODE, as_of=date(2024, 12, 31)))
        u.commit()
    with uow() as u:
        snapshot = load_snapshot(u, 2024, CODE)
    shown, left_out = snapshot.figures.over_granted_shown()
    assert [line.key for line in shown] == [f"FA-{n:02d}" for n in range(23, 3, -1)]
    assert left_out == 3
    # (e-mails are typeset: a no-break space before the colon)
    more = "… et 3 autres actions accordées au-delà du prévu", "le classeur les liste toutes"
    message = budget_message(snapshot, [])
    assert "FA-23 «\u00a0Action FA-23\u00a0»" in message.text
    assert "FA-03 «" not in message.text
    assert all(part in message.text and part in message.html for part in more)
    artifact = markdown_summary(snapshot)
    assert "**FA-04**" in artifact and "**FA-03**" not in artifact
    assert all(part in artifact for part in more)
    wb = openpyxl.load_workbook(io.BytesIO(budget_workbook(snapshot)[0]))
    notes = [row[0] for row in wb["Synthèse"].iter_rows(values_only=True) if row and row[0]]
    flagged = [n for n in map(str, notes) if n.startswith("FA-") and "Accordé au-delà" in n]
    assert len(flagged) == 23
