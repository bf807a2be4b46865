"""The outbox's kinds of message and their French names: the one place the CLI listings, the
run summaries and the demo read them from (pure data)."""

from __future__ import annotations

from dataclasses import dataclass

from notifications.fr import plural


@dataclass(frozen=True)
class KindNames:
    heading: str  # a table row: « Rappels aux pilotes »
    one: str  # counted: « 1 rappel aux pilotes »
    many: str  # « 3 rappels aux pilotes »
    short: str  # a listing's column: « rappel »


# In the order listings show them.
KINDS: dict[str, KindNames] = {
    "reminder": KindNames(
        "Rappels aux pilotes", "rappel aux pilotes", "rappels aux pilotes", "rappel"
    ),
    "escalation": KindNames(
        "Alertes au chargé de mission",
        "alerte au chargé de mission",
        "alertes au chargé de mission",
        "alerte",
    ),
    "digest": KindNames(
        "Synthèses avant COPIL", "synthèse COPIL", "synthèses COPIL", "synthèse COPIL"
    ),
    "decision-record": KindNames(
        "Relevés de décisions",
        "relevé de décisions",
        "relevés de décisions",
        "relevé de décisions",
    ),
    "minutes-reminder": KindNames(
        "Rappels du compte rendu",
        "rappel du compte rendu",
        "rappels du compte rendu",
        "rappel du compte rendu",
    ),
    "budget": KindNames("Budget consolidé", "envoi du budget", "envois du budget", "budget"),
    "next-steps": KindNames(
        "Suites d'une validation",
        "avis de suite à la validation",
        "avis de suite à la validation",
        "suite d'une validation",
    ),
    "revision": KindNames(
        "Révisions demandées", "demande de révision", "demandes de révision", "révision demandée"
    ),
    "rejection": KindNames("Rejets en COPIL", "avis de rejet", "avis de rejet", "rejet en COPIL"),
    "deferral": KindNames(
        "Ajournements", "avis d'ajournement", "avis d'ajournement", "ajournement"
    ),
    "kickoff": KindNames(
        "Avis de lancement", "avis de lancement", "avis de lancement", "avis de lancement"
    ),
    "notice": KindNames("Avis", "avis", "avis", "avis"),
    "sign_in": KindNames(
        "Liens de connexion", "lien de connexion", "liens de connexion", "lien de connexion"
    ),
}


def _names(kind: str) -> KindNames:
    return KINDS.get(kind) or KindNames(kind, kind, kind, kind)


def kind_heading(kind: str) -> str:
    """« Rappels aux pilotes »; an unknown kind is shown by its name."""
    return _names(kind).heading


def kind_count(kind: str, n: int) -> str:
    """« 1 rappel aux pilotes », « 3 rappels aux pilotes »."""
    names = _names(kind)
    return plural(n, names.one, names.many)


def kind_short(kind: str) -> str:
    """« rappel », « synthèse COPIL »: a listing's column."""
    return _names(kind).short


def in_order(kinds: set[str] | list[str]) -> list[str]:
    """Known kinds in listing order, then the others by name."""
    given = set(kinds)
    return [k for k in KINDS if k in given] + sorted(given - set(KINDS))
