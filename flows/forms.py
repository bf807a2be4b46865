"""The coordinator's forms: each flow takes one of these pydantic models as its parameter.

Prefect turns them into the form of the flow's "Run" page (and, for `CopilDecisionsInput`, the
form of a paused run's "Resume" page), so every field has a French `title` and `description`.
Amounts are typed as text in the form and accept French writing (``12 500,50 €``); outcomes of
COPIL decisions are French words.

A field the coordinator may leave empty is typed ``Optional…`` below: its JSON schema is the
plain type (text, date, number, list of choices), not ``X | None``, which Prefect's UI renders
as a type toggle one must click before typing; and the form has no ``null`` default, so an
empty field is left out of the run's parameters. An empty text means "not given".
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from enum import IntEnum, StrEnum
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

from models.lifecycle import State, outcome_word
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


def _blank(value: Any) -> Any:
    """An empty or blank form field means "not given"."""
    return None if isinstance(value, str) and not value.strip() else value


def _parse_optional_amount(value: Any) -> Any:
    return parse_amount(_blank(value))


def choices(enum: type[StrEnum] | type[IntEnum]) -> WithJsonSchema:
    """The JSON schema of a choice list, inline: the form shows the values, and no English
    enum name or docstring."""
    values = [member.value for member in enum]
    kind = "integer" if issubclass(enum, IntEnum) else "string"
    return WithJsonSchema({"type": kind, "enum": values})


OptionalText = Annotated[str | None, BeforeValidator(_blank), WithJsonSchema({"type": "string"})]
OptionalAmount = Annotated[
    Decimal | None,
    BeforeValidator(_parse_optional_amount),
    WithJsonSchema({"type": "string", "examples": ["12 500,00"]}),
]
OptionalDate = Annotated[
    date | None, BeforeValidator(_blank), WithJsonSchema({"type": "string", "format": "date"})
]
OptionalDateTime = Annotated[
    datetime | None,
    BeforeValidator(_blank),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
OptionalInt = Annotated[int | None, BeforeValidator(_blank), WithJsonSchema({"type": "integer"})]


def _no_null_default(schema: dict[str, Any]) -> None:
    if "default" in schema and schema["default"] is None:
        del schema["default"]


def optional(title: str, description: str, **constraints: Any) -> Any:
    """A field that may stay empty (None): see the module docstring."""
    return Field(
        None,
        title=title,
        description=description,
        json_schema_extra=_no_null_default,
        **constraints,
    )


class Outcome(StrEnum):
    """A COPIL's decision on one action, as the form shows it."""

    VALIDATED = "validée"
    REJECTED = "rejetée"
    DEFERRED = "ajournée"
    REVISION_REQUESTED = "révision demandée"
    NOT_EXAMINED = "non examinée"

    @classmethod
    def _missing_(cls, value: object) -> Outcome | None:
        # Files and API calls may use the lifecycle's state names ("validated"), any accents.
        found = outcome_word(value) if isinstance(value, str) else None
        return cls(found) if found else None

    @property
    def state(self) -> State | None:
        return None if self is Outcome.NOT_EXAMINED else State(self.name.lower())


def _territory() -> Any:
    return optional(
        "Territoire",
        "Code du territoire, ex. grand-est-touraine. Laisser vide si la base n'en contient qu'un.",
    )


def _number(description: str = "Numéro de la fiche action, ex. FA-07.") -> Any:
    return Field(title="N° de l'action", description=description, examples=["FA-07"])


def _recorded_by() -> Any:
    return Field(
        "",
        title="Saisi par",
        description="Votre nom, inscrit à l'historique de l'action. Laisser vide : le chargé"
        " de mission du territoire.",
    )


def _at() -> Any:
    return optional(
        "Date et heure de l'opération",
        "Laisser vide pour maintenant. Sert à saisir après coup ou à rejouer une année"
        " (démonstration). Sans fuseau horaire : heure de Paris.",
    )


