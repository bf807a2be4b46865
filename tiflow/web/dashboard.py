"""The plan at a glance: the coordinator's territory home page (COPIL members and national
readers read it too).

Counts by state and axis, what is late or at risk and why (the digest's own reading,
`flows.usecases.digest.late_and_at_risk`), the next COPIL and what awaits its decision, and
the year's charts (`flows.usecases.charts`, drawn by `notifications.charts`) with their
figures in a table, each one downloadable as PNG. Reads only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session, col, select

from flows.usecases import charts
from flows.usecases.bus import unit_of_work
from flows.usecases.digest import late_and_at_risk
from models.lifecycle import AWAITING_DECISION, State
from models.tables import ActionSheet, CopilAgendaItem, CopilMeeting, Territory
from models.vocabulary import Axis, CopilStatus
from notifications import charts as drawing
from tiflow.web.access import NOT_FOUND, Refusal
from tiflow.web.app import Guarded, add_route, page, set_cookies
from tiflow.web.pilot import today
from tiflow.web.sessions import utcnow

FIRST_YEAR, LAST_YEAR = 2000, 2100


def register(router: FastAPI) -> None:
    add_route(router, "/t/{territory}/tableau-de-bord", dashboard, name="dashboard")
    add_route(
        router, "/t/{territory}/tableau-de-bord/{slug}.png", chart_png, name="dashboard_chart"
    )


@dataclass
class Counts:
    """Actions per axis and state (the states in lifecycle order, only those present)."""

    states: list[State]
    axes: list[Axis]
    cells: Counter[tuple[Axis, State]] = field(default_factory=Counter)

    def by_state(self, state: State) -> int:
        return sum(n for (_, s), n in self.cells.items() if s is state)

    def by_axis(self, axis: Axis) -> int:
        return sum(n for (a, _), n in self.cells.items() if a is axis)

    @property
    def total(self) -> int:
        return sum(self.cells.values())


# Statements built once per process (bound parameters): a request binds its values.
_A = ActionSheet.__table__.c  # type: ignore[attr-defined]
_COUNTS = (
    sa.select(_A.axis, _A.state, sa.func.count())
    .where(_A.territory_id == sa.bindparam("territory_id"))
    .group_by(_A.axis, _A.state)
)
_NEXT_MEETING = (
    select(CopilMeeting)
    .where(
        CopilMeeting.territory_id == sa.bindparam("territory_id"),
        CopilMeeting.status == CopilStatus.SCHEDULED,
        col(CopilMeeting.held_at) >= sa.bindparam("now"),
    )
    .order_by(col(CopilMeeting.held_at))
)
_ON_AGENDA = (
    select(ActionSheet)
    .join(CopilAgendaItem, col(CopilAgendaItem.action_id) == col(ActionSheet.id))
    .where(CopilAgendaItem.copil_id == sa.bindparam("copil_id"))
    .order_by(col(CopilAgendaItem.position), col(ActionSheet.number))
)
_AWAITING = (
    select(ActionSheet)
    .where(
        ActionSheet.territory_id == sa.bindparam("territory_id"),
        col(ActionSheet.state).in_([s.value for s in AWAITING_DECISION]),
    )
    .order_by(col(ActionSheet.number))
)


def counts(session: Session, territory_id: int) -> Counts:
    cells: Counter[tuple[Axis, State]] = Counter()
    for axis, state, n in session.execute(_COUNTS, {"territory_id": territory_id}):
        cells[(Axis(axis), State(state))] = n
    states = [s for s in State if any(k[1] is s for k in cells)]
    axes = [x for x in Axis if any(k[0] is x for k in cells)]
    return Counts(states, axes, cells)


@dataclass(frozen=True)
class NextCopil:
    meeting: CopilMeeting
    awaiting: list[ActionSheet]  # on its agenda, then every other action awaiting a decision


def next_copil(session: Session, territory: Territory) -> NextCopil | None:
    meeting = session.exec(
        _NEXT_MEETING, params={"territory_id": territory.id, "now": utcnow()}
    ).first()
    if meeting is None:
        return None
    listed = session.exec(_ON_AGENDA, params={"copil_id": meeting.id}).all()
    seen = {x.id for x in listed}
    waiting = session.exec(_AWAITING, params={"territory_id": territory.id}).all()
    return NextCopil(meeting, [*listed, *(x for x in waiting if x.id not in seen)])


def _year(annee: str) -> int:
    if not annee:
        return today().year
    if not annee.isdigit() or not FIRST_YEAR <= int(annee) <= LAST_YEAR:
        raise Refusal(404, NOT_FOUND)
    return int(annee)


def dashboard(ctx: Guarded, annee: str = "") -> HTMLResponse:
    assert ctx.territory is not None and ctx.territory.id is not None
    year, as_of = _year(annee), today()
    with unit_of_work(ctx.engine) as uow:
        s = uow.session
        late, at_risk = late_and_at_risk(s, ctx.territory.id, as_of)
        plan_charts = charts.plan_charts(s, ctx.territory, year, as_of)
        return page(
            ctx,
            "dashboard.html",
            year=year,
            years=_years(year),
            today=as_of,
            counts=counts(s, ctx.territory.id),
            late=late,
            at_risk=at_risk,
            next=next_copil(s, ctx.territory),
            charts=[(c, drawing.svg(c), drawing.table_rows(c)) for c in plan_charts],
        )


def _years(year: int) -> list[int]:
    return [year - 1, year, year + 1]


def chart_png(ctx: Guarded, slug: str, annee: str = "") -> Response:
    assert ctx.territory is not None
    year = _year(annee)
    with unit_of_work(ctx.engine) as uow:
        found = [
            c
            for c in charts.plan_charts(uow.session, ctx.territory, year, today())
            if c.slug == slug
        ]
    if not found:
        raise Refusal(404, NOT_FOUND)
    name = f"{ctx.territory.code}-{slug}-{year}.png"
    response = Response(
        drawing.png(found[0]),
        media_type="image/png",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
    set_cookies(ctx, response)
    return response
