"""The pilot's pages: "Mes actions", the action page, and its progress forms.

Each form is one call of `flows.usecases.progress.report_progress`, the use case the progress
flow runs: same guards, same history row (the signed-in person is its actor), same events.
Bad input gets the use case's French message next to the field, and nothing is written.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import date
from typing import Any

from fastapi import BackgroundTasks, FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.engine import Engine

from flows.usecases.bus import unit_of_work
from flows.usecases.funding import record_funding
from flows.usecases.progress import IndicatorValue, MilestoneDone, report_progress
from flows.usecases.service import paris_date
from models.errors import ConcurrencyConflict, InvalidInput
from models.tables import Funding, Organisation
from models.uow import UnitOfWork
from tiflow.spreadsheet.cells import CellError, parse_date, parse_decimal
from tiflow.web.app import Context, Guarded, add_route, page, redirect
from tiflow.web.sessions import utcnow
from tiflow.web.views import action_page, plan_rows

log = logging.getLogger(__name__)


def register(router: FastAPI) -> None:
    add_route(router, "/t/{territory}/mes-actions", my_actions, name="my_actions")
    add_route(router, "/t/{territory}/actions/{number}", action, name="action")
    add_route(router, "/action/{action_id}", action_link, name="action_link")
    for name, path in (
        ("progress_note", "note"),
        ("progress_milestone", "jalon"),
        ("progress_indicator", "indicateur"),
        ("progress_dossier", "dossier"),
    ):
        add_route(
            router,
            f"/t/{{territory}}/actions/{{number}}/{path}",
            _form_route(name),
            name=name,
            methods=["POST"],
        )


def today() -> date:
    return paris_date(utcnow())


def my_actions(ctx: Guarded) -> HTMLResponse:
    assert ctx.principal is not None and ctx.territory is not None
    assert ctx.territory.id is not None
    person = ctx.principal.person_ids.get(ctx.territory.id)
    with unit_of_work(ctx.engine) as uow:
        rows = plan_rows(uow, ctx.territory, today(), pilot_id=person or -1)
        return page(ctx, "my_actions.html", rows=rows, today=today())


def action(ctx: Guarded) -> HTMLResponse:
    return _action_page(ctx)


def action_link(ctx: Guarded) -> RedirectResponse:
    """The address in reminder e-mails: stable, leads through sign-in, then to the page."""
    assert ctx.territory is not None and ctx.action is not None
    return redirect(ctx, f"/t/{ctx.territory.code}/actions/{ctx.action.number}")


def _action_page(
    ctx: Context, status: int = 200, errors: dict[str, list[str]] | None = None
) -> HTMLResponse:
    assert ctx.territory is not None and ctx.action is not None
    with unit_of_work(ctx.engine) as uow:
        details = action_page(uow, ctx.territory, ctx.action)  # as the guard read it
        pilot_id = details.action.pilot_id
        return page(
            ctx,
            "action.html",
            status=status,
            page=details,
            today=today(),
            errors=errors or {},
            values=ctx.form,
            can_write=ctx.may("progress_note", pilot_id),
            saved=ctx.request.query_params.get("enregistre", ""),
        )


# One builder per form: the use case's arguments from the fields (or a French error).
Builder = Callable[[dict[str, str]], dict[str, Any]]


def _note(form: dict[str, str]) -> dict[str, Any]:
    return {"note": form.get("note", "")}


def _milestone(form: dict[str, str]) -> dict[str, Any]:
    done_on = _date(form.get("fait_le", ""), "Date de réalisation")
    return {"milestones_done": [MilestoneDone(form.get("jalon", ""), done_on)]}


def _indicator(form: dict[str, str]) -> dict[str, Any]:
    text = form.get("valeur", "").strip()
    if not text:
        raise InvalidInput(["Valeur : saisissez la valeur mesurée (par exemple 12,5)."])
    try:
        value = parse_decimal(text)
    except CellError as error:
        raise InvalidInput([f"Valeur : {error}."]) from None
    measured_on = _date(form.get("mesure_le", ""), "Date de mesure")
    return {"indicator_values": [IndicatorValue(form.get("indicateur", ""), value, measured_on)]}


def _date(text: str, label: str) -> date | None:
    if not text.strip():
        return None
    try:
        return parse_date(text)
    except CellError as error:
        raise InvalidInput([f"{label} : {error}."]) from None


def _dossier(form: dict[str, str]) -> dict[str, Any]:
    """« Dossier déposé » of one funding row (issue 15): the funding use case's own
    `dossier_filed_on`, which stops the « dépôt du dossier » reminder."""
    line = form.get("financement", "")
    if not line.isdigit():
        raise InvalidInput(["Financement : choisissez la demande de financement déposée."])
    filed_on = _date(form.get("depose_le", ""), "Déposé le") or today()
    return {"funding_id": int(line), "dossier_filed_on": filed_on}


BUILDERS: dict[str, tuple[Builder, str]] = {
    "progress_note": (_note, "note"),
    "progress_milestone": (_milestone, "jalon"),
    "progress_indicator": (_indicator, "indicateur"),
    "progress_dossier": (_dossier, "dossier"),
}


def _progress(uow: UnitOfWork, ctx: Context, arguments: dict[str, Any]) -> None:
    assert ctx.principal is not None and ctx.territory is not None and ctx.action is not None
    report_progress(
        uow,
        ctx.territory.code,
        ctx.action.number,
        author_email=ctx.principal.email,
        recorded_by=ctx.principal.name,
        **arguments,
    )


def _file_dossier(uow: UnitOfWork, ctx: Context, arguments: dict[str, Any]) -> None:
    """The funding use case on the action's own funding row (a row of another action is
    refused as unknown)."""
    assert ctx.principal is not None and ctx.territory is not None and ctx.action is not None
    line = uow.session.get(Funding, arguments["funding_id"])
    if line is None or line.action_id != ctx.action.id:
        raise InvalidInput(["Financement : cette demande n'est pas une demande de l'action."])
    funder = uow.session.get_one(Organisation, line.funder_id)
    record_funding(
        uow,
        ctx.territory.code,
        ctx.action.number,
        funder=funder.short_name or funder.name,
        year=line.year,
        dossier_filed_on=arguments["dossier_filed_on"],
        recorded_by=ctx.principal.name,
    )


# The use case each form calls (default: the progress report).
CALLS: dict[str, Callable[[UnitOfWork, Context, dict[str, Any]], None]] = {
    "progress_dossier": _file_dossier,
}


def _form_route(name: str) -> Callable[..., HTMLResponse | RedirectResponse]:
    def submit(ctx: Guarded, tasks: BackgroundTasks) -> HTMLResponse | RedirectResponse:
        return _report(ctx, name, tasks)

    submit.__name__ = name
    return submit


def _report(ctx: Context, name: str, tasks: BackgroundTasks) -> HTMLResponse | RedirectResponse:
    """Call the use case; on success back to the page (303), on error the page with the
    message next to the form (422) and nothing written."""
    assert ctx.principal is not None and ctx.territory is not None and ctx.action is not None
    build, field = BUILDERS[name]
    try:
        arguments = build(ctx.form)
        with unit_of_work(ctx.engine) as uow:
            CALLS.get(name, _progress)(uow, ctx, arguments)
            uow.commit()
    except (InvalidInput, ConcurrencyConflict) as error:
        problems = list(error.problems) if isinstance(error, InvalidInput) else [str(error)]
        return _action_page(ctx, status=422, errors={field: problems})
    tasks.add_task(publish_events, ctx.engine)
    target = f"/t/{ctx.territory.code}/actions/{ctx.action.number}?enregistre={field}"
    return redirect(ctx, target + f"#{field}")


def publish_events(engine: Engine) -> None:
    """The progress event was stored in the event outbox with the change (the bus's unit of
    work); publish what waits, after the answer, when a Prefect server is configured
    (PREFECT_API_URL). Without one, emitting would start Prefect's ephemeral server inside the
    web process (half a minute on a busy machine): the events then wait for the next flow's
    publishing round, as for every entrance."""
    if not os.environ.get("PREFECT_API_URL"):
        return
    try:
        from flows.events import publish_pending_events

        publish_pending_events(engine)
    except Exception:  # the change and its event are committed; the next round sends it
        log.exception("publishing the event outbox failed")
