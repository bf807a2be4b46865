"""Export a territory's plan to a workbook or CSV file that `import_plan` reads back unchanged;
and the blank template a coordinator fills."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from models.preferences import Category, Frequency, PersonPreference
from models.tables import (
    ActionPartner,
    ActionSheet,
    BudgetLine,
    Funding,
    Indicator,
    Milestone,
    Organisation,
    Person,
    PersonRole,
)
from models.uow import UnitOfWork
from models.vocabulary import Priority
from notifications.fr import plural
from tiflow.spreadsheet.files import SheetRows, file_kind, write_csv, write_xlsx
from tiflow.spreadsheet.layout import (
    ACTIONS,
    BUDGET,
    CSV_SHEET_HEADER,
    FUNDING,
    INDICATORS,
    MILESTONES,
    ORGANISATIONS,
    PEOPLE,
    PREFERENCES,
    SHEETS,
    TERRITORY,
    Sheet,
)
from tiflow.spreadsheet.limits import LIMITS_TEXT
from tiflow.spreadsheet.problems import FileKind
from tiflow.spreadsheet.records import (
    ActionRecord,
    BudgetRecord,
    FundingRecord,
    IndicatorRecord,
    MilestoneRecord,
    OrganisationRecord,
    PersonRecord,
    PlanFile,
    PreferenceRecord,
    Record,
    TerritoryRecord,
)


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    territory_code: str
    counts: dict[str, int]  # sheet title -> rows written

    def describe(self) -> str:
        """« 12 actions, 18 jalons, … »"""
        nouns = {
            "Organisations": ("organisation", "organisations"),
            "Personnes": ("personne", "personnes"),
            "Actions": ("action", "actions"),
            "Jalons": ("jalon", "jalons"),
            "Indicateurs": ("indicateur", "indicateurs"),
            "Budget": ("ligne de budget", "lignes de budget"),
            "Financements": ("financement", "financements"),
        }
        return ", ".join(plural(self.counts.get(t, 0), *n) for t, n in nouns.items())


def plan_from_database(uow: UnitOfWork, territory_code: str) -> PlanFile:
    """The territory's whole plan as records (what an export writes)."""
    session = uow.session
    territory = uow.repo.territory(territory_code)
    assert territory.id is not None
    tid = territory.id
    organisations = session.exec(
        select(Organisation).where(Organisation.territory_id == tid).order_by(col(Organisation.id))
    ).all()
    org_by_id = {o.id: o for o in organisations}
    people = session.exec(
        select(Person).where(Person.territory_id == tid).order_by(col(Person.id))
    ).all()
    roles: dict[int, set[Any]] = defaultdict(set)
    for link in session.exec(
        select(PersonRole)
        .join(Person, col(Person.id) == col(PersonRole.person_id))
        .where(Person.territory_id == tid)
    ).all():
        roles[link.person_id].add(link.role)
    email_by_id = {p.id: p.email for p in people}
    actions = uow.repo.actions(tid)
    number_by_id = {a.id: a.number for a in actions}

    def children(model: Any) -> list[Any]:
        query = (
            select(model)
            .join(ActionSheet, col(ActionSheet.id) == model.action_id)
            .where(ActionSheet.territory_id == tid)
            .order_by(col(ActionSheet.number), model.id)
        )
        return list(session.exec(query).all())

    partners: dict[int, list[str]] = defaultdict(list)
    for partner in _partners(uow, tid):
        partners[partner.action_id].append(_org_ref(org_by_id[partner.organisation_id]))

    def ref(org_id: int | None) -> str:
        return _org_ref(org_by_id[org_id]) if org_id is not None else ""

    return PlanFile(
        territory=[
            TerritoryRecord(
                code=territory.code,
                name=territory.name,
                department=territory.department or "",
                region=territory.region or "",
                is_example=territory.is_example,
            )
        ],
        organisations=[
            OrganisationRecord(
                name=o.name, short_name=o.short_name or "", kind=o.kind, is_funder=o.is_funder
            )
            for o in organisations
        ],
        people=[
            PersonRecord(
                full_name=p.full_name,
                email=p.email,
                organisation=ref(p.organisation_id),
                position=p.position or "",
                roles=frozenset(roles.get(p.id, set()) if p.id is not None else set()),
            )
            for p in people
        ],
        actions=[
            ActionRecord(
                number=a.number,
                title=a.title,
                description=a.description,
                axis=a.axis,
                pilot=email_by_id.get(a.pilot_id, "") if a.pilot_id is not None else "",
                partners=tuple(partners.get(a.id, [])) if a.id is not None else (),
                firm_commitment=a.firm_commitment,
                priority=Priority(a.priority),
                start_date=a.start_date,
                end_date=a.end_date,
                state=a.state,
            )
            for a in actions
        ],
        milestones=[
            MilestoneRecord(
                action=number_by_id[m.action_id],
                title=m.title,
                due_date=m.due_date,
                done_on=m.done_on,
            )
            for m in children(Milestone)
        ],
        indicators=[
            IndicatorRecord(
                action=number_by_id[i.action_id],
                name=i.name,
                unit=i.unit,
                target=i.target,
                actual=i.actual,
                measured_on=i.measured_on,
            )
            for i in children(Indicator)
        ],
        budget=[
            BudgetRecord(
                action=number_by_id[b.action_id], year=b.year, kind=b.kind, amount=b.amount
            )
            for b in sorted(
                children(BudgetLine), key=lambda b: (number_by_id[b.action_id], b.year, b.kind)
            )
        ],
        funding=[
            FundingRecord(
                action=number_by_id[f.action_id],
                funder=ref(f.funder_id),
                year=f.year,
                requested=f.requested,
                granted=f.granted,
                paid=f.paid,
                dossier_due=f.dossier_due,
                dossier_filed_on=f.dossier_filed_on,
                decision_expected=f.decision_expected,
                payment_expected=f.payment_expected,
                decision_date=f.decision_date,
                convention_ref=f.convention_ref or "",
            )
            for f in children(Funding)
        ],
        preferences=_preferences(uow, tid, email_by_id),
    )


