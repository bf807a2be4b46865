"""Import and export of the plan (coordinator): upload a workbook, see its dry run, confirm.

The same `tiflow.spreadsheet.import_plan` as ``tiflow import``: a dry run is the import in a
unit of work left without commit; the confirmation runs it again on the very file that was
previewed (kept server-side, see `tiflow.web.uploads`), and commits. A file with errors writes
nothing and lists every error with its sheet, row and column.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response

from flows.usecases.budget.reports import CSV_CONTENT_TYPE, XLSX_CONTENT_TYPE
from flows.usecases.bus import unit_of_work
from models.errors import InvalidInput, TiflowError
from tiflow.spreadsheet import Change, ImportReport, export_plan, import_plan, write_template
from tiflow.spreadsheet.limits import LIMITS_TEXT
from tiflow.web import uploads
from tiflow.web.access import NOT_FOUND, Refusal
from tiflow.web.app import Context, Guarded, add_route, page, redirect

CONTENT_TYPES = {"xlsx": XLSX_CONTENT_TYPE, "csv": CSV_CONTENT_TYPE}


def register(router: FastAPI) -> None:
    add_route(router, "/t/{territory}/import", import_form, name="plan_import")
    add_route(router, "/t/{territory}/import", upload, name="plan_upload", methods=["POST"])
    add_route(router, "/t/{territory}/import/{jeton}", preview, name="plan_import_preview")
    add_route(
        router,
        "/t/{territory}/import/{jeton}",
        confirm,
        name="plan_import_confirm",
        methods=["POST"],
    )
    add_route(router, "/t/{territory}/export/plan.{kind}", export, name="plan_export")
    add_route(router, "/t/{territory}/export/modele.{kind}", template, name="plan_template")


def folder(ctx: Context) -> Path:
    return ctx.web.settings.data_dir / "imports"


def import_form(ctx: Guarded) -> HTMLResponse:
    return page(ctx, "import.html", error="", limits=LIMITS_TEXT)


def upload(ctx: Guarded) -> Response:
    """Keep the file, then show its dry run (its own page: reloading it sends nothing again)."""
    assert ctx.territory is not None and ctx.principal is not None
    sent = uploads.upload_of(ctx.request)
    error = ""
    if sent is None:
        error = "Choisissez un fichier (.xlsx ou .csv) à importer."
    elif Path(sent.filename).suffix.lower() not in uploads.EXTENSIONS:
        error = f"« {sent.filename} » n'est ni un classeur Excel (.xlsx) ni un fichier CSV (.csv)."
    if error or sent is None:
        return page(ctx, "import.html", status=400, error=error, limits=LIMITS_TEXT)
    token = uploads.keep(folder(ctx), ctx.territory.code, sent, ctx.principal.email)
    return redirect(ctx, f"/t/{ctx.territory.code}/import/{token}")


@dataclass
class DryRun:
    report: ImportReport | None
    problems: list[str]

    def listed(self) -> list[object]:
        """What the page lists: every action, and the other rows that change."""
        if self.report is None:
            return []
        return [
            c
            for c in self.report.changes
            if c.sheet == "Actions" or c.change is not Change.UNCHANGED
        ]


def _run(ctx: Context, path: Path, commit: bool) -> DryRun:
    assert ctx.territory is not None
    with unit_of_work(ctx.engine) as uow:
        try:
            report = import_plan(uow, path, territory=ctx.territory.code)
        except InvalidInput as error:
            return DryRun(None, error.problems)
        except TiflowError as error:
            return DryRun(None, [str(error)])
        if commit:
            uow.commit()
    return DryRun(report, [])


def _kept(ctx: Context, token: str) -> tuple[uploads.Kept, Path]:
    assert ctx.territory is not None
    found = uploads.kept(folder(ctx), ctx.territory.code, token)
    if found is None:
        raise Refusal(
            404,
            "Ce fichier n'est plus disponible (import déjà fait, plus d'un jour passé, ou lien"
            " inconnu) : déposez-le à nouveau.",
        )
    return found


def preview(ctx: Guarded, jeton: str) -> HTMLResponse:
    record, path = _kept(ctx, jeton)
    run = None if record.result else _run(ctx, path, commit=False)
    return page(ctx, "import_preview.html", record=record, run=run, token=jeton)


def confirm(ctx: Guarded, jeton: str) -> Response:
    """Import the previewed file: the same bytes (their SHA-256 as shown on the preview)."""
    assert ctx.territory is not None
    record, path = _kept(ctx, jeton)
    if not record.result:
        if ctx.form.get("empreinte") != record.sha256:
            raise Refusal(
                409, "Le fichier confirmé n'est pas celui de l'aperçu : déposez-le à nouveau."
            )
        run = _run(ctx, path, commit=True)
        if run.report is None:  # the plan changed since the preview and the file no longer fits
            return page(ctx, "import_preview.html", status=409, record=record, run=run, token=jeton)
        uploads.mark_imported(folder(ctx), jeton, record, run.report.summary())
    return redirect(ctx, f"/t/{ctx.territory.code}/import/{jeton}")


def _kind(kind: str) -> str:
    if kind not in CONTENT_TYPES:
        raise Refusal(404, NOT_FOUND)
    return kind


def _file(path: Path, kind: str, name: str) -> Response:
    return Response(
        path.read_bytes(),
        media_type=CONTENT_TYPES[kind],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def export(ctx: Guarded, kind: str) -> Response:
    """The territory's plan, as ``tiflow export`` writes it (it imports back as is)."""
    assert ctx.territory is not None
    kind = _kind(kind)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"plan.{kind}"
        with unit_of_work(ctx.engine) as uow:
            export_plan(uow, ctx.territory.code, path)
        return _file(path, kind, f"plan-{ctx.territory.code}.{kind}")


def template(ctx: Guarded, kind: str) -> Response:
    kind = _kind(kind)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"modele.{kind}"
        write_template(path)
        return _file(path, kind, f"modele-plan-tiflow.{kind}")
