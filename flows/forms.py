"""The coordinator's forms: each flow takes one of these pydantic models as its parameter.

Prefect turns them into the form of the flow's "Run" page (and, for `CopilDecisionsInput`, the
form of a paused run's "Resume" page), so every field has a French `title` and `description`.
Amounts are typed as text in the form and accept French writing (``12 500,50 €``); outcomes of
COPIL decisions are French words.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from prefect.input import RunInput
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    create_model,
    field_validator,
)

from models.lifecycle import State
from models.money import parse_number
from models.safe_text import line_break_problem, person_name_problem
from models.vocabulary import Axis, BudgetKind, Priority


def parse_amount(value: Any) -> Any:
    """Amounts and quantities as typed: ``12 500,50 €``, ``12,5``, ``12500.5``, ``12500`` → a
    Decimal string (exact); floats go through their shortest repr, so 0.1 stays ``0.1`` (the
    service then refuses sub-cent amounts)."""
    if isinstance(value, bool):
        raise ValueError("montant invalide")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return parse_number(value, currency=True)  # one French parser (models/money.py)
    return value


Amount = Annotated[
    Decimal,
    BeforeValidator(parse_amount),
    WithJsonSchema({"type": "string", "examples": ["12 500,00"]}),
]
# Indicator values and targets: typed as text too (``12,5`` or ``12.5``), kept exact.
Quantity = Annotated[
    Decimal,
    BeforeValidator(parse_amount),
    WithJsonSchema({"type": "string", "examples": ["42", "12,5"]}),
]


class Outcome(StrEnum):
    """A COPIL's decision on one action, as the form shows it."""

    VALIDATED = "validée"
    REJECTED = "rejetée"
    DEFERRED = "ajournée"
    REVISION_REQUESTED = "révision demandée"
    NOT_EXAMINED = "non examinée"

    @classmethod
    def _missing_(cls, value: object) -> Outcome | None:
        # Files and API calls may use the lifecycle's state names ("validated").
        if isinstance(value, str):
            wanted = value.strip().lower()
            for member in cls:
                if wanted in (member.value, member.name.lower()):
                    return member
        return None

    @property
    def state(self) -> State | None:
        return None if self is Outcome.NOT_EXAMINED else State(self.name.lower())


def _territory() -> Any:
    return Field(
        None,
        title="Territoire",
        description="Code du territoire, ex. grand-est-touraine. Laisser vide si la base n'en"
        " contient qu'un.",
    )


def _number(description: str = "Numéro de la fiche action, ex. FA-07.") -> Any:
    return Field(title="N° de l'action", description=description, examples=["FA-07"])


def _recorded_by() -> Any:
    return Field(
        "",
        title="Saisi par",
        description="Votre nom, inscrit à l'historique de l'action. Laisser vide : le ou la"
        " chargé(e) de mission du territoire.",
    )


def _at() -> Any:
    return Field(
        None,
        title="Date et heure de l'opération",
        description="Laisser vide pour maintenant. Sert à saisir après coup ou à rejouer une"
        " année (démonstration). Sans fuseau horaire : heure de Paris.",
    )


# Fields of the forms that name something: an action, a milestone, a place, organisations.
ONE_LINE_FIELDS = (
    "number",
    "title",
    "name",
    "unit",
    "place",
    "funder",
    "convention_ref",
    "partners",
)


def _checked(value: Any, rule: Callable[[str], str | None]) -> Any:
    for text in value if isinstance(value, list) else [value]:
        if isinstance(text, str) and (problem := rule(text)):
            raise ValueError(problem)
    return value


