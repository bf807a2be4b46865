"""The runs page (coordinator): start any of tiflow's flows with its French form, and see the
recent runs and their outcome in French, through Prefect's API (`tiflow.web.prefect_link`);
a link to Prefect's UI for the operator. Without a reachable Prefect server the page says so.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response

from flows.usecases.bus import unit_of_work
from models.errors import NotFound
from tiflow.web import flow_forms, prefect_link
from tiflow.web.access import NOT_FOUND, Refusal
from tiflow.web.app import Context, Guarded, add_route, page, redirect

PROBLEMS = {
    "prefect": prefect_link.NO_SERVER,
    "deploiement": prefect_link.UNKNOWN_DEPLOYMENT,
    "erreur": prefect_link.PREFECT_ERROR,
}


def register(router: FastAPI) -> None:
    add_route(router, "/t/{territory}/executions", runs_page, name="runs")
    add_route(router, "/t/{territory}/executions/{deploiement}", run_form, name="run_form")
    add_route(
        router,
        "/t/{territory}/executions/{deploiement}",
        run_start,
        name="run_start",
        methods=["POST"],
    )


def runs_page(ctx: Guarded, execution: str = "", probleme: str = "") -> HTMLResponse:
    assert ctx.territory is not None
    link = prefect_link.find(ctx.web.settings.data_dir)
    runs: list[prefect_link.RunRow] = []
    trouble = ""
    if link.api_url is not None:
        try:
            runs = prefect_link.recent_runs(link, ctx.territory.code)
        except prefect_link.PrefectProblem as error:
            trouble = str(error)
    return page(
        ctx,
        "runs.html",
        link=link,
        runs=runs,
        trouble=trouble,
        flows=list(prefect_link.startable().values()),
        started=execution if len(execution) == 36 else "",
        problem=PROBLEMS.get(probleme, ""),
    )


def _startable(deploiement: str) -> prefect_link.Startable:
    found = prefect_link.startable().get(deploiement)
    if found is None:
        raise Refusal(404, NOT_FOUND)
    return found


def _form_page(
    ctx: Context,
    item: prefect_link.Startable,
    status: int = 200,
    errors: dict[str, list[str]] | None = None,
) -> HTMLResponse:
    assert ctx.territory is not None
    return page(
        ctx,
        "run_form.html",
        status=status,
        item=item,
        parameters=flow_forms.parameters_of(item.flow, ctx.territory.code),
        link=prefect_link.find(ctx.web.settings.data_dir),
        errors=errors or {},
        values=ctx.form,
    )


def run_form(ctx: Guarded, deploiement: str) -> HTMLResponse:
    return _form_page(ctx, _startable(deploiement))


def run_start(ctx: Guarded, deploiement: str) -> Response:
    """Check the form with the flow's own types, then create the run of its deployment."""
    assert ctx.territory is not None and ctx.principal is not None
    item = _startable(deploiement)
    parameters = flow_forms.parameters_of(item.flow, ctx.territory.code)
    raw = flow_forms.submitted(parameters, ctx.form)
    try:
        checked = flow_forms.validated(item.flow, raw, parameters)
    except flow_forms.FormProblems as problems:
        return _form_page(ctx, item, 400, problems.problems)
    if problem := _foreign_copil(ctx, checked):
        return _form_page(ctx, item, 400, {"": [problem]})
    base = f"/t/{ctx.territory.code}/executions"
    link = prefect_link.find(ctx.web.settings.data_dir)
    if link.api_url is None:
        return redirect(ctx, f"{base}?probleme=prefect")
    try:
        run = prefect_link.start(link, deploiement, checked, ctx.principal.email)
    except prefect_link.PrefectProblem as error:
        code = "deploiement" if str(error) == prefect_link.UNKNOWN_DEPLOYMENT else "erreur"
        return redirect(ctx, f"{base}?probleme={code}")
    return redirect(ctx, f"{base}?execution={run.id}")


def _foreign_copil(ctx: Context, parameters: dict[str, Any]) -> str:
    """A COPIL named by the form must be one of this territory's."""
    assert ctx.territory is not None
    for value in parameters.values():
        copil_id = value.get("copil_id") if isinstance(value, dict) else None
        if not isinstance(copil_id, int):
            continue
        with unit_of_work(ctx.engine) as uow:
            try:
                copil = uow.repo.copil(copil_id)
            except NotFound:
                copil = None
            if copil is None or copil.territory_id != ctx.territory.id:
                return f"N° du COPIL : le COPIL n° {copil_id} n'est pas un COPIL de ce territoire."
    return ""
