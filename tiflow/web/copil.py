"""Reading pages: the territory's plan (filters), the COPILs (agenda, digest, decisions)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from flows.usecases.bus import unit_of_work
from flows.usecases.copil import copil_info, copil_label
from flows.usecases.digest import preview_digest
from models.lifecycle import State
from models.vocabulary import Axis, CopilStatus
from tiflow.web.app import Guarded, add_route, page
from tiflow.web.pilot import today
from tiflow.web.views import PlanFilters, copils, decisions_of, pilot_choices, plan_rows


def register(router: FastAPI) -> None:
    add_route(router, "/t/{territory}/plan", plan, name="plan")
    add_route(router, "/t/{territory}/copil", copil_list, name="copils")
    add_route(router, "/t/{territory}/copil/{copil_id}", copil_page, name="copil")


def plan(
    ctx: Guarded, axe: str = "", etat: str = "", pilote: str = "", retard: str = ""
) -> HTMLResponse:
    assert ctx.territory is not None
    filters = PlanFilters.parse(axe, etat, pilote, retard)
    with unit_of_work(ctx.engine) as uow:
        rows = plan_rows(uow, ctx.territory, today(), filters)
        pilots = pilot_choices(uow, ctx.territory)
        return page(
            ctx,
            "plan.html",
            rows=rows,
            filters=filters,
            axes=list(Axis),
            states=list(State),
            pilots=pilots,
            today=today(),
        )


def copil_list(ctx: Guarded) -> HTMLResponse:
    assert ctx.territory is not None
    with unit_of_work(ctx.engine) as uow:
        upcoming, held = copils(uow, ctx.territory)
        return page(ctx, "copils.html", upcoming=upcoming, held=held)


def copil_page(ctx: Guarded) -> HTMLResponse:
    """A scheduled COPIL: its agenda and its digest as it stands today; a held one: its
    decisions."""
    assert ctx.copil is not None and ctx.copil.id is not None
    scheduled = ctx.copil.status == CopilStatus.SCHEDULED
    with unit_of_work(ctx.engine) as uow:
        # A scheduled COPIL shows the digest's agenda: the meeting's own (`copil_info`) is
        # read only for the others.
        info = None if scheduled else copil_info(uow, ctx.copil.id)
        digest = (
            preview_digest(uow.session, ctx.copil.id, today(), summary=True) if scheduled else None
        )
        decisions = decisions_of(uow, ctx.copil)
        return page(
            ctx,
            "copil.html",
            label=copil_label(ctx.copil.held_at),
            info=info,
            digest=digest,
            decisions=decisions,
            meeting=ctx.copil,
        )
