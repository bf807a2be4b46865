"""Editing the plan (the coordinator): create a draft sheet, edit it, record a funding row,
propose it to the next COPIL.

Each form is one call of a use case of `flows.usecases.editing` (which calls the proposals'
and the funding use cases with their guards); this module only reads the form and shows the
answer. Every form carries the sheet's version: a stale one gets the French conflict message
with the sheet's current values (409), never a silent overwrite. Bad input: the use case's
French messages at the top of the form (422) and nothing written. Amounts are read by
`models.money.parse_number` (« 12 500,50 € »).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import BackgroundTasks, FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlmodel import col, select

from flows.usecases.bus import unit_of_work
from flows.usecases.editing import (
    IndicatorRow,
    MilestoneRow,
    SheetEdit,
    create_draft,
    edit_sheet,
    propose_sheet,
    record_funding_row,
)
from flows.usecases.funding import FundingDates
from flows.usecases.proposals import BudgetLineInput
from models.errors import ConcurrencyConflict, InvalidInput
from models.lifecycle import EDITABLE, State
from models.money import parse_number
from models.tables import ActionSheet, BudgetLine, Indicator, Milestone, Person
from models.vocabulary import Axis, BudgetKind, Priority
from notifications.fr import format_quantity
from tiflow.spreadsheet.cells import CellError, parse_date
from tiflow.web.app import Context, Guarded, add_route, page, redirect, templates
from tiflow.web.pilot import _action_page, publish_events
from tiflow.web.views import pilot_choices

MAX_ROWS = 40  # rows of each list a form may send
BLANK_ROWS = 2  # empty rows offered to add milestones, indicators, budget lines


def register(router: FastAPI) -> None:
    templates().globals["EDITABLE"] = EDITABLE  # the action page offers « proposer » then
    add_route(router, "/t/{territory}/nouvelle-action", new_form, name="action_new")
    add_route(
        router, "/t/{territory}/nouvelle-action", create, name="action_create", methods=["POST"]
    )
    base = "/t/{territory}/actions/{number}"
    add_route(router, f"{base}/modifier", edit_form, name="action_edit")
    add_route(router, f"{base}/modifier", save, name="action_save", methods=["POST"])
    add_route(router, f"{base}/financement", funding, name="action_funding", methods=["POST"])
    add_route(router, f"{base}/proposer", propose, name="action_propose", methods=["POST"])


# ---------------------------------------------------------------------------------------------
# Reading the form


def _text(form: dict[str, str], name: str) -> str:
    return form.get(name, "").strip()


def _date(form: dict[str, str], name: str, label: str, problems: list[str]) -> date | None:
    text = _text(form, name)
    if not text:
        return None
    try:
        return parse_date(text)
    except CellError as error:
        problems.append(f"{label} : {error}.")
        return None


def _amount(text: str, label: str, problems: list[str]) -> Decimal | None:
    if not text.strip():
        return None
    try:
        return parse_number(text, currency=True)
    except ValueError as error:
        problems.append(f"{label} : {error}.")
        return None


def _id(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def sheet_from_form(form: dict[str, str]) -> SheetEdit:
    """The sheet as typed; every problem at once, in French, naming the field or the row."""
    problems: list[str] = []
    axis_text = _text(form, "axe")
    axis = Axis(axis_text) if axis_text in Axis._value2member_map_ else None
    if axis is None:
        problems.append("Axe : choisissez l'axe du plan.")
    priority_text = _text(form, "priorite")
    priority = (
        Priority(int(priority_text))
        if priority_text.isdigit() and int(priority_text) in Priority._value2member_map_
        else Priority.MEDIUM
    )
    start = _date(form, "debut", "Date de début", problems)
    end = _date(form, "fin", "Date de fin", problems)
    budget = _budget_rows(form, problems)
    milestones = _milestone_rows(form, problems)
    indicators = _indicator_rows(form, problems)
    if problems:
        raise InvalidInput(problems)
    assert axis is not None
    return SheetEdit(
        title=_text(form, "titre"),
        axis=axis,
        description=_text(form, "description"),
        pilot_email=_text(form, "pilote"),
        firm_commitment=form.get("ferme") == "1",
        priority=priority,
        start_date=start,
        end_date=end,
        budget=budget,
        milestones=milestones,
        indicators=indicators,
    )


def _budget_rows(form: dict[str, str], problems: list[str]) -> list[BudgetLineInput]:
    rows = []
    for i in range(MAX_ROWS):
        year, kind = _text(form, f"budget_annee_{i}"), _text(form, f"budget_nature_{i}")
        amount_text = form.get(f"budget_montant_{i}", "")
        if not (year or amount_text.strip()):
            continue
        label = f"Budget, ligne {i + 1}"
        amount = _amount(amount_text, f"{label}, montant", problems)
        if not year.isdigit():
            problems.append(f"{label}, année : saisissez une année (par exemple 2025).")
        if kind not in BudgetKind._value2member_map_:
            problems.append(f"{label}, nature : investissement ou fonctionnement.")
        if amount is None and amount_text.strip() == "":
            problems.append(f"{label}, montant : saisissez un montant (par exemple 12 500,50 €).")
        if year.isdigit() and kind in BudgetKind._value2member_map_ and amount is not None:
            rows.append(BudgetLineInput(int(year), BudgetKind(kind), amount))
    return rows


def _milestone_rows(form: dict[str, str], problems: list[str]) -> list[MilestoneRow]:
    rows = []
    for i in range(MAX_ROWS):
        title, due_text = _text(form, f"jalon_titre_{i}"), _text(form, f"jalon_date_{i}")
        if not (title or due_text):
            continue
        label = f"Jalon {i + 1}"
        due = _date(form, f"jalon_date_{i}", f"{label}, échéance", problems)
        if not title:
            problems.append(f"{label} : l'intitulé est vide.")
        if not due_text:
            problems.append(f"{label}, échéance : saisissez une date (JJ/MM/AAAA).")
        if title and due is not None:
            rows.append(MilestoneRow(title, due, _id(_text(form, f"jalon_id_{i}"))))
    return rows


def _indicator_rows(form: dict[str, str], problems: list[str]) -> list[IndicatorRow]:
    rows = []
    for i in range(MAX_ROWS):
        name, target_text = _text(form, f"indicateur_nom_{i}"), _text(form, f"indicateur_cible_{i}")
        if not (name or target_text):
            continue
        label = f"Indicateur {i + 1}"
        target = None
        try:
            target = parse_number(target_text) if target_text else None
        except ValueError as error:
            problems.append(f"{label}, cible : {error}.")
        if not name:
            problems.append(f"{label} : le nom est vide.")
        if not target_text:
            problems.append(f"{label}, cible : saisissez la valeur visée (par exemple 12,5).")
        if name and target is not None:
            unit = _text(form, f"indicateur_unite_{i}")
            rows.append(IndicatorRow(name, target, unit, _id(_text(form, f"indicateur_id_{i}"))))
    return rows


def _version(form: dict[str, str]) -> int | None:
    """The version the form was read at (a form without one cannot overwrite: -1 never
    matches)."""
    text = _text(form, "version")
    return int(text) if text.isdigit() else -1


# ---------------------------------------------------------------------------------------------
# The form's values (from the sheet, or as typed)


def values_of(ctx: Context, action: ActionSheet) -> dict[str, str]:
    """The sheet's current values, as the form's fields."""
    assert action.id is not None
    values: dict[str, str] = {
        "version": str(action.version),
        "titre": action.title,
        "axe": str(action.axis.value),
        "description": action.description,
        "ferme": "1" if action.firm_commitment else "",
        "priorite": str(int(action.priority)),
        "debut": action.start_date.isoformat() if action.start_date else "",
        "fin": action.end_date.isoformat() if action.end_date else "",
        "pilote": "",
    }
    with unit_of_work(ctx.engine) as uow:
        s = uow.session
        if action.pilot_id:
            pilot = s.get(Person, action.pilot_id)
            values["pilote"] = pilot.email if pilot else ""
        lines = s.exec(
            select(BudgetLine)
            .where(BudgetLine.action_id == action.id)
            .order_by(col(BudgetLine.year), col(BudgetLine.kind))
        ).all()
        for i, b in enumerate(lines):
            values[f"budget_annee_{i}"] = str(b.year)
            values[f"budget_nature_{i}"] = str(b.kind.value)
            values[f"budget_montant_{i}"] = format_quantity(b.amount)
        milestones = s.exec(
            select(Milestone)
            .where(Milestone.action_id == action.id)
            .order_by(col(Milestone.due_date), col(Milestone.id))
        ).all()
        for i, m in enumerate(milestones):
            values[f"jalon_id_{i}"] = str(m.id)
            values[f"jalon_titre_{i}"] = m.title
            values[f"jalon_date_{i}"] = m.due_date.isoformat()
        indicators = s.exec(
            select(Indicator).where(Indicator.action_id == action.id).order_by(col(Indicator.id))
        ).all()
        for i, ind in enumerate(indicators):
            values[f"indicateur_id_{i}"] = str(ind.id)
            values[f"indicateur_nom_{i}"] = ind.name
            values[f"indicateur_cible_{i}"] = format_quantity(ind.target)
            values[f"indicateur_unite_{i}"] = ind.unit
    return values


def _rows(values: dict[str, str], prefix: str) -> range:
    used = [
        i
        for i in range(MAX_ROWS)
        if any(k.startswith(prefix) and k.endswith(f"_{i}") for k in values)
    ]
    return range(max(used, default=-1) + 1 + BLANK_ROWS)


def _form_page(
    ctx: Context,
    values: dict[str, str],
    *,
    action: ActionSheet | None = None,
    status: int = 200,
    problems: list[str] | None = None,
    conflict: str = "",
    mine: dict[str, str] | None = None,
) -> HTMLResponse:
    assert ctx.territory is not None
    with unit_of_work(ctx.engine) as uow:
        pilots = pilot_choices(uow, ctx.territory)
        return page(
            ctx,
            "action_form.html",
            status=status,
            action=action,
            values=values,
            problems=problems or [],
            conflict=conflict,
            mine=_differences(values, mine or {}),
            axes=list(Axis),
            kinds=list(BudgetKind),
            priorities=list(Priority),
            pilots=pilots,
            budget_rows=_rows(values, "budget_"),
            milestone_rows=_rows(values, "jalon_"),
            indicator_rows=_rows(values, "indicateur_"),
            editable=action is None or State(action.state) in EDITABLE,
            can_propose=action is not None and State(action.state) in EDITABLE,
        )


def _differences(current: dict[str, str], mine: dict[str, str]) -> list[tuple[str, str]]:
    """What the person typed that differs from the current sheet (shown after a conflict)."""
    skip = {"csrf", "version"}
    return [
        (key, value)
        for key, value in mine.items()
        if key not in skip and value.strip() != current.get(key, "").strip()
    ]


# ---------------------------------------------------------------------------------------------
# Routes


def new_form(ctx: Guarded) -> HTMLResponse:
    return _form_page(ctx, {"priorite": str(int(Priority.MEDIUM))})


def create(ctx: Guarded) -> HTMLResponse | RedirectResponse:
    assert ctx.territory is not None and ctx.principal is not None
    try:
        edit = sheet_from_form(ctx.form)
        with unit_of_work(ctx.engine) as uow:
            action = create_draft(uow, ctx.territory.code, edit, recorded_by=ctx.principal.name)
            uow.commit()
            number = action.number
    except InvalidInput as error:
        return _form_page(ctx, ctx.form, status=422, problems=list(error.problems))
    return redirect(ctx, f"/t/{ctx.territory.code}/actions/{number}?enregistre=fiche")


def edit_form(ctx: Guarded) -> HTMLResponse:
    assert ctx.action is not None
    return _form_page(ctx, values_of(ctx, ctx.action), action=ctx.action)


def _current(ctx: Context) -> ActionSheet:
    """The sheet as it is now (the guard's copy was read before the use case ran)."""
    assert ctx.action is not None and ctx.action.id is not None
    with unit_of_work(ctx.engine) as uow:
        found = uow.session.get_one(ActionSheet, ctx.action.id)
        return type(found)(**found.model_dump(warnings=False))


def _conflict(ctx: Context, error: ConcurrencyConflict) -> HTMLResponse:
    action = _current(ctx)
    return _form_page(
        ctx, values_of(ctx, action), action=action, status=409, conflict=str(error), mine=ctx.form
    )


def save(ctx: Guarded) -> HTMLResponse | RedirectResponse:
    assert ctx.territory is not None and ctx.action is not None and ctx.principal is not None
    try:
        edit = sheet_from_form(ctx.form)
        with unit_of_work(ctx.engine) as uow:
            edit_sheet(
                uow,
                ctx.territory.code,
                ctx.action.number,
                edit,
                expected_version=_version(ctx.form),
                recorded_by=ctx.principal.name,
            )
            uow.commit()
    except ConcurrencyConflict as error:
        return _conflict(ctx, error)
    except InvalidInput as error:
        return _form_page(
            ctx, ctx.form, action=ctx.action, status=422, problems=list(error.problems)
        )
    return redirect(ctx, f"/t/{ctx.territory.code}/actions/{ctx.action.number}?enregistre=fiche")


def _funding_input(form: dict[str, str]) -> dict[str, Any]:
    problems: list[str] = []
    funder = _text(form, "financeur")
    if not funder:
        problems.append("Financeur : choisissez le financeur.")
    year = _text(form, "annee")
    if not year.isdigit():
        problems.append("Année : saisissez l'année du financement (par exemple 2025).")
    amounts = {
        key: _amount(form.get(field, ""), label, problems)
        for key, field, label in (
            ("requested", "demande", "Demandé"),
            ("granted", "accorde", "Accordé"),
            ("paid", "verse", "Versé"),
        )
    }
    dates = FundingDates(
        decision_date=_date(form, "decision_le", "Date de décision", problems),
        dossier_due=_date(form, "depot_avant", "Dépôt du dossier avant le", problems),
        dossier_filed_on=_date(form, "depose_le", "Dossier déposé le", problems),
    )
    if problems:
        raise InvalidInput(problems)
    return {"funder": funder, "year": int(year), "dates": dates, **amounts}


def funding(ctx: Guarded, tasks: BackgroundTasks) -> HTMLResponse | RedirectResponse:
    """A funding row through the funding use case (it may move a validated action to
    *financée*); the answer is the action's page."""
    assert ctx.territory is not None and ctx.action is not None and ctx.principal is not None
    return _on_action(
        ctx,
        tasks,
        "financement",
        lambda uow: record_funding_row(
            uow,
            ctx.territory.code if ctx.territory else None,
            ctx.action.number if ctx.action else "",
            expected_version=_version(ctx.form),
            recorded_by=ctx.principal.name if ctx.principal else None,
            **_funding_input(ctx.form),
        ),
    )


def propose(ctx: Guarded, tasks: BackgroundTasks) -> HTMLResponse | RedirectResponse:
    assert ctx.territory is not None and ctx.action is not None and ctx.principal is not None
    return _on_action(
        ctx,
        tasks,
        "proposition",
        lambda uow: propose_sheet(
            uow,
            ctx.territory.code if ctx.territory else None,
            ctx.action.number if ctx.action else "",
            expected_version=_version(ctx.form),
            recorded_by=ctx.principal.name if ctx.principal else None,
        ),
    )


def _on_action(
    ctx: Context, tasks: BackgroundTasks, field: str, call: Callable[[Any], object]
) -> HTMLResponse | RedirectResponse:
    """Run one use case on the action; conflicts and bad input come back on the action page
    (with the current values, as the page reads them now), nothing written."""
    assert ctx.territory is not None and ctx.action is not None
    try:
        with unit_of_work(ctx.engine) as uow:
            call(uow)
            uow.commit()
    except (InvalidInput, ConcurrencyConflict) as error:
        problems = list(error.problems) if isinstance(error, InvalidInput) else [str(error)]
        ctx.action = _current(ctx)
        status = 409 if isinstance(error, ConcurrencyConflict) else 422
        return _action_page(ctx, status=status, errors={field: problems})
    tasks.add_task(publish_events, ctx.engine)
    target = f"/t/{ctx.territory.code}/actions/{ctx.action.number}?enregistre={field}"
    return redirect(ctx, target + f"#{field}")
