"""`tiflow territoires`, `tiflow actions` (with filters), `tiflow action FA-07` (all about one)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from rich.markup import escape
from rich.table import Table
from sqlmodel import col, select

from flows.usecases.bus import unit_of_work
from models.deadlines import is_late, paris_date
from models.figures import Figure
from models.lifecycle import State
from models.money import ZERO, format_eur
from models.tables import (
    ActionPartner,
    ActionSheet,
    BudgetLine,
    Funding,
    Indicator,
    Milestone,
    Organisation,
    Person,
    Territory,
)
from models.uow import UnitOfWork
from models.vocabulary import Axis, BudgetKind, Priority
from notifications.fr import plural
from tiflow.cli import app, command
from tiflow.cli.common import (
    console,
    database,
    date_option,
    fr_date,
    fr_instant,
    pick_territory,
    today_in_paris,
)
from tiflow.spreadsheet.cells import CellError, fold, french_number, parse_axis, parse_state

TerritoryOption = Annotated[
    str | None,
    typer.Option(
        "--territoire",
        "-t",
        metavar="CODE",
        help="Code du territoire (par défaut : le seul de la base).",
        show_default=False,
    ),
]
AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--au",
        metavar="DATE",
        help="Date de référence pour les retards, JJ/MM/AAAA (par défaut : aujourd'hui).",
        show_default=False,
    ),
]


@command(app, "territoires")
def territories_command() -> None:
    """Liste les territoires de la base."""
    with unit_of_work(database()) as uow:
        counts = dict(
            uow.session.exec(
                select(ActionSheet.territory_id, sa.func.count()).group_by(
                    col(ActionSheet.territory_id)
                )
            ).all()
        )
        territories: Sequence[Territory] = uow.repo.territories()
        _show_territories(territories, counts)


def _show_territories(territories: Sequence[Territory], counts: dict[int, int]) -> None:
    if not territories:
        console.print("Aucun territoire dans la base : importez un plan (tiflow import FICHIER).")
        return
    table = Table(title="Territoires", title_justify="left")
    for header in ("Code", "Nom", "Département", "Région", "Actions", "Exemple"):
        table.add_column(header, justify="right" if header == "Actions" else "left")
    for territory in territories:
        table.add_row(
            territory.code,
            escape(territory.name),
            escape(territory.department or "—"),
            escape(territory.region or "—"),
            str(counts.get(territory.id or 0, 0)),
            "oui" if territory.is_example else "non",
        )
    console.print(table)


def late_reasons(
    action: ActionSheet,
    milestones: Sequence[Milestone],
    today: date,
    state: State | None = None,
) -> list[str]:
    """Why an open action is late on `today`: a milestone past due and not done, or its end
    date passed. A closed action (rejected, completed, abandoned) is never late. `state`:
    the action's state on `today`, when it is not the current one."""
    if not State(state or action.state).is_open:
        return []
    reasons = [
        f"jalon « {m.title} » en retard de {(today - m.due_date).days} j"
        for m in sorted(milestones, key=lambda m: m.due_date)
        if is_late(m.due_date, today, m.done_on)
    ]
    if action.end_date is not None and is_late(action.end_date, today):
        reasons.append(f"fin prévue le {fr_date(action.end_date)} dépassée")
    return reasons


