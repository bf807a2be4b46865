"""Small builders for budget tests: territories, funders, actions with budget lines and funding.

Amounts are strings turned into Decimals, so a test can use awkward cents (0.10 + 0.20)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from models.lifecycle import State
from models.tables import ActionSheet, BudgetLine, Funding, Milestone, Organisation, Territory
from models.uow import UnitOfWork
from models.vocabulary import Axis, BudgetKind, OrganisationKind

INV, FON = BudgetKind.INVESTISSEMENT, BudgetKind.FONCTIONNEMENT


def add_territory(u: UnitOfWork, code: str, name: str) -> int:
    territory = Territory(code=code, name=name, department="Indre-et-Loire")
    u.session.add(territory)
    u.flush()
    assert territory.id is not None
    return territory.id


def add_funder(
    u: UnitOfWork, territory_id: int, name: str, kind: OrganisationKind = OrganisationKind.ETAT
) -> int:
    org = Organisation(territory_id=territory_id, name=name, kind=kind, is_funder=True)
    u.session.add(org)
    u.flush()
    assert org.id is not None
    return org.id


def add_action(
    u: UnitOfWork,
    territory_id: int,
    number: str,
    *,
    axis: Axis = Axis.COMPETENCES,
    firm: bool = False,
    state: State = State.DRAFT,
    end: date | None = None,
    budget: Mapping[tuple[int, BudgetKind], str] | None = None,
    funding: Mapping[tuple[int, int], tuple[str, str, str]] | None = None,
    milestones: Mapping[str, tuple[date, date | None]] | None = None,
) -> int:
    """`budget`: (year, kind) -> amount; `funding`: (funder id, year) -> (requested, granted,
    paid); `milestones`: title -> (due date, done on)."""
    action = ActionSheet(
        territory_id=territory_id,
        number=number,
        title=f"Action {number}",
        axis=axis,
        firm_commitment=firm,
        state=state,
        start_date=date(2024, 1, 1),
        end_date=end,
    )
    u.session.add(action)
    u.flush()
    assert action.id is not None
    for (year, kind), amount in (budget or {}).items():
        u.session.add(BudgetLine(action_id=action.id, year=year, kind=kind, amount=Decimal(amount)))
    for (funder_id, year), (requested, granted, paid) in (funding or {}).items():
        u.session.add(
            Funding(
                action_id=action.id,
                funder_id=funder_id,
                year=year,
                requested=Decimal(requested),
                granted=Decimal(granted),
                paid=Decimal(paid),
            )
        )
    for title, (due, done) in (milestones or {}).items():
        u.session.add(Milestone(action_id=action.id, title=title, due_date=due, done_on=done))
    u.flush()
    return action.id
