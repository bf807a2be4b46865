"""The action sheet lifecycle: one table that the domain, flows, CLI, docs and tests all read.

Nothing here touches a database or Prefect: `check_transition` decides whether a move is legal
from plain facts (current state, target, guard inputs) and raises a French error if not.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from models.errors import TiflowError
from models.money import format_eur


class State(StrEnum):
    DRAFT = "draft"
    PROPOSED = "proposed"
    VALIDATED = "validated"
    REJECTED = "rejected"
    DEFERRED = "deferred"
    REVISION_REQUESTED = "revision_requested"
    FUNDED = "funded"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    ABANDONED = "abandoned"

    @property
    def label(self) -> str:
        return STATE_LABELS[self]

    @property
    def is_open(self) -> bool:
        return self not in CLOSED_STATES


STATE_LABELS: dict[State, str] = {
    State.DRAFT: "brouillon",
    State.PROPOSED: "proposée",
    State.VALIDATED: "validée",
    State.REJECTED: "rejetée",
    State.DEFERRED: "ajournée",
    State.REVISION_REQUESTED: "révision demandée",
    State.FUNDED: "financée",
    State.IN_PROGRESS: "en cours",
    State.COMPLETED: "terminée",
    State.ABANDONED: "abandonnée",
}

CLOSED_STATES = frozenset({State.REJECTED, State.COMPLETED, State.ABANDONED})
OPEN_STATES = frozenset(State) - CLOSED_STATES

# The named groups of states, one place for each (everything reads them from here):
# awaiting a COPIL decision (on the next agenda);
AWAITING_DECISION = (State.PROPOSED, State.DEFERRED)
# what a COPIL can decide on an action;
COPIL_OUTCOMES = (State.VALIDATED, State.REJECTED, State.DEFERRED, State.REVISION_REQUESTED)
# the action plan has committed to them (their budget counts in the year's commitments);
COMMITTED = (State.VALIDATED, State.FUNDED, State.IN_PROGRESS, State.COMPLETED)
# dropped out of the plan: no more funding, progress or reminders.
DROPPED_OUT = (State.REJECTED, State.ABANDONED)
# the sheet itself (fields, budget lines, milestones, indicators) is still being written:
# before its first proposal, or when a COPIL sent it back for revision.
EDITABLE = (State.DRAFT, State.REVISION_REQUESTED)

# The COPIL outcome words, as people write them (forms, decisions files, CLI): the labels of
# COPIL_OUTCOMES, and « non examinée » (left awaiting the next COPIL). One place for them.
NOT_EXAMINED = "non examinée"
OUTCOME_WORDS = (*(STATE_LABELS[s] for s in COPIL_OUTCOMES), NOT_EXAMINED)


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return " ".join(plain.replace("_", " ").replace("-", " ").split())


_OUTCOMES_BY_WORD: dict[str, str] = (
    {_plain(w): w for w in OUTCOME_WORDS}
    | {_plain(s.value): STATE_LABELS[s] for s in COPIL_OUTCOMES}
    | {"not examined": NOT_EXAMINED}
)


def outcome_word(text: str) -> str | None:
    """The outcome word for what was typed (accents, case, `_`/`-` free; the lifecycle's English
    names too: ``validated``), or None if it is no COPIL outcome."""
    return _OUTCOMES_BY_WORD.get(_plain(text))


def outcome_state(word: str) -> State | None:
    """The state an outcome word leads to (None: not examined)."""
    found = outcome_word(word)
    if found is None:
        raise ValueError(f"« {word} » n'est pas une décision de COPIL")
    return None if found == NOT_EXAMINED else next(s for s in State if STATE_LABELS[s] == found)


class Guard(StrEnum):
    """What must hold, beyond the table, for a transition to be allowed."""

    NONE = "none"
    COPIL_DECISION = "copil_decision"  # decided by a COPIL meeting of the action's territory
    FUNDING_COVERS_BUDGET = "funding_covers_budget"  # or an override with a reason
    REASON_REQUIRED = "reason_required"


@dataclass(frozen=True)
class Transition:
    source: State
    target: State
    guard: Guard
    label: str  # French verb phrase shown in the CLI, forms and README diagram


_S = State
_COPIL_OUTCOMES = (_S.VALIDATED, _S.REJECTED, _S.DEFERRED, _S.REVISION_REQUESTED)
_COPIL_LABELS = {
    _S.VALIDATED: "validée en COPIL",
    _S.REJECTED: "rejetée en COPIL",
    _S.DEFERRED: "ajournée en COPIL",
    _S.REVISION_REQUESTED: "révision demandée en COPIL",
}

TRANSITIONS: tuple[Transition, ...] = (
    Transition(_S.DRAFT, _S.PROPOSED, Guard.NONE, "proposer au COPIL"),
    Transition(_S.REVISION_REQUESTED, _S.PROPOSED, Guard.NONE, "proposer à nouveau"),
    # A deferred action stays on the agenda of the next COPIL, which decides again.
    *(
        Transition(source, target, Guard.COPIL_DECISION, _COPIL_LABELS[target])
        for source in (_S.PROPOSED, _S.DEFERRED)
        for target in _COPIL_OUTCOMES
        if not (source is _S.DEFERRED and target is _S.DEFERRED)
    ),
    Transition(_S.VALIDATED, _S.FUNDED, Guard.FUNDING_COVERS_BUDGET, "financement acquis"),
    Transition(_S.FUNDED, _S.IN_PROGRESS, Guard.NONE, "démarrer"),
    Transition(_S.IN_PROGRESS, _S.COMPLETED, Guard.NONE, "terminer"),
    *(
        Transition(source, _S.ABANDONED, Guard.REASON_REQUIRED, "abandonner")
        for source in State
        if source.is_open
    ),
)

_BY_PAIR: dict[tuple[State, State], Transition] = {(t.source, t.target): t for t in TRANSITIONS}


def allowed_targets(state: State) -> list[State]:
    """Next states in table order (stable for messages and forms)."""
    return [t.target for t in TRANSITIONS if t.source is state]


def find_transition(source: State, target: State) -> Transition | None:
    return _BY_PAIR.get((source, target))


class LifecycleError(TiflowError, ValueError):
    """A transition refused by the lifecycle; the message is French and meant for users."""


class IllegalTransition(LifecycleError):
    def __init__(self, action: str, state: State, target: State) -> None:
        self.action, self.state, self.target = action, state, target
        self.allowed = allowed_targets(state)
        nexts = ", ".join(f"« {s.label} »" for s in self.allowed) or "aucun (état final)"
        super().__init__(
            f"Transition impossible pour l'action {action} : elle est à l'état « {state.label} »"
            f" et ne peut pas passer à « {target.label} ». États suivants possibles : {nexts}."
        )


class GuardFailed(LifecycleError):
    pass


@dataclass(frozen=True)
class GuardFacts:
    """What the guards need to know; the service layer gathers it from the database."""

    copil_id: int | None = None
    copil_territory_matches: bool = True
    budget_total: Decimal = Decimal("0.00")
    granted_total: Decimal = Decimal("0.00")
    override: bool = False
    reason: str | None = None


def check_transition(action: str, state: State, target: State, facts: GuardFacts) -> Transition:
    """Return the transition if `state -> target` is allowed with these facts, else raise."""
    transition = find_transition(state, target)
    if transition is None:
        raise IllegalTransition(action, state, target)
    reason = (facts.reason or "").strip()
    if transition.guard is Guard.COPIL_DECISION:
        if facts.copil_id is None:
            raise GuardFailed(
                f"L'action {action} ne peut être « {target.label} » que par une décision de COPIL :"
                " indiquez la réunion du COPIL."
            )
        if not facts.copil_territory_matches:
            raise GuardFailed(
                f"Le COPIL n° {facts.copil_id} n'appartient pas au territoire de l'action {action}."
            )
    elif transition.guard is Guard.FUNDING_COVERS_BUDGET:
        missing = facts.budget_total - facts.granted_total
        if missing > 0 and not facts.override:
            raise GuardFailed(
                f"L'action {action} ne peut pas passer à « financée » : il manque"
                f" {format_eur(missing)} de financements accordés"
                f" (budget {format_eur(facts.budget_total)},"
                f" accordé {format_eur(facts.granted_total)})."
                " Complétez les financements ou forcez le passage avec un motif."
            )
        if missing > 0 and not reason:
            raise GuardFailed(
                f"Forcer le passage de l'action {action} à « financée » exige un motif."
            )
    elif transition.guard is Guard.REASON_REQUIRED and not reason:
        raise GuardFailed(f"Passer l'action {action} à « {target.label} » exige un motif.")
    return transition


def mermaid() -> str:
    """The lifecycle as a Mermaid state diagram (pasted into the README by a test)."""
    lines = ["stateDiagram-v2", "    [*] --> draft"]
    abandonable = [t.source for t in TRANSITIONS if t.target is State.ABANDONED]
    for t in TRANSITIONS:
        if t.target is not State.ABANDONED:
            lines.append(f"    {t.source.value} --> {t.target.value}: {t.label}")
    lines.append(
        "    note right of abandoned: abandon possible depuis "
        + ", ".join(s.value for s in abandonable)
    )
    for s in sorted(CLOSED_STATES):
        lines.append(f"    {s.value} --> [*]")
    return "\n".join(lines)
