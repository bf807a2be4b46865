"""Closed vocabularies of the domain, each with the French label users read."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Axis(StrEnum):
    """The four axes of phase 2 (since 2023)."""

    COMPETENCES = "competences"
    INNOVATION = "innovation"
    FONCIER = "foncier"
    TRANSITION_ECOLOGIQUE = "transition_ecologique"

    @property
    def label(self) -> str:
        return {
            Axis.COMPETENCES: "Compétences",
            Axis.INNOVATION: "Innovation",
            Axis.FONCIER: "Foncier",
            Axis.TRANSITION_ECOLOGIQUE: "Transition écologique",
        }[self]


class OrganisationKind(StrEnum):
    COMMUNAUTE_DE_COMMUNES = "communaute_de_communes"
    CLUB_ENTREPRISES = "club_entreprises"
    ETAT = "etat"
    REGION = "region"
    AGENCE_NATIONALE = "agence_nationale"
    EMPLOI_FORMATION = "emploi_formation"
    ENTREPRISE = "entreprise"
    AUTRE = "autre"

    @property
    def label(self) -> str:
        return {
            OrganisationKind.COMMUNAUTE_DE_COMMUNES: "Communauté de communes",
            OrganisationKind.CLUB_ENTREPRISES: "Club d'entreprises",
            OrganisationKind.ETAT: "État",
            OrganisationKind.REGION: "Région",
            OrganisationKind.AGENCE_NATIONALE: "Agence nationale",
            OrganisationKind.EMPLOI_FORMATION: "Emploi et formation",
            OrganisationKind.ENTREPRISE: "Entreprise",
            OrganisationKind.AUTRE: "Autre partenaire",
        }[self]


class Role(StrEnum):
    COORDINATOR = "coordinator"
    PILOT = "pilot"
    COPIL_MEMBER = "copil_member"
    # Reads every territory's plan in the web application (ANCT's national team); writes nothing.
    NATIONAL_READER = "national_reader"

    @property
    def label(self) -> str:
        return {
            Role.COORDINATOR: "chargé de mission",
            Role.PILOT: "pilote d'action",
            Role.COPIL_MEMBER: "membre du COPIL",
            Role.NATIONAL_READER: "lecteur national",
        }[self]


class Priority(IntEnum):
    HIGH = 1
    MEDIUM = 2
    LOW = 3

    @property
    def label(self) -> str:
        return {Priority.HIGH: "haute", Priority.MEDIUM: "moyenne", Priority.LOW: "basse"}[self]


class BudgetKind(StrEnum):
    INVESTISSEMENT = "investissement"
    FONCTIONNEMENT = "fonctionnement"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class CopilStatus(StrEnum):
    SCHEDULED = "scheduled"
    HELD = "held"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return {
            CopilStatus.SCHEDULED: "prévu",
            CopilStatus.HELD: "tenu",
            CopilStatus.CANCELLED: "annulé",
        }[self]