def _preferences(
    uow: UnitOfWork, territory_id: int, email_by_id: dict[int | None, str]
) -> list[PreferenceRecord]:
    """The stored choices of the territory's people, person by person in category order."""
    query = (
        select(PersonPreference)
        .join(Person, col(Person.id) == col(PersonPreference.person_id))
        .where(Person.territory_id == territory_id)
    )
    order = list(Category)
    stored = sorted(
        uow.session.exec(query).all(),
        key=lambda p: (p.person_id, order.index(Category(p.category))),
    )
    return [
        PreferenceRecord(
            email=email_by_id[p.person_id],
            category=Category(p.category),
            frequency=Frequency(p.frequency),
            weekday=p.weekday if p.frequency == Frequency.WEEKLY else None,
            hour=p.hour,
            channel=p.channel,
        )
        for p in stored
    ]


def _partners(uow: UnitOfWork, territory_id: int) -> list[ActionPartner]:
    query = (
        select(ActionPartner)
        .join(ActionSheet, col(ActionSheet.id) == col(ActionPartner.action_id))
        .where(ActionSheet.territory_id == territory_id)
        .order_by(col(ActionPartner.action_id), col(ActionPartner.organisation_id))
    )
    return list(uow.session.exec(query).all())


def _org_ref(org: Organisation) -> str:
    """How other sheets name an organisation: its short name, or its name."""
    return org.short_name or org.name


def _rows(plan: PlanFile) -> SheetRows:
    sheets: list[tuple[Sheet, Sequence[Record] | None]] = [
        (TERRITORY, plan.territory),
        (ORGANISATIONS, plan.organisations),
        (PEOPLE, plan.people),
        (ACTIONS, plan.actions),
        (MILESTONES, plan.milestones),
        (INDICATORS, plan.indicators),
        (BUDGET, plan.budget),
        (FUNDING, plan.funding),
        (PREFERENCES, plan.preferences),
    ]
    return [(sheet, [asdict(r) for r in records or []]) for sheet, records in sheets]


def write_plan(plan: PlanFile, path: Path) -> None:
    """Write records to `path`, XLSX or CSV by its extension."""
    rows = _rows(plan)
    if file_kind(path) is FileKind.XLSX:
        write_xlsx(path, rows, instructions())
    else:
        write_csv(path, rows)