@command(app, "actions")
def actions_command(
    territoire: TerritoryOption = None,
    axe: Annotated[
        str | None,
        typer.Option(
            "--axe",
            metavar="AXE",
            help="Axe : " + ", ".join(a.label for a in Axis) + " (ou son code).",
            show_default=False,
        ),
    ] = None,
    etat: Annotated[
        list[str] | None,
        typer.Option(
            "--etat",
            metavar="ÉTAT",
            help="État (répétable) : " + ", ".join(s.label for s in State) + ".",
            show_default=False,
        ),
    ] = None,
    pilote: Annotated[
        str | None,
        typer.Option(
            "--pilote",
            metavar="PILOTE",
            help="E-mail du pilote, ou une partie de son nom.",
            show_default=False,
        ),
    ] = None,
    en_retard: Annotated[
        bool,
        typer.Option(
            "--en-retard",
            help="Seulement les actions en retard : jalon dépassé non réalisé, ou date de fin"
            " passée, pour une action ni rejetée, ni terminée, ni abandonnée.",
        ),
    ] = False,
    au: AsOfOption = None,
) -> None:
    """Liste les actions du plan, avec filtres."""
    try:
        axis = parse_axis(axe) if axe else None
        states = {parse_state(e) for e in etat or []}
    except CellError as error:
        raise typer.BadParameter(str(error), param_hint="'--axe' / '--etat'") from None
    today = date_option(au, "'--au'") or today_in_paris()
    with unit_of_work(database()) as uow:
        territory = pick_territory(uow, territoire)
        assert territory.id is not None
        actions = list(uow.repo.actions(territory.id))
        people = {p.id: p for p in _all(uow, Person, Person.territory_id == territory.id)}
        ids = [a.id for a in actions]
        milestones = _by_action(uow, Milestone, ids)
        budget = _sums(uow, BudgetLine.amount, ids)
        granted = _sums(uow, Funding.granted, ids)
        uow.session.expunge_all()  # plain objects from here on: the session is about to close
    rows: list[tuple[ActionSheet, list[str]]] = []
    for action in actions:
        if axis is not None and action.axis != axis:
            continue
        if states and action.state not in states:
            continue
        pilot = people.get(action.pilot_id)
        if pilote and not _pilot_matches(pilot, pilote):
            continue
        reasons = late_reasons(action, milestones.get(action.id or 0, []), today)
        if en_retard and not reasons:
            continue
        rows.append((action, reasons))
    filters = _describe_filters(axis, states, pilote, en_retard, today)
    table = Table(
        title=f"Plan d'actions — {escape(territory.name)}{filters}",
        title_justify="left",
        caption=f"{plural(len(rows), 'action', 'actions')} sur {len(actions)}",
        caption_justify="left",
    )
    money = ("Budget", Figure.GRANTED.label)
    for header in ("N°", "Intitulé", "Axe", "Pilote", "État", "Fin", *money):
        table.add_column(
            header,
            justify="right" if header in money else "left",
            no_wrap=header in ("N°", *money),
        )
    if en_retard:
        table.add_column("Retard")
    for action, reasons in rows:
        pilot = people.get(action.pilot_id)
        cells = [
            action.number,
            escape(action.title),
            action.axis.label,
            escape(pilot.full_name) if pilot else "—",
            State(action.state).label,
            fr_date(action.end_date),
            format_eur(budget.get(action.id or 0, ZERO)),
            format_eur(granted.get(action.id or 0, ZERO)),
        ]
        if en_retard:
            cells.append(escape(" ; ".join(reasons)))
        table.add_row(*cells)
    if not rows:
        console.print(f"Aucune action ne correspond à ces critères{filters}.")
        return
    console.print(table)


def _describe_filters(
    axis: Axis | None, states: set[State], pilot: str | None, late: bool, today: date
) -> str:
    parts = []
    if axis is not None:
        parts.append(f"axe {axis.label}")
    if states:
        parts.append("état " + " ou ".join(s.label for s in State if s in states))
    if pilot:
        parts.append(f"pilote « {escape(pilot)} »")
    if late:
        parts.append(f"en retard au {fr_date(today)}")
    return f" ({', '.join(parts)})" if parts else ""


def _pilot_matches(pilot: Person | None, wanted: str) -> bool:
    if pilot is None:
        return False
    if "@" in wanted:
        return pilot.email.lower() == wanted.strip().lower()
    return fold(wanted) in fold(pilot.full_name)


def _all(uow: UnitOfWork, model: Any, *where: Any) -> list[Any]:
    return list(uow.session.exec(select(model).where(*where)).all())


def _by_action(uow: UnitOfWork, model: Any, ids: list[int | None]) -> dict[int, list[Any]]:
    groups: dict[int, list[Any]] = defaultdict(list)
    if ids:
        query = select(model).where(col(model.action_id).in_(ids)).order_by(model.id)
        for row in uow.session.exec(query).all():
            groups[row.action_id].append(row)
    return groups