class Form(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Names and titles hold on one line; the name of a person cannot look like an address.
    @field_validator(*ONE_LINE_FIELDS, check_fields=False)
    @classmethod
    def _one_line(cls, value: Any) -> Any:
        return _checked(value, line_break_problem)

    @field_validator("recorded_by", check_fields=False)
    @classmethod
    def _person_name(cls, value: Any) -> Any:
        return _checked(value, person_name_problem)


# --- Proposer une action ---------------------------------------------------------------------


class BudgetLineForm(Form):
    model_config = ConfigDict(title="Ligne de budget")
    year: int = Field(title="Année", description="Année du budget, ex. 2025.", ge=2000, le=2100)
    kind: BudgetKind = Field(
        title="Nature", description="investissement ou fonctionnement (coûts de l'année)."
    )
    amount: Amount = Field(title="Montant (€)", description="Montant prévu, ex. 45 000,00.")


class MilestoneForm(Form):
    model_config = ConfigDict(title="Jalon")
    title: str = Field(title="Jalon", description="Étape à franchir, ex. « Recrutement ».")
    due_date: date = Field(title="Échéance", description="Date prévue.")


class IndicatorForm(Form):
    model_config = ConfigDict(title="Indicateur")
    name: str = Field(title="Indicateur", description="Ce que l'on mesure.")
    unit: str = Field("", title="Unité", description="ex. entreprises, %, ha.")
    target: Quantity = Field(title="Cible", description="Valeur visée à la fin de l'action.")


class ProposalForm(Form):
    """Proposer une action au COPIL (nouvelle fiche, ou fiche en brouillon / à réviser)."""

    model_config = ConfigDict(title="Proposer une action au COPIL")
    territory: str | None = _territory()
    number: str | None = Field(
        None,
        title="N° de l'action",
        description="Fiche existante (brouillon ou révision demandée) à proposer, ex. FA-09."
        " Laisser vide pour créer une nouvelle fiche avec le numéro suivant.",
        examples=["FA-09"],
    )
    title: str | None = Field(
        None, title="Intitulé", description="Obligatoire pour une nouvelle fiche."
    )
    description: str | None = Field(None, title="Description", description="Objectifs, contenu.")
    axis: Axis | None = Field(
        None,
        title="Axe",
        description="competences, innovation, foncier ou transition_ecologique. Obligatoire pour"
        " une nouvelle fiche.",
    )
    pilot_email: str | None = Field(
        None, title="Pilote (e-mail)", description="Adresse e-mail d'une personne du territoire."
    )
    firm_commitment: bool | None = Field(
        None, title="Engagement ferme", description="Engagement ferme de réalisation."
    )
    priority: Priority | None = Field(
        None, title="Priorité", description="1 : haute, 2 : moyenne, 3 : basse."
    )
    start_date: date | None = Field(None, title="Début prévu", description="Date de début.")
    end_date: date | None = Field(None, title="Fin prévue", description="Date de fin.")
    budget: list[BudgetLineForm] = Field(
        default_factory=list,
        title="Budget",
        description="Lignes de budget par année et nature ; si vous en donnez, elles remplacent"
        " celles de la fiche.",
    )
    milestones: list[MilestoneForm] = Field(
        default_factory=list,
        title="Jalons",
        description="Si vous en donnez, ils remplacent ceux de la fiche.",
    )
    indicators: list[IndicatorForm] = Field(
        default_factory=list,
        title="Indicateurs",
        description="Si vous en donnez, ils remplacent ceux de la fiche.",
    )
    partners: list[str] = Field(
        default_factory=list,
        title="Partenaires",
        description="Noms ou sigles d'organisations du territoire, ex. UIMM, OPCO 2i.",
    )
    recorded_by: str = _recorded_by()
    at: datetime | None = _at()


# --- COPIL -----------------------------------------------------------------------------------


class CopilScheduleForm(Form):
    """Planifier un COPIL : date, lieu, membres ; l'ordre du jour est construit pour vous."""

    model_config = ConfigDict(title="Planifier un COPIL")
    territory: str | None = _territory()
    held_at: datetime = Field(
        title="Date et heure",
        description="Début de la réunion, heure de Paris, ex. 2025-01-23T09:30.",
    )
    place: str = Field("", title="Lieu", description="ex. Hôtel de ville d'Amboise.")
    members: list[str] = Field(
        default_factory=list,
        title="Membres (e-mails)",
        description="Adresses e-mail des membres invités. Laisser vide : toutes les personnes"
        " ayant le rôle « membre du COPIL ».",
    )
    recorded_by: str = _recorded_by()


class DecisionForm(Form):
    model_config = ConfigDict(title="Décision")
    number: str = _number()
    outcome: Outcome = Field(
        title="Décision",
        description="validée, rejetée, ajournée, révision demandée ; « non examinée » laisse"
        " l'action en attente du prochain COPIL.",
    )
    conditions: str = Field(
        "", title="Conditions", description="Conditions posées par le COPIL, s'il y en a."
    )
    comment: str = Field("", title="Commentaire", description="Motif ou remarque du COPIL.")


class CopilDecisionsForm(Form):
    """Tenir un COPIL : ses décisions, enregistrées toutes ensemble ou pas du tout."""

    model_config = ConfigDict(title="Décisions du COPIL")
    copil_id: int = Field(
        title="N° du COPIL",
        description="Numéro de la réunion, donné lors de sa planification.",
    )
    decisions: list[DecisionForm] = Field(
        default_factory=list,
        title="Décisions",
        description="Une ligne par action examinée.",
    )
    budget_year: int | None = Field(
        None,
        title="Année du budget validé",
        description="Année dont le COPIL valide le budget. Par défaut : l'année de la réunion.",
    )
    validated_budget: Amount | None = Field(
        None,
        title="Budget annuel validé (€)",
        description="Montant du budget annuel validé par le COPIL, s'il en valide un.",
    )
    recorded_by: str = _recorded_by()
    at: datetime | None = _at()


_DECISIONS_TITLE = "Décisions"
_DECISIONS_HELP = "Une ligne par action à l'ordre du jour : choisissez la décision."


class CopilDecisionsInput(RunInput):
    """The form of a paused "Tenir un COPIL (saisie dans Prefect)" run."""

    model_config = ConfigDict(title="Décisions du COPIL", extra="forbid")
    decisions: list[DecisionForm] = Field(
        default_factory=list, title=_DECISIONS_TITLE, description=_DECISIONS_HELP
    )
    budget_year: int | None = Field(
        None,
        title="Année du budget validé",
        description="Année dont le COPIL valide le budget. Par défaut : l'année de la réunion.",
    )
    validated_budget: Amount | None = Field(
        None,
        title="Budget annuel validé (€)",
        description="Montant du budget annuel validé par le COPIL, s'il en valide un.",
    )
    recorded_by: str = _recorded_by()

    @field_validator("recorded_by")
    @classmethod
    def _person_name(cls, value: Any) -> Any:  # the same rule as every form's « Saisi par »
        return _checked(value, person_name_problem)

    @classmethod
    def prefilled(
        cls, description: str, decisions: list[DecisionForm]
    ) -> type[CopilDecisionsInput]:
        """This form with one line per agenda item, and `description` (markdown) above it.

        Unlike `RunInput.with_initial_data`, it keeps the field's French title and
        description."""
        model = create_model(
            cls.__name__,
            __base__=cls,
            decisions=(
                list[DecisionForm],
                Field(default=decisions, title=_DECISIONS_TITLE, description=_DECISIONS_HELP),
            ),
        )
        model._description = description
        return model


class InteractiveCopilForm(Form):
    """Tenir un COPIL en saisissant les décisions dans Prefect (le flux attend la saisie)."""

    model_config = ConfigDict(title="Tenir un COPIL (saisie dans Prefect)")
    copil_id: int = Field(
        title="N° du COPIL",
        description="Numéro de la réunion, donné lors de sa planification.",
    )
    wait_hours: int = Field(
        24,
        title="Attente maximale (heures)",
        description="Au-delà, le flux échoue sans rien enregistrer ; relancez-le.",
        ge=1,
    )
    poll_seconds: int = Field(
        10,
        title="Vérification toutes les (secondes)",
        description="Intervalle entre deux vérifications de la saisie.",
        ge=1,
    )


_UNCHANGED = "Vide : inchangé (0 pour une nouvelle ligne)."


# --- Financement -----------------------------------------------------------------------------


class FundingForm(Form):
    """Enregistrer un financement : demandé, accordé, versé."""

    model_config = ConfigDict(title="Enregistrer un financement")
    territory: str | None = _territory()
    number: str = _number()
    funder: str = Field(
        title="Financeur", description="Nom ou sigle de l'organisation, ex. Région, État, ADEME."
    )
    year: int | None = Field(
        None,
        title="Année",
        description="Année du financement. Vide : la ligne existante de ce financeur, sinon"
        " l'année de la décision.",
    )
    requested: Amount | None = Field(
        None,
        title="Montant demandé (€)",
        description=_UNCHANGED,
    )
    granted: Amount | None = Field(
        None,
        title="Montant accordé (€)",
        description=_UNCHANGED,
    )
    paid: Amount | None = Field(None, title="Montant versé (€)", description=_UNCHANGED)
    dossier_filed_on: date | None = Field(
        None,
        title="Dossier déposé le",
        description="Date du dépôt du dossier chez le financeur : le rappel du dépôt s'arrête.",
    )
    decision_date: date | None = Field(
        None,
        title="Date de décision",
        description="Date de la décision du financeur : le rappel de la décision s'arrête.",
    )
    convention_ref: str | None = Field(
        None, title="Référence de la convention", description="ex. CONV-2024-017."
    )
    force_reason: str | None = Field(
        None,
        title="Forcer « financée » (motif)",
        description="Seulement si l'action doit passer à « financée » sans que les montants"
        " accordés couvrent son budget : indiquez pourquoi.",
    )
    recorded_by: str = _recorded_by()
    at: datetime | None = _at()


# --- Avancement ------------------------------------------------------------------------------


class MilestoneDoneForm(Form):
    model_config = ConfigDict(title="Jalon franchi")
    title: str = Field(title="Jalon", description="Intitulé du jalon, comme sur la fiche.")
    done_on: date | None = Field(None, title="Franchi le", description="Vide : aujourd'hui.")


class IndicatorValueForm(Form):
    model_config = ConfigDict(title="Valeur d'indicateur")
    name: str = Field(title="Indicateur", description="Nom de l'indicateur, comme sur la fiche.")
    value: Quantity = Field(title="Valeur mesurée", description="ex. 42 ou 12,5.")
    measured_on: date | None = Field(None, title="Mesurée le", description="Vide : aujourd'hui.")


class ProgressForm(Form):
    """Suivre l'avancement : jalons franchis, valeurs des indicateurs, note de suivi."""

    model_config = ConfigDict(title="Suivre l'avancement d'une action")
    territory: str | None = _territory()
    number: str = _number()
    milestones_done: list[MilestoneDoneForm] = Field(
        default_factory=list, title="Jalons franchis", description="Jalons atteints."
    )
    indicator_values: list[IndicatorValueForm] = Field(
        default_factory=list, title="Indicateurs", description="Nouvelles valeurs mesurées."
    )
    note: str = Field("", title="Note de suivi", description="Où en est l'action ?")
    author_email: str | None = Field(
        None, title="Auteur de la note (e-mail)", description="Vide : le pilote de l'action."
    )
    on: date | None = Field(None, title="Date du point", description="Vide : aujourd'hui.")
    recorded_by: str = _recorded_by()
    at: datetime | None = _at()


class StepForm(Form):
    """Démarrer ou terminer une action."""

    model_config = ConfigDict(title="Action")
    territory: str | None = _territory()
    number: str = _number()
    reason: str = Field("", title="Commentaire", description="Facultatif, inscrit à l'historique.")
    recorded_by: str = _recorded_by()
    at: datetime | None = _at()


class AbandonForm(Form):
    """Abandonner une action : le motif est obligatoire."""

    model_config = ConfigDict(title="Abandonner une action")
    territory: str | None = _territory()
    number: str = _number()
    reason: str = Field(title="Motif", description="Pourquoi on abandonne (obligatoire).")
    recorded_by: str = _recorded_by()
    at: datetime | None = _at()


def parameter(title: str, description: str) -> Any:
    """Metadata for a flow's one parameter: `Annotated[CopilDecisionsForm, parameter(...)]`.

    Prefect titles a parameter with its Python name and drops an annotated description; both
    survive through `json_schema_extra`, so the form's heading is French too."""
    return Field(json_schema_extra={"title": title, "description": description})
