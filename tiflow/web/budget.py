"""The budget pages: the territory's stored consolidations (snapshots, numbered per year), their
workbook and CSV, two versions compared, and a new consolidation started through Prefect.

A consolidation is the flow « Consolider le budget annuel » (flows/budget.py), the one the
yearly schedule runs: the page creates a run of its deployment ``budget-annuel`` for this
territory and a year (`tiflow.web.prefect_link`); the run writes the new version, which then
appears in the list. Reading and comparing use the snapshot and report functions of
`flows.usecases.budget` (nothing is recomputed here).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from sqlmodel import col, select

from flows.usecases.budget.consolidation import MEASURES, Line, View
from flows.usecases.budget.reports import (
    CSV_CONTENT_TYPE,
    XLSX_CONTENT_TYPE,
    csv_bytes,
    report_basename,
    workbook_bytes,
)
from flows.usecases.budget.snapshots import Snapshot, load_snapshot
from flows.usecases.bus import unit_of_work
from models.errors import NotFound
from models.money import ZERO
from models.tables import BudgetSnapshot
from tiflow.spreadsheet.cells import CellError, parse_date
from tiflow.web import flow_forms, prefect_link
from tiflow.web.access import NOT_FOUND, Refusal
from tiflow.web.app import Context, Guarded, add_route, page, redirect
from tiflow.web.pilot import today

DEPLOYMENT = "budget-annuel"
COMPARED_VIEWS = (View.AXIS, View.ACTION)
COMPARED_MEASURES = ("planned", "requested", "granted", "paid")
MEASURE_LABELS = dict(MEASURES)
# Why a consolidation did not start, shown on the page after the redirect (fixed texts only).
PROBLEMS = {
    "prefect": prefect_link.NO_SERVER,
    "deploiement": prefect_link.UNKNOWN_DEPLOYMENT,
    "erreur": prefect_link.PREFECT_ERROR,
}


def register(router: FastAPI) -> None:
    add_route(router, "/t/{territory}/budget", budget_page, name="budget")
    add_route(
        router,
        "/t/{territory}/budget/consolider",
        consolidate,
        name="budget_consolidate",
        methods=["POST"],
    )
    add_route(router, "/t/{territory}/budget/{annee}/comparer", compare, name="budget_compare")
    add_route(
        router, "/t/{territory}/budget/{annee}/v{version}.{kind}", download, name="budget_file"
    )


def snapshots_of(ctx: Context) -> list[BudgetSnapshot]:
    assert ctx.territory is not None
    with unit_of_work(ctx.engine) as uow:
        rows = uow.session.exec(
            select(BudgetSnapshot)
            .where(BudgetSnapshot.scope == ctx.territory.code)
            .order_by(col(BudgetSnapshot.year).desc(), col(BudgetSnapshot.version).desc())
        ).all()
        return [BudgetSnapshot(**r.model_dump()) for r in rows]


def budget_page(ctx: Guarded, execution: str = "", probleme: str = "") -> HTMLResponse:
    return _render(
        ctx, started=execution if _is_uuid(execution) else "", problem=PROBLEMS.get(probleme, "")
    )


def _render(
    ctx: Context,
    status: int = 200,
    started: str = "",
    problem: str = "",
    errors: dict[str, list[str]] | None = None,
) -> HTMLResponse:
    """The list of versions; for the coordinator, the consolidation form and its runs."""
    assert ctx.territory is not None
    snapshots = snapshots_of(ctx)
    link, runs, runs_problem = None, [], ""
    if ctx.may("budget_consolidate"):
        link = prefect_link.find(ctx.web.settings.data_dir)
        try:
            runs = [
                r
                for r in prefect_link.recent_runs(link, ctx.territory.code)
                if r.deployment == DEPLOYMENT or r.flow == _flow_name()
            ][:10]
        except prefect_link.PrefectProblem as trouble:
            runs_problem = str(trouble)
    return page(
        ctx,
        "budget.html",
        status=status,
        snapshots=snapshots,
        years=sorted({s.year for s in snapshots}, reverse=True),
        link=link,
        runs=runs,
        runs_problem=runs_problem,
        started=started,
        problem=problem,
        this_year=today().year,
        errors=errors or {},
        values=ctx.form,
    )


def _flow_name() -> str:
    return prefect_link.startable()[DEPLOYMENT].title


def _is_uuid(text: str) -> bool:
    return len(text) == 36 and all(c in "0123456789abcdef-" for c in text)


def consolidate(ctx: Guarded) -> Response:
    """Start the flow for this territory and the year typed; back to the page, which shows the
    run (or why it could not start)."""
    assert ctx.territory is not None and ctx.principal is not None
    params, errors = _parameters(ctx)
    if errors:
        return _render(ctx, status=400, errors=errors)
    link = prefect_link.find(ctx.web.settings.data_dir)
    base = f"/t/{ctx.territory.code}/budget"
    if link.api_url is None:
        return redirect(ctx, f"{base}?probleme=prefect")
    try:
        run = prefect_link.start(link, DEPLOYMENT, {"params": params}, ctx.principal.email)
    except prefect_link.PrefectProblem as problem:
        code = "deploiement" if str(problem) == prefect_link.UNKNOWN_DEPLOYMENT else "erreur"
        return redirect(ctx, f"{base}?probleme={code}")
    return redirect(ctx, f"{base}?execution={run.id}")


def _parameters(ctx: Context) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The flow's own parameters (`BudgetParameters`, checked by it) for this territory, and
    the form's errors (field → French messages)."""
    from pydantic import ValidationError

    from flows.budget import BudgetParameters

    assert ctx.territory is not None
    errors: dict[str, list[str]] = {}
    as_of: date | None = None
    if ctx.form.get("au", "").strip():
        try:
            as_of = parse_date(ctx.form["au"].strip())
        except CellError as error:
            errors["au"] = [f"Date de situation : {error}"]
    try:
        params = BudgetParameters(
            year=ctx.form.get("annee", "").strip(),  # pydantic parses the text
            territory=ctx.territory.code,
            as_of=as_of,
            scheduled=False,
        )
    except ValidationError as error:
        title = BudgetParameters.model_fields["year"].title
        errors["annee"] = [f"{title} : {flow_forms.french(item)}" for item in error.errors()]
    if errors:
        return {}, errors
    return params.model_dump(mode="json", exclude_none=True), {}


