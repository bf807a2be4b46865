"""The file format, in one place: sheets, their French column headers and what each cell holds.

The reader, the writer, the blank template and its instructions sheet are all driven by
`SHEETS`, so the format described to coordinators is the format tiflow reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from models.lifecycle import State
from models.preferences import WEEKDAYS, Category, Frequency
from models.safe_text import line_break_problem, person_name_problem
from models.vocabulary import Axis, BudgetKind, OrganisationKind, Priority, Role
from tiflow.spreadsheet.cells import fold


class Kind(StrEnum):
    TEXT = "text"
    EMAIL = "email"
    DATE = "date"
    MONEY = "money"
    DECIMAL = "decimal"
    YEAR = "year"
    BOOL = "bool"
    AXIS = "axis"
    STATE = "state"
    PRIORITY = "priority"
    BUDGET_KIND = "budget_kind"
    ORG_KIND = "org_kind"
    ROLES = "roles"
    ORG_REF = "org_ref"  # an organisation, by name or short name
    ORG_REFS = "org_refs"  # several organisations
    PERSON_REF = "person_ref"  # a person, by e-mail
    ACTION_REF = "action_ref"  # an action of the Actions sheet, by number
    CATEGORY = "category"  # a kind of message a person chooses how to receive
    FREQUENCY = "frequency"
    WEEKDAY = "weekday"
    HOUR = "hour"
    CHANNEL = "channel"  # e-mail, or a « canal-… » the operator configured


FORMATS: dict[Kind, str] = {
    Kind.TEXT: "texte",
    Kind.EMAIL: "adresse e-mail",
    Kind.DATE: "date JJ/MM/AAAA (ou AAAA-MM-JJ, ou cellule au format Date)",
    Kind.MONEY: "montant en euros, deux décimales au plus : 12 500,50 € ou 12500.5",
    Kind.DECIMAL: "nombre, virgule ou point décimal : 12,5",
    Kind.YEAR: "année sur 4 chiffres",
    Kind.BOOL: "oui ou non",
    Kind.AXIS: "une des valeurs : " + ", ".join(a.label for a in Axis),
    Kind.STATE: "une des valeurs : " + ", ".join(s.label for s in State),
    Kind.PRIORITY: "haute, moyenne ou basse (ou 1, 2, 3)",
    Kind.BUDGET_KIND: "Investissement ou Fonctionnement",
    Kind.ORG_KIND: "une des valeurs : " + ", ".join(k.label for k in OrganisationKind),
    Kind.ROLES: "liste séparée par des virgules : " + ", ".join(r.label for r in Role),
    Kind.ORG_REF: "nom ou sigle d'une organisation (feuille Organisations ou déjà en base)",
    Kind.ORG_REFS: "noms ou sigles d'organisations, séparés par des virgules",
    Kind.PERSON_REF: "e-mail d'une personne (feuille Personnes ou déjà en base)",
    Kind.ACTION_REF: "numéro d'une action de la feuille Actions",
    Kind.CATEGORY: "une des valeurs : " + ", ".join(c.label for c in Category),
    Kind.FREQUENCY: "une des valeurs : " + ", ".join(f.label for f in Frequency),
    Kind.WEEKDAY: "jour de la semaine : " + ", ".join(WEEKDAYS),
    Kind.HOUR: "heure d'envoi de 0 à 23 (heure de Paris) : 9 ou 9 h",
    Kind.CHANNEL: "« e-mail » ou un canal « canal-… » configuré par l'exploitant",
}

# Closed lists offered as drop-downs in the workbook (data validation).
CHOICES: dict[Kind, list[str]] = {
    Kind.AXIS: [a.label for a in Axis],
    Kind.STATE: [s.label for s in State],
    Kind.PRIORITY: [p.label for p in Priority],
    Kind.BUDGET_KIND: [k.label for k in BudgetKind],
    Kind.ORG_KIND: [k.label for k in OrganisationKind],
    Kind.BOOL: ["oui", "non"],
    Kind.CATEGORY: [c.label for c in Category],
    Kind.FREQUENCY: [f.label for f in Frequency],
    Kind.WEEKDAY: list(WEEKDAYS),
}


@dataclass(frozen=True)
class Column:
    key: str  # attribute of the matching record (tiflow.spreadsheet.records)
    header: str
    kind: Kind = Kind.TEXT
    required: bool = False
    max_length: int | None = None
    width: int = 16
    example: str = ""
    note: str = ""
    # What a text cell must respect (a French reason, or None): one line unless told otherwise.
    text_rule: Callable[[str], str | None] | None = line_break_problem

    @property
    def description(self) -> str:
        text = FORMATS[self.kind]
        return f"{text}. {self.note}" if self.note else text


@dataclass(frozen=True)
class Sheet:
    key: str
    title: str  # the worksheet's name, and the value of the CSV column « Feuille »
    columns: tuple[Column, ...]
    purpose: str
    aliases: tuple[str, ...] = ()

    def column(self, key: str) -> Column:
        return next(c for c in self.columns if c.key == key)

    def header(self, key: str) -> str:
        return self.column(key).header


_ACTION = Column(
    "action", "Action", Kind.ACTION_REF, required=True, max_length=20, width=10, example="FA-07"
)

TERRITORY = Sheet(
    "territory",
    "Territoire",
    (
        Column(
            "code",
            "Code",
            required=True,
            max_length=64,
            width=22,
            example="grand-est-touraine",
            note="identifiant court : minuscules, chiffres et tirets",
        ),
        Column(
            "name", "Nom", required=True, max_length=200, width=30, example="Grand Est Touraine"
        ),
        Column("department", "Département", max_length=100, width=20, example="Indre-et-Loire"),
        Column("region", "Région", max_length=100, width=22, example="Centre-Val de Loire"),
        Column(
            "is_example",
            "Données d'exemple",
            Kind.BOOL,
            width=12,
            example="non",
            note="« oui » pour un jeu de démonstration",
        ),
    ),
    "le territoire du plan (une seule ligne)",
)

ORGANISATIONS = Sheet(
    "organisations",
    "Organisations",
    (
        Column(
            "name",
            "Nom",
            required=True,
            max_length=200,
            width=45,
            example="Communauté de communes du Val d'Amboise",
        ),
        Column(
            "short_name",
            "Sigle",
            max_length=40,
            width=18,
            example="CC Val d'Amboise",
            note="on peut désigner l'organisation par son sigle dans les autres feuilles",
        ),
        Column(
            "kind", "Type", Kind.ORG_KIND, required=True, width=24, example="Communauté de communes"
        ),
        Column("is_funder", "Financeur (oui/non)", Kind.BOOL, width=12, example="oui"),
    ),
    "les organisations citées (partenaires, financeurs, employeurs des personnes)",
    aliases=("Organisation", "Partenaires et financeurs"),
)

PEOPLE = Sheet(
    "people",
    "Personnes",
    (
        Column(
            "full_name",
            "Nom complet",
            text_rule=person_name_problem,
            required=True,
            max_length=200,
            width=22,
            example="Isabelle Roux",
        ),
        Column(
            "email",
            "E-mail",
            Kind.EMAIL,
            required=True,
            max_length=254,
            width=34,
            example="isabelle.roux@uimm-touraine.example",
            note="identifie la personne ; les pilotes des actions sont désignés par leur e-mail",
        ),
        Column(
            "organisation", "Organisation", Kind.ORG_REF, max_length=200, width=18, example="UIMM"
        ),
        Column(
            "position", "Fonction", max_length=200, width=30, example="Responsable emploi-formation"
        ),
        Column("roles", "Rôles", Kind.ROLES, width=30, example="pilote d'action"),
    ),
    "les personnes citées : au moins les pilotes des actions",
    aliases=("Personne", "Contacts"),
)

ACTIONS = Sheet(
    "actions",
    "Actions",
    (
        Column(
            "number",
            "Numéro",
            required=True,
            max_length=20,
            width=9,
            example="FA-07",
            note="unique dans le territoire",
        ),
        Column(
            "title",
            "Intitulé",
            required=True,
            max_length=300,
            width=45,
            example="Plateforme Ressources humaines",
        ),
        Column(
            "description",
            "Description",
            text_rule=None,  # the one text written on several lines
            width=50,
            example="Accompagner les entreprises dans leurs recrutements.",
        ),
        Column("axis", "Axe", Kind.AXIS, required=True, width=20, example="Compétences"),
        Column(
            "pilot",
            "Pilote (e-mail)",
            Kind.PERSON_REF,
            max_length=254,
            width=34,
            example="isabelle.roux@uimm-touraine.example",
        ),
        Column(
            "partners",
            "Partenaires",
            Kind.ORG_REFS,
            width=30,
            example="France Travail, OPCO 2i, UIMM",
        ),
        Column("firm_commitment", "Engagement ferme", Kind.BOOL, width=11, example="oui"),
        Column(
            "priority", "Priorité", Kind.PRIORITY, width=10, example="haute", note="vide : moyenne"
        ),
        Column("start_date", "Début", Kind.DATE, width=12, example="15/02/2024"),
        Column(
            "end_date", "Fin", Kind.DATE, width=12, example="31/12/2025", note="pas avant le début"
        ),
        Column(
            "state",
            "État",
            Kind.STATE,
            width=16,
            example="brouillon",
            note="état initial d'une nouvelle action (vide : brouillon) ; pour une action "
            "existante, vide ou égal à son état actuel : l'import ne change pas l'état",
        ),
    ),
    "les fiches actions du territoire (une ligne par action)",
    aliases=("Action", "Fiches actions"),
)

MILESTONES = Sheet(
    "milestones",
    "Jalons",
    (
        _ACTION,
        Column(
            "title",
            "Intitulé",
            required=True,
            max_length=300,
            width=45,
            example="Ouverture de la plateforme",
            note="unique pour une action",
        ),
        Column("due_date", "Échéance", Kind.DATE, required=True, width=12, example="01/06/2024"),
        Column("done_on", "Réalisé le", Kind.DATE, width=12, example=""),
    ),
    "les jalons datés de chaque action",
    aliases=("Jalon",),
)

INDICATORS = Sheet(
    "indicators",
    "Indicateurs",
    (
        _ACTION,
        Column(
            "name",
            "Nom",
            required=True,
            max_length=300,
            width=40,
            example="Recrutements accompagnés",
            note="unique pour une action",
        ),
        Column("unit", "Unité", max_length=40, width=14, example="recrutements"),
        Column("target", "Cible", Kind.DECIMAL, required=True, width=10, example="120"),
        Column("actual", "Valeur atteinte", Kind.DECIMAL, width=10, example="45"),
        Column("measured_on", "Mesurée le", Kind.DATE, width=12, example="30/06/2024"),
    ),
    "les indicateurs de chaque action, cible et valeur atteinte",
    aliases=("Indicateur",),
)

BUDGET = Sheet(
    "budget",
    "Budget",
    (
        _ACTION,
        Column("year", "Année", Kind.YEAR, required=True, width=8, example="2024"),
        Column(
            "kind",
            "Nature",
            Kind.BUDGET_KIND,
            required=True,
            width=16,
            example="Fonctionnement",
            note="une ligne par action, année et nature",
        ),
        Column("amount", "Montant", Kind.MONEY, required=True, width=16, example="70 000,00 €"),
    ),
    "le budget de chaque action par année, en investissement et en fonctionnement",
    aliases=("Budgets", "Lignes de budget"),
)

FUNDING = Sheet(
    "funding",
    "Financements",
    (
        _ACTION,
        Column(
            "funder",
            "Financeur",
            Kind.ORG_REF,
            required=True,
            max_length=200,
            width=18,
            example="OPCO 2i",
            note="une ligne par action, financeur et année",
        ),
        Column("year", "Année", Kind.YEAR, required=True, width=8, example="2024"),
        Column(
            "requested", "Demandé", Kind.MONEY, width=15, example="40 000,00 €", note="vide : 0"
        ),
        Column("granted", "Accordé", Kind.MONEY, width=15, example="40 000,00 €", note="vide : 0"),
        Column("paid", "Versé", Kind.MONEY, width=15, example="0", note="vide : 0"),
        Column("dossier_due", "Dépôt du dossier", Kind.DATE, width=12, example="01/02/2024"),
        Column("dossier_filed_on", "Dossier déposé le", Kind.DATE, width=12, example="29/01/2024"),
        Column("decision_expected", "Décision attendue", Kind.DATE, width=12, example="15/04/2024"),
        Column("payment_expected", "Versement attendu", Kind.DATE, width=12, example="15/08/2024"),
        Column("decision_date", "Date de décision", Kind.DATE, width=12, example=""),
        Column(
            "convention_ref",
            "Référence convention",
            max_length=100,
            width=18,
            example="CONV-2024-017",
        ),
    ),
    "les financements de chaque action par financeur et par année",
    aliases=("Financement", "Plan de financement"),
)

PREFERENCES = Sheet(
    "preferences",
    "Préférences",
    (
        Column(
            "email",
            "E-mail",
            Kind.PERSON_REF,
            required=True,
            max_length=254,
            width=34,
            example="isabelle.roux@uimm-touraine.example",
            note="la personne (feuille Personnes ou déjà en base)",
        ),
        Column(
            "category",
            "Type de message",
            Kind.CATEGORY,
            required=True,
            width=26,
            example="rappels d'échéance",
            note="une ligne par personne et type de message",
        ),
        Column(
            "frequency",
            "Fréquence",
            Kind.FREQUENCY,
            required=True,
            width=22,
            example="une fois par semaine",
        ),
        Column(
            "weekday",
            "Jour",
            Kind.WEEKDAY,
            width=12,
            example="vendredi",
            note="obligatoire pour « une fois par semaine »",
        ),
        Column(
            "hour",
            "Heure",
            Kind.HOUR,
            width=8,
            example="9",
            note="pour « une fois par jour » et « une fois par semaine » ; vide : 8 h",
        ),
        Column(
            "channel",
            "Canal",
            Kind.CHANNEL,
            width=20,
            example="e-mail",
            note="e-mail, ou un canal « canal-… » configuré par l'exploitant ; vide : inchangé",
        ),
    ),
    "comment chaque personne reçoit les messages de tiflow (sans ligne : tout de suite, par"
    " e-mail) ; un type de message absent de la feuille garde le choix en base",
    aliases=("Préférence", "Préférences d'envoi"),
)

SHEETS: tuple[Sheet, ...] = (
    TERRITORY,
    ORGANISATIONS,
    PEOPLE,
    ACTIONS,
    MILESTONES,
    INDICATORS,
    BUDGET,
    FUNDING,
    PREFERENCES,
)
INSTRUCTIONS_TITLE = "Instructions"
# Sheets a workbook may carry for people, never read.
IGNORED_SHEETS = frozenset(fold(t) for t in (INSTRUCTIONS_TITLE, "Notice", "Mode d'emploi", "Aide"))
CSV_SHEET_HEADER = "Feuille"  # CSV: the column that says which sheet a row belongs to


def sheet_for(name: str) -> Sheet | None:
    """The sheet a worksheet name (or a CSV « Feuille » value) means, accents and case aside."""
    key = fold(name)
    for sheet in SHEETS:
        if key in {fold(sheet.title), *(fold(a) for a in sheet.aliases)}:
            return sheet
    return None


def csv_headers() -> list[str]:
    """Header of the single-file CSV: « Feuille », then every sheet's headers, once each."""
    headers = [CSV_SHEET_HEADER]
    for sheet in SHEETS:
        headers.extend(c.header for c in sheet.columns if c.header not in headers)
    return headers