def _sums(uow: UnitOfWork, column: Any, ids: list[int | None]) -> dict[int, Decimal]:
    if not ids:
        return {}
    table = column.class_
    query = (
        select(table.action_id, sa.func.sum(column))
        .where(col(table.action_id).in_(ids))
        .group_by(table.action_id)
    )
    return {action_id: total or ZERO for action_id, total in uow.session.exec(query).all()}


@command(app, "action")
def action_command(
    numero: Annotated[
        str,
        typer.Argument(metavar="NUMÉRO", help="Numéro de l'action, ex. FA-07.", show_default=False),
    ],
    territoire: TerritoryOption = None,
    au: AsOfOption = None,
) -> None:
    """Affiche une action : fiche, jalons, indicateurs, budget par année, financements par
    financeur et historique."""
    today = date_option(au, "'--au'") or today_in_paris()
    with unit_of_work(database()) as uow:
        territory = pick_territory(uow, territoire)
        action = uow.repo.action(territory.code, numero.strip().upper())
        _show_action(uow, territory, action, today)


def _show_action(uow: UnitOfWork, territory: Territory, action: ActionSheet, today: date) -> None:
    assert action.id is not None
    aid = action.id
    pilot = uow.repo.person(action.pilot_id)
    orgs = {o.id: o for o in _all(uow, Organisation, Organisation.territory_id == territory.id)}
    partners = [
        orgs[p.organisation_id]
        for p in _all(uow, ActionPartner, ActionPartner.action_id == aid)
        if p.organisation_id in orgs
    ]
    milestones = sorted(
        _all(uow, Milestone, Milestone.action_id == aid), key=lambda m: (m.due_date, m.id)
    )
    indicators = sorted(_all(uow, Indicator, Indicator.action_id == aid), key=lambda i: i.id)
    budget = _all(uow, BudgetLine, BudgetLine.action_id == aid)
    funding = sorted(
        _all(uow, Funding, Funding.action_id == aid),
        key=lambda f: (f.year, fold(_org_name(orgs.get(f.funder_id)))),
    )
    history = uow.repo.history(aid)
    # --au is a point in time: what had happened by the end of that day, nothing after
    history = [r for r in history if paris_date(r.at) <= today]
    milestones = [_as_on(m, today) for m in milestones]
    state = State(history[-1].to_state) if history else _initial_state(uow, aid, action)

    sheet = Table.grid(padding=(0, 2))
    sheet.add_column(style="bold")
    sheet.add_column()
    pilot_text = "—"
    if pilot is not None:
        employer = orgs.get(pilot.organisation_id)
        pilot_text = f"{pilot.full_name} <{pilot.email}>" + (
            f", {_org_name(employer)}" if employer else ""
        )
    late = late_reasons(action, milestones, today, state)
    for label, value in (
        ("Territoire", territory.name),
        ("Axe", action.axis.label),
        ("État", state.label + ("" if state == action.state else f" (au {fr_date(today)})")),
        ("Pilote", pilot_text),
        ("Partenaires", ", ".join(_org_name(o) for o in partners) or "—"),
        ("Engagement ferme", "oui" if action.firm_commitment else "non"),
        ("Priorité", Priority(action.priority).label),
        ("Période", f"du {fr_date(action.start_date)} au {fr_date(action.end_date)}"),
        ("Retard", " ; ".join(late) if late else f"aucun au {fr_date(today)}"),
        ("Version", f"{action.version} (modifiée le {fr_instant(action.updated_at)})"),
        ("Description", action.description or "—"),
    ):
        sheet.add_row(label, escape(value))
    console.print(f"[bold]{action.number} — {escape(action.title)}[/]")
    console.print(sheet)

    table = Table(title="Jalons", title_justify="left")
    for header in ("Intitulé", "Échéance", "Réalisé le", "Situation"):
        table.add_column(header)
    for m in milestones:
        if m.done_on is not None:
            status = "réalisé"
        elif is_late(m.due_date, today):
            status = f"[red]en retard de {(today - m.due_date).days} j[/]"
        else:
            status = f"dans {(m.due_date - today).days} j"
        table.add_row(escape(m.title), fr_date(m.due_date), fr_date(m.done_on), status)
    _print_or_none(table, milestones, "Aucun jalon.")

    table = Table(title="Indicateurs", title_justify="left")
    for header in ("Nom", "Unité", "Cible", "Valeur atteinte", "Mesurée le"):
        table.add_column(
            header, justify="right" if header in ("Cible", "Valeur atteinte") else "left"
        )
    for i in indicators:
        known = i.actual is not None and (i.measured_on is None or i.measured_on <= today)
        table.add_row(
            escape(i.name),
            escape(i.unit or "—"),
            french_number(i.target),
            french_number(i.actual) if known else "—",
            fr_date(i.measured_on) if known else "—",
        )
    _print_or_none(table, indicators, "Aucun indicateur.")

    per_year: dict[int, dict[BudgetKind, Decimal]] = defaultdict(dict)
    for line in budget:
        per_year[line.year][BudgetKind(line.kind)] = line.amount
    table = Table(title="Budget par année", title_justify="left", show_footer=bool(budget))
    totals = {k: sum((y.get(k, ZERO) for y in per_year.values()), ZERO) for k in BudgetKind}
    table.add_column("Année", footer="Total")
    for kind in BudgetKind:
        table.add_column(kind.label, justify="right", footer=format_eur(totals[kind]))
    table.add_column("Total", justify="right", footer=format_eur(sum(totals.values(), ZERO)))
    for year in sorted(per_year):
        amounts = per_year[year]
        table.add_row(
            str(year),
            *(format_eur(amounts.get(k, ZERO)) for k in BudgetKind),
            format_eur(sum(amounts.values(), ZERO)),
        )
    _print_or_none(table, budget, "Aucune ligne de budget.")

    table = Table(
        title="Financements par financeur", title_justify="left", show_footer=bool(funding)
    )
    table.add_column("Financeur", footer="Total")
    table.add_column("Année")
    for figure in (Figure.REQUESTED, Figure.GRANTED, Figure.PAID):  # attribute = figure's value
        total = sum((getattr(f, figure.value) for f in funding), ZERO)
        table.add_column(figure.label, justify="right", footer=format_eur(total))
    for header in (
        "Dépôt du dossier",
        "Décision attendue",
        "Décision",
        "Versement attendu",
        "Convention",
    ):
        table.add_column(header)
    for f in funding:
        table.add_row(
            escape(_org_name(orgs.get(f.funder_id))),
            str(f.year),
            format_eur(f.requested),
            format_eur(f.granted),
            format_eur(f.paid),
            fr_date(f.dossier_due),
            fr_date(f.decision_expected),
            fr_date(f.decision_date),
            fr_date(f.payment_expected),
            escape(f.convention_ref or "—"),
        )
    _print_or_none(table, funding, "Aucun financement.")

    table = Table(title="Historique", title_justify="left")
    for header in ("Date", "De", "Vers", "Par", "Motif", "COPIL"):
        table.add_column(header)
    for record in history:
        table.add_row(
            fr_instant(record.at),
            State(record.from_state).label,
            State(record.to_state).label,
            escape(record.actor),
            escape(record.reason or "—") + (" (passage forcé)" if record.override else ""),
            f"n° {record.copil_id}" if record.copil_id else "—",
        )
    _print_or_none(
        table,
        history,
        f"aucun changement d'état, l'action est à son état initial"
        f" « {State(action.state).label} ».",
    )


def _as_on(milestone: Milestone, today: date) -> Milestone:
    """The milestone as it stood on `today`: one done later was not done yet."""
    if milestone.done_on is None or milestone.done_on <= today:
        return milestone
    return Milestone(
        id=milestone.id,
        action_id=milestone.action_id,
        title=milestone.title,
        due_date=milestone.due_date,
        done_on=None,
    )


def _initial_state(uow: UnitOfWork, action_id: int, action: ActionSheet) -> State:
    """The state before the first transition (the current one if it never moved)."""
    first = uow.repo.history(action_id)[:1]
    return State(first[0].from_state) if first else State(action.state)


def _org_name(org: Organisation | None) -> str:
    if org is None:
        return "—"
    return org.short_name or org.name


def _print_or_none(table: Table, rows: Sequence[object], empty: str) -> None:
    if rows:
        console.print(table)
    else:
        console.print(f"[bold]{table.title}[/] : {empty}")


__all__ = ["late_reasons"]