def _budget_year() -> Any:
    return optional(
        "Année du budget validé",
        "Année dont le COPIL valide le budget. Par défaut : l'année de la réunion.",
    )


def _validated_budget() -> Any:
    return optional(
        "Budget annuel validé (€)",
        "Montant du budget annuel validé par le COPIL, s'il en valide un.",
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


OptionalAxis = Annotated[Axis | None, BeforeValidator(_blank), choices(Axis)]
OptionalPriority = Annotated[Priority | None, BeforeValidator(_blank), choices(Priority)]


def _yes_no(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("oui", "non"):
        return value.strip().lower() == "oui"
    return _blank(value)


# Three answers: yes, no, or empty (unchanged): a choice list, not a checkbox.
OptionalYesNo = Annotated[
    bool | None,
    BeforeValidator(_yes_no),
    WithJsonSchema({"type": "string", "enum": ["oui", "non"]}),
]


# --- Proposer une action ---------------------------------------------------------------------


class BudgetLineForm(Form):
    model_config = ConfigDict(title="Ligne de budget")
    year: int = Field(title="Année", description="Année du budget, ex. 2025.", ge=2000, le=2100)
    kind: Annotated[BudgetKind, choices(BudgetKind)] = Field(
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
    territory: OptionalText = _territory()
    number: OptionalText = optional(
        "N° de l'action",
        "Fiche existante (brouillon ou révision demandée) à proposer, ex. FA-09. Laisser vide"
        " pour créer une nouvelle fiche avec le numéro suivant.",
        examples=["FA-09"],
    )
    title: OptionalText = optional("Intitulé", "Obligatoire pour une nouvelle fiche.")
    description: OptionalText = optional("Description", "Objectifs, contenu.")
    axis: OptionalAxis = optional(
        "Axe",
        "competences, innovation, foncier ou transition_ecologique. Obligatoire pour une"
        " nouvelle fiche.",
    )
    pilot_email: OptionalText = optional(
        "Pilote (e-mail)", "Adresse e-mail d'une personne du territoire."
    )
    firm_commitment: OptionalYesNo = optional(
        "Engagement ferme", "Engagement ferme de réalisation : oui ou non (vide : inchangé)."
    )
    priority: OptionalPriority = optional("Priorité", "1 : haute, 2 : moyenne, 3 : basse.")
    start_date: OptionalDate = optional("Début prévu", "Date de début.")
    end_date: OptionalDate = optional("Fin prévue", "Date de fin.")
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
    at: OptionalDateTime = _at()


# --- COPIL -----------------------------------------------------------------------------------


class CopilScheduleForm(Form):
    """Planifier un COPIL : date, lieu, membres ; l'ordre du jour est construit pour vous."""

    model_config = ConfigDict(title="Planifier un COPIL")
    territory: OptionalText = _territory()
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
    outcome: Annotated[Outcome, choices(Outcome)] = Field(
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
    budget_year: OptionalInt = _budget_year()
    validated_budget: OptionalAmount = _validated_budget()
    recorded_by: str = _recorded_by()
    at: OptionalDateTime = _at()


_DECISIONS_TITLE = "Décisions"
_DECISIONS_HELP = "Une ligne par action à l'ordre du jour : choisissez la décision."


class CopilDecisionsInput(RunInput):
    """The form of a paused "Tenir un COPIL (saisie dans Prefect)" run."""

    model_config = ConfigDict(title="Décisions du COPIL", extra="forbid")
    decisions: list[DecisionForm] = Field(
        default_factory=list, title=_DECISIONS_TITLE, description=_DECISIONS_HELP
    )
    budget_year: OptionalInt = _budget_year()
    validated_budget: OptionalAmount = _validated_budget()
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
    territory: OptionalText = _territory()
    number: str = _number()
    funder: str = Field(
        title="Financeur", description="Nom ou sigle de l'organisation, ex. Région, État, ADEME."
    )
    year: OptionalInt = optional(
        "Année",
        "Année du financement. Vide : la ligne existante de ce financeur, sinon l'année de la"
        " décision.",
    )
    requested: OptionalAmount = optional("Montant demandé (€)", _UNCHANGED)
    granted: OptionalAmount = optional("Montant accordé (€)", _UNCHANGED)
    paid: OptionalAmount = optional("Montant versé (€)", _UNCHANGED)
    dossier_filed_on: OptionalDate = optional(
        "Dossier déposé le",
        "Date du dépôt du dossier chez le financeur : le rappel du dépôt s'arrête.",
    )
    decision_date: OptionalDate = optional(
        "Date de décision",
        "Date de la décision du financeur : le rappel de la décision s'arrête.",
    )
    convention_ref: OptionalText = optional("Référence de la convention", "ex. CONV-2024-017.")
    force_reason: OptionalText = optional(
        "Forcer « financée » (motif)",
        "Seulement si l'action doit passer à « financée » sans que les montants accordés"
        " couvrent son budget : indiquez pourquoi.",
    )
    recorded_by: str = _recorded_by()
    at: OptionalDateTime = _at()


# --- Avancement ------------------------------------------------------------------------------


class MilestoneDoneForm(Form):
    model_config = ConfigDict(title="Jalon franchi")
    title: str = Field(title="Jalon", description="Intitulé du jalon, comme sur la fiche.")
    done_on: OptionalDate = optional("Franchi le", "Vide : aujourd'hui.")


class IndicatorValueForm(Form):
    model_config = ConfigDict(title="Valeur d'indicateur")
    name: str = Field(title="Indicateur", description="Nom de l'indicateur, comme sur la fiche.")
    value: Quantity = Field(title="Valeur mesurée", description="ex. 42 ou 12,5.")
    measured_on: OptionalDate = optional("Mesurée le", "Vide : aujourd'hui.")


class ProgressForm(Form):
    """Suivre l'avancement : jalons franchis, valeurs des indicateurs, note de suivi."""

    model_config = ConfigDict(title="Suivre l'avancement d'une action")
    territory: OptionalText = _territory()
    number: str = _number()
    milestones_done: list[MilestoneDoneForm] = Field(
        default_factory=list, title="Jalons franchis", description="Jalons atteints."
    )
    indicator_values: list[IndicatorValueForm] = Field(
        default_factory=list, title="Indicateurs", description="Nouvelles valeurs mesurées."
    )
    note: str = Field("", title="Note de suivi", description="Où en est l'action ?")
    author_email: OptionalText = optional(
        "Auteur de la note (e-mail)", "Vide : le pilote de l'action."
    )
    on: OptionalDate = optional("Date du point", "Vide : aujourd'hui.")
    recorded_by: str = _recorded_by()
    at: OptionalDateTime = _at()


class StepForm(Form):
    """Démarrer ou terminer une action."""

    model_config = ConfigDict(title="Action à faire avancer")
    territory: OptionalText = _territory()
    number: str = _number()
    reason: str = Field("", title="Commentaire", description="Facultatif, inscrit à l'historique.")
    recorded_by: str = _recorded_by()
    at: OptionalDateTime = _at()


class AbandonForm(Form):
    """Abandonner une action : le motif est obligatoire."""

    model_config = ConfigDict(title="Abandonner une action")
    territory: OptionalText = _territory()
    number: str = _number()
    reason: str = Field(title="Motif", description="Pourquoi on abandonne (obligatoire).")
    recorded_by: str = _recorded_by()
    at: OptionalDateTime = _at()


def parameter(title: str, description: str) -> Any:
    """Metadata for a flow's parameter: `Annotated[CopilDecisionsForm, parameter(...)]`.

    Prefect titles a parameter with its Python name and drops an annotated description; both
    survive through `json_schema_extra`, so the form's heading is French too. (A dict: Prefect
    adds its own, and pydantic cannot compose a dict with a callable.) An optional parameter
    is annotated with an ``Optional…`` type above, or ``X | SkipJsonSchema[None]``."""
    return Field(json_schema_extra={"title": title, "description": description})