def export_plan(uow: UnitOfWork, territory_code: str, path: Path) -> ExportSummary:
    """Write the territory's plan to `path` (.xlsx or .csv); read-only on the database."""
    plan = plan_from_database(uow, territory_code)
    write_plan(plan, path)
    counts = {sheet.title: len(rows) for sheet, rows in _rows(plan)}
    return ExportSummary(path, territory_code, counts)


def write_template(path: Path) -> None:
    """A blank file to fill: every sheet with its headers (and, for .xlsx, the instructions
    sheet and drop-down lists)."""
    write_plan(PlanFile(), path)


def instructions() -> list[list[str]]:
    """The « Instructions » sheet, generated from the layout so it always tells the truth."""
    lines: list[list[str]] = [
        ["Plan d'actions — mode d'emploi", "", ""],
        [
            "",
            "",
            "Ce classeur décrit le plan d'actions d'un Territoire d'industrie. Remplissez une ligne"
            " par élément, sous les en-têtes (ligne 1) ; ne renommez ni les feuilles ni les"
            " en-têtes. Importez-le avec : tiflow import FICHIER.xlsx --dry-run (simulation),"
            " puis sans --dry-run.",
        ],
        [
            "",
            "",
            "Tout est vérifié avant d'écrire : s'il y a une erreur, aucune n'est enregistrée et"
            " la liste complète des erreurs indique feuille, ligne et colonne. Réimporter le même"
            " fichier ne change rien.",
        ],
        [
            "",
            "",
            "Les actions existantes sont reconnues par leur numéro, les personnes par leur"
            " e-mail, les organisations par leur nom ; les jalons par leur intitulé, les"
            " indicateurs par leur nom, le budget par année et nature, les financements par"
            " financeur et année. Pour une action, les lignes d'une feuille (Jalons, Indicateurs,"
            " Budget, Financements) remplacent celles en base : une ligne retirée est supprimée."
            " Une action sans aucune ligne dans une feuille garde les siennes.",
        ],
        [
            "",
            "",
            "L'état d'une action nouvelle est son état initial ; celui d'une action existante ne"
            " change pas par import (les décisions passent par le COPIL et les flux tiflow).",
        ],
        [
            "",
            "",
            "Dates : 15/03/2025 ou 2025-03-15. Montants : 12 500,50 € ou 12500.5 (deux décimales"
            " au plus). Oui/non : « oui » ou « non ». Une cellule vide vaut « vide » (ou 0 pour un"
            " montant) ; une colonne absente laisse la valeur en base inchangée.",
        ],
        [
            "",
            "",
            "Formules : une cellule calculée est lue pour la valeur que le tableur a enregistrée ;"
            " un classeur produit par un programme, jamais ouvert dans un tableur, n'en a pas :"
            " ouvrez-le et enregistrez-le dans Excel ou LibreOffice, ou tapez les valeurs. Un texte"
            " qui commence par = + - ou @ est précédé d'une apostrophe à l'export (il est affiché,"
            " jamais exécuté) ; l'import retire cette apostrophe.",
        ],
        [
            "",
            "",
            "Noms et intitulés : sur une seule ligne (seule la description d'une action peut en"
            " avoir plusieurs) ; un nom de personne ne contient ni « < », ni « > », ni « @ »."
            f" Limites : {LIMITS_TEXT}.",
        ],
        [
            "",
            "",
            f"Version CSV (un seul fichier, séparateur « ; », UTF-8) : une première colonne"
            f" « {CSV_SHEET_HEADER} » donne la feuille de chaque ligne, puis les colonnes de toutes"
            " les feuilles ; un CSV sans cette colonne ne contient que des actions.",
        ],
        ["", "", ""],
        ["Feuille / colonne", "Obligatoire", "Contenu"],
    ]
    for sheet in SHEETS:
        lines.append([sheet.title, "", sheet.purpose[0].upper() + sheet.purpose[1:] + "."])
        for column in sheet.columns:
            example = f" Exemple : {column.example}" if column.example else ""
            lines.append(
                [
                    f"   {column.header}",
                    "oui" if column.required else "",
                    column.description[0].upper() + column.description[1:] + "." + example,
                ]
            )
    return lines
