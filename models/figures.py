"""The budget's figures, each defined once, with the French label every report uses.

A coordinator signs figures the Région or the State will check against their own books, so
each word means one thing wherever it is shown (digest, budget e-mail, workbook, CLI):

* **prévu** — the budget lines of the year of the actions still in the plan;
* **validé en COPIL** — the amount the COPIL that adopted the year's budget recorded;
* **demandé**, **accordé**, **versé** — the funding rows *of the year* (one per funder and
  year) of the actions still in the plan;
* **reste à financer** — per action and year, what is planned and not granted (never below
  zero: a grant above the plan is *accordé au-delà du prévu*, flagged, not netted against
  another action's shortfall); a total is the sum of its actions' years;
* **reste à verser** — granted and not paid yet.

Actions rejected or abandoned are out of the plan: their figures are shown apart
(:data:`OUT_OF_PLAN_LABEL`), never mixed into *prévu*.

Plain functions of plain facts (states, Decimal amounts): no database, no framework.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from models.lifecycle import DROPPED_OUT, State
from models.money import ZERO


class Figure(StrEnum):
    PLANNED = "planned"
    VALIDATED = "validated"
    REQUESTED = "requested"
    GRANTED = "granted"
    PAID = "paid"
    LEFT_TO_FUND = "left_to_fund"
    LEFT_TO_PAY = "left_to_pay"
    OVER_GRANTED = "over_granted"

    @property
    def label(self) -> str:
        return LABELS[self]


LABELS: dict[Figure, str] = {
    Figure.PLANNED: "Prévu",
    Figure.VALIDATED: "Validé en COPIL",
    Figure.REQUESTED: "Demandé",
    Figure.GRANTED: "Accordé",
    Figure.PAID: "Versé",
    Figure.LEFT_TO_FUND: "Reste à financer",
    Figure.LEFT_TO_PAY: "Reste à verser",
    Figure.OVER_GRANTED: "Accordé au-delà du prévu",
}

OUT_OF_PLAN = frozenset(DROPPED_OUT)  # the lifecycle's own list: one definition
OUT_OF_PLAN_LABEL = "Actions rejetées ou abandonnées (hors plan)"


def in_plan(state: State) -> bool:
    """Does an action in this state count in the plan's figures?"""
    return State(state) not in OUT_OF_PLAN


def left_to_fund(planned: Decimal, granted: Decimal) -> Decimal:
    """*Reste à financer* of one action and year."""
    return max(planned - granted, ZERO)


def over_granted(planned: Decimal, granted: Decimal) -> Decimal:
    """What one action and year is granted above its plan (0 if not): flagged in reports."""
    return max(granted - planned, ZERO)


def left_to_pay(granted: Decimal, paid: Decimal) -> Decimal:
    """*Reste à verser*: granted, not paid yet."""
    return max(granted - paid, ZERO)


def gap_to_validated(planned: Decimal, validated: Decimal) -> Decimal:
    """Consolidated *prévu* minus the budget the COPIL validated (positive: above it)."""
    return planned - validated
