"""The plan's charts for a territory's year: what they show, from the figures already defined.

The figures come from the budget consolidation (`flows.usecases.budget.consolidation`, labels
of `models.figures`) and from the milestones with `models.deadlines.is_late`: nothing here
defines a figure again. Drawing is `notifications.charts` (SVG and PNG of the same shapes).

    charts_svg(session, "grand-est-touraine", 2025)  # [(slug, title, svg), …]
    charts_png(session, "grand-est-touraine", 2025)  # [(slug, title, png bytes), …]
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import Session

from flows.usecases.budget.calendar import paris_today
from flows.usecases.budget.consolidation import Consolidation, View, consolidate_with
from models import figures
from models.deadlines import is_late
from models.lifecycle import DROPPED_OUT
from models.tables import ActionSheet, Milestone, Territory
from notifications.charts import Chart, png, series_of, svg
from notifications.fr import month_abbreviation

# ---------------------------------------------------------------------------------------------
# The figures


def budget_per_axis(consolidation: Consolidation) -> Chart:
    F = figures.Figure
    lines = consolidation.view(View.AXIS)
    return Chart(
        "budget-par-axe",
        f"Budget {consolidation.year} par axe",
        [line.label for line in lines],
        series_of(F.PLANNED.label, F.GRANTED.label, F.PAID.label),
        [[line.figures.planned, line.figures.granted, line.figures.paid] for line in lines],
        note=f"{figures.OUT_OF_PLAN_LABEL} non comptées.",
    )


def funding_per_funder(consolidation: Consolidation) -> Chart:
    F = figures.Figure
    lines = consolidation.view(View.FUNDER)
    return Chart(
        "financement-par-financeur",
        f"Financements {consolidation.year} par financeur",
        [line.label for line in lines],
        series_of(F.REQUESTED.label, F.GRANTED.label, F.PAID.label),
        [[line.figures.requested, line.figures.granted, line.figures.paid] for line in lines],
    )


MILESTONE_SERIES = ("Faits", "En retard", "À venir")


def milestones_over_year(session: Session, territory_id: int, year: int, as_of: date) -> Chart:
    """Milestones due each month of the year, of the actions still in the plan: done, late
    (`models.deadlines.is_late`) or still to come."""
    m = Milestone.__table__.c  # type: ignore[attr-defined]
    a = ActionSheet.__table__.c  # type: ignore[attr-defined]
    rows = session.execute(
        sa.select(m.due_date, m.done_on)
        .join(ActionSheet, a.id == m.action_id)
        .where(
            a.territory_id == territory_id,
            a.state.not_in([s.value for s in DROPPED_OUT]),
            m.due_date >= date(year, 1, 1),
            m.due_date <= date(year, 12, 31),
        )
    ).all()
    counts = [[Decimal(0)] * 3 for _ in range(12)]
    for due, done in rows:
        column = 0 if done is not None else 1 if is_late(due, as_of, done) else 2
        counts[due.month - 1][column] += 1
    return Chart(
        "jalons",
        f"Jalons {year} par mois d'échéance",
        [month_abbreviation(date(year, month, 1)) for month in range(1, 13)],
        series_of(*MILESTONE_SERIES),
        counts,
        money=False,
        stacked=True,
    )


def plan_charts(
    session: Session, territory: str | Territory, year: int, as_of: date | None = None
) -> list[Chart]:
    """The three charts of a territory's year (territory: its code, or itself when the caller
    has it: looked up once, by the consolidation, or not at all)."""
    as_of = as_of or paris_today()
    consolidation = consolidate_with(session, year, territory, as_of)
    assert consolidation.territory_id is not None
    return [
        budget_per_axis(consolidation),
        funding_per_funder(consolidation),
        milestones_over_year(session, consolidation.territory_id, year, as_of),
    ]


def charts_svg(
    session: Session, territory: str | Territory, year: int, as_of: date | None = None
) -> list[tuple[str, str, str]]:
    """(slug, French title, SVG document) of each chart: for the COPIL dossier."""
    return [(c.slug, c.title, svg(c)) for c in plan_charts(session, territory, year, as_of)]


def charts_png(
    session: Session, territory: str | Territory, year: int, as_of: date | None = None
) -> list[tuple[str, str, bytes]]:
    """(slug, French title, PNG bytes) of each chart."""
    return [(c.slug, c.title, png(c)) for c in plan_charts(session, territory, year, as_of)]