def _snapshot(ctx: Context, year: str, version: str) -> Snapshot:
    assert ctx.territory is not None
    if not (year.isdigit() and version.isdigit()):
        raise Refusal(404, NOT_FOUND)
    with unit_of_work(ctx.engine) as uow:
        try:
            return load_snapshot(uow, int(year), ctx.territory.code, int(version))
        except NotFound as error:
            raise Refusal(404, str(error)) from None


def download(ctx: Guarded, annee: str, version: str, kind: str) -> Response:
    """The workbook or the CSV of one version, as the flow wrote them (same functions)."""
    if kind not in ("xlsx", "csv"):
        raise Refusal(404, NOT_FOUND)
    snapshot = _snapshot(ctx, annee, version)
    data = workbook_bytes(snapshot) if kind == "xlsx" else csv_bytes(snapshot)
    return Response(
        data,
        media_type=XLSX_CONTENT_TYPE if kind == "xlsx" else CSV_CONTENT_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{report_basename(snapshot)}.{kind}"'
        },
    )


@dataclass(frozen=True)
class ComparedLine:
    label: str
    before: list[Decimal]  # COMPARED_MEASURES of the first version (zero: absent)
    after: list[Decimal]
    status: str  # "" (same), "nouvelle", "disparue", "modifiée"

    @property
    def deltas(self) -> list[Decimal]:
        return [b - a for a, b in zip(self.before, self.after, strict=True)]

    @property
    def changed(self) -> bool:
        return bool(self.status)


def compared(first: Snapshot, second: Snapshot, view: View) -> list[ComparedLine]:
    """The lines of `view` in both versions (in the second's order, then the vanished)."""
    before = {line.identity: line for line in first.figures.view(view)}
    after = {line.identity: line for line in second.figures.view(view)}
    result = []
    for identity in [*after, *(i for i in before if i not in after)]:
        old, new = before.get(identity), after.get(identity)
        a, b = _amounts(old), _amounts(new)
        status = "nouvelle" if old is None else "disparue" if new is None else ""
        if not status and a != b:
            status = "modifiée"
        result.append(ComparedLine((new or old).label, a, b, status))  # type: ignore[union-attr]
    return result


def _amounts(line: Line | None) -> list[Decimal]:
    if line is None:
        return [ZERO] * len(COMPARED_MEASURES)
    return [getattr(line.figures, m) for m in COMPARED_MEASURES]


def compare(ctx: Guarded, annee: str, de: str = "", a: str = "") -> HTMLResponse:
    versions = [s.version for s in snapshots_of(ctx) if str(s.year) == annee]
    if not versions:
        raise Refusal(404, f"Aucun instantané du budget {annee} pour ce territoire.")
    second = _snapshot(ctx, annee, a or str(max(versions)))
    first = _snapshot(ctx, annee, de or str(max(second.version - 1, min(versions))))
    tables = [(view.label, compared(first, second, view)) for view in COMPARED_VIEWS]
    return page(
        ctx,
        "budget_compare.html",
        first=first,
        second=second,
        versions=sorted(versions),
        tables=tables,
        measures=[MEASURE_LABELS[m] for m in COMPARED_MEASURES],
        total_before=first.figures.total(),
        total_after=second.figures.total(),
        year=annee,
    )
