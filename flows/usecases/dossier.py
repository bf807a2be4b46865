"""The COPIL dossier as a PDF: the agenda, each action's sheet, the charts and the budget.

Built from the digest as it stands on ``as_of`` (`flows.usecases.digest.preview_digest`: the
same agenda, the same figures as the e-mail), plus one page per agenda action (its sheet:
milestones, indicators, budget lines, funding) and the year's figures per axis and per
funder (`flows.usecases.budget.consolidation`, labels from `models.figures`).

    name, pdf = copil_dossier(session, copil_id, today)

Charts: the dashboard's charts of the COPIL's year (`flows.usecases.charts.charts_svg`), drawn
as vectors, with the figures behind them printed as tables beside; the same dossier is the J-3
digest's attachment and the web page's download.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from flows.usecases.budget.consolidation import View, consolidate_with
from flows.usecases.charts import charts_svg
from flows.usecases.digest import Digest, preview_digest
from models import clock, figures
from models.deadlines import paris_date
from models.errors import NotFound
from models.lifecycle import State
from models.tables import (
    ActionSheet,
    BudgetLine,
    Funding,
    Indicator,
    Milestone,
    Organisation,
    Person,
)
from models.vocabulary import Axis, BudgetKind, Priority
from notifications import fr
from notifications.pdf import Block, Heading, Paragraph, Svg, Table, render_pdf

Chart = tuple[str, str, str]  # slug, French title, SVG document
PDF_MIME = "application/pdf"


def dossier_filename(digest: Digest) -> str:
    return f"dossier-copil-{paris_date(digest.copil.held_at).isoformat()}.pdf"


def copil_dossier(session: Session, copil_id: int, as_of: date) -> tuple[str, bytes]:
    """The dossier of a scheduled COPIL (file name, PDF bytes); NotFound for any other."""
    digest = preview_digest(session, copil_id, as_of)
    if digest is None:
        raise NotFound(
            f"COPIL n° {copil_id} : le dossier se prépare pour un COPIL prévu (pas tenu ni annulé)."
        )
    return dossier_filename(digest), dossier_pdf(session, digest)


def dossier_pdf(session: Session, digest: Digest) -> bytes:
    """The PDF of the dossier for `digest` (a digest filled for its COPIL)."""
    if digest.summary:
        raise ValueError("a summary digest (the COPIL page's) has no dossier")
    copil, territory = digest.copil, digest.territory
    year = copil.budget_year or paris_date(copil.held_at).year
    charts = charts_svg(session, territory, year, digest.as_of)
    title = f"Dossier du COPIL du {fr.format_datetime(copil.held_at)}"
    blocks: list[Block] = [
        Paragraph(f"Territoire d'industrie {territory.name}", bold=True),
        Paragraph(
            (f"Lieu : {copil.place}. " if copil.place else "")
            + f"Membres ({len(digest.members)}) : "
            + ", ".join(p.full_name for p in digest.members)
            + "."
        ),
        Paragraph(f"Situation au {fr.format_date(digest.as_of)}."),
        *_agenda(digest),
        *_budget(digest),
        *_figures(session, digest, charts),
    ]
    for row in digest.agenda:
        blocks += _sheet(session, digest, row["number"])
    return render_pdf(title, blocks, footer=f"{title} — {territory.name}", created=clock.now())


def _agenda(digest: Digest) -> list[Block]:
    rows = [
        (
            r["number"],
            r["title"],
            r["pilot"],
            r["state"],
            fr.format_eur(r["budget"]),
            fr.format_eur(r["granted"]),
        )
        for r in digest.agenda
    ]
    return [
        Heading("Ordre du jour"),
        Table(
            ("N°", "Action", "Pilote", "État", "Budget", "Accordé"),
            rows,
            widths=(12, 44, 20, 16, 18, 18),
            numeric=frozenset({4, 5}),
            empty="Aucune action n'attend de décision.",
        ),
    ]


def _budget(digest: Digest) -> list[Block]:
    year = digest.year
    rows = [(r["label"], r["amount"]) for r in year.get("rows", [])]
    blocks: list[Block] = [
        Heading(f"Budget {year.get('year', '')}"),
        Table(("Montant", "Valeur"), rows, widths=(70, 30), numeric=frozenset({1})),
    ]
    if digest.missing:
        blocks += [
            Heading("Financements à compléter", level=2),
            Table(
                ("N°", "Action", "Budget", "Accordé", "Manque"),
                [
                    (r["number"], r["title"], r["budget"], r["granted"], r["missing"])
                    for r in digest.missing
                ],
                widths=(12, 46, 14, 14, 14),
                numeric=frozenset({2, 3, 4}),
            ),
        ]
    return blocks


def _figures(session: Session, digest: Digest, charts: Sequence[Chart]) -> list[Block]:
    """The charts (when given) and, always, the figures they draw as tables."""
    year = int(digest.year.get("year") or paris_date(digest.copil.held_at).year)
    c = consolidate_with(session, year, digest.territory, digest.as_of)
    F = figures.Figure
    heads = (F.PLANNED.label, F.GRANTED.label, F.PAID.label)
    blocks: list[Block] = [Heading(f"Graphiques et chiffres {year}", new_page=True)]
    blocks += [Svg(title, svg) for _slug, title, svg in charts]
    for view, what, measures in (
        (View.AXIS, "Budget par axe", ("planned", "granted", "paid")),
        (View.FUNDER, "Financement par financeur", ("requested", "granted", "paid")),
    ):
        labels = heads if view is View.AXIS else (F.REQUESTED.label, *heads[1:])
        rows = [
            (line.label, *(fr.format_eur(getattr(line.figures, m)) for m in measures))
            for line in c.view(view)
        ]
        blocks += [
            Heading(f"{what} ({year})", level=2),
            Table(("", *labels), rows, widths=(40, 20, 20, 20), numeric=frozenset({1, 2, 3})),
        ]
    return blocks


def _sheet(session: Session, digest: Digest, number: str) -> list[Block]:
    """One action's sheet, on a page of its own."""
    action = session.exec(
        select(ActionSheet).where(
            ActionSheet.territory_id == digest.territory.id, ActionSheet.number == number
        )
    ).one()
    assert action.id is not None
    pilot = session.get(Person, action.pilot_id) if action.pilot_id else None
    facts = [
        ("Axe", Axis(action.axis).label),
        ("Pilote", pilot.full_name if pilot else "—"),
        ("État", State(action.state).label),
        ("Engagement ferme", "oui" if action.firm_commitment else "non"),
        ("Priorité", Priority(action.priority).label),
        ("Début", fr.format_date(action.start_date) if action.start_date else "—"),
        ("Fin", fr.format_date(action.end_date) if action.end_date else "—"),
    ]
    blocks: list[Block] = [
        Heading(f"Fiche {action.number} — {action.title}", new_page=True),
        Table(("Rubrique", "Valeur"), facts, widths=(30, 70)),
    ]
    if action.description.strip():
        blocks.append(Paragraph(action.description.strip()))
    return blocks + _sheet_tables(session, action.id, digest.as_of)


def _sheet_tables(session: Session, action_id: int, as_of: date) -> list[Block]:
    milestones = session.exec(
        select(Milestone).where(Milestone.action_id == action_id).order_by(col(Milestone.due_date))
    ).all()
    indicators = session.exec(
        select(Indicator).where(Indicator.action_id == action_id).order_by(col(Indicator.id))
    ).all()
    lines = session.exec(
        select(BudgetLine)
        .where(BudgetLine.action_id == action_id)
        .order_by(col(BudgetLine.year), col(BudgetLine.kind))
    ).all()
    funding = session.exec(
        select(Funding, Organisation)
        .join(Organisation, col(Organisation.id) == col(Funding.funder_id))
        .where(Funding.action_id == action_id)
        .order_by(col(Funding.year), col(Organisation.name))
    ).all()
    return [
        Heading("Jalons", level=2),
        Table(("Jalon", "Échéance", "Fait le"), [_milestone(m, as_of) for m in milestones],
              widths=(60, 20, 20), empty="Aucun jalon."),
        Heading("Indicateurs", level=2),
        Table(("Indicateur", "Objectif", "Mesuré"), [_indicator(i) for i in indicators],
              widths=(60, 20, 20), numeric=frozenset({1, 2}), empty="Aucun indicateur."),
        Heading("Budget prévu", level=2),
        Table(("Année", "Nature", "Montant"),
              [(str(b.year), BudgetKind(b.kind).label, fr.format_eur(b.amount)) for b in lines],
              widths=(20, 50, 30), numeric=frozenset({2}), empty="Aucune ligne de budget."),
        Heading("Financements", level=2),
        Table(("Financeur", "Année", "Demandé", "Accordé", "Versé"),
              [_funding(f, o) for f, o in funding], widths=(34, 12, 18, 18, 18),
              numeric=frozenset({2, 3, 4}), empty="Aucun financement demandé."),
    ]  # fmt: skip


def _milestone(m: Milestone, as_of: date) -> tuple[str, ...]:
    if m.done_on is not None:
        done = fr.format_date(m.done_on)
    else:
        done = "en retard" if m.due_date < as_of else "à venir"
    return (m.title, fr.format_date(m.due_date), done)


def _indicator(i: Indicator) -> tuple[str, ...]:
    unit = f" {i.unit}" if i.unit else ""
    actual = fr.format_quantity(i.actual) + unit if i.actual is not None else "—"
    return (i.name, fr.format_quantity(i.target) + unit, actual)


def _funding(f: Funding, o: Organisation) -> tuple[Any, ...]:
    return (
        o.short_name or o.name,
        str(f.year),
        fr.format_eur(f.requested),
        fr.format_eur(f.granted),
        fr.format_eur(f.paid),
    )
