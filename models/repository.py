"""Reads the flows need, in one place; lookups raise NotFound with a French message."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models.errors import NotFound
from models.money import ZERO
from models.tables import (
    ActionSheet,
    BudgetLine,
    CopilMeeting,
    Funding,
    Organisation,
    Person,
    PersonRole,
    Territory,
    TransitionRecord,
)
from models.vocabulary import Role


class Repository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def territory(self, code: str) -> Territory:
        found = self.session.exec(select(Territory).where(Territory.code == code)).first()
        if found is None:
            raise NotFound(f"Territoire inconnu : « {code} ».")
        return found

    def territories(self) -> Sequence[Territory]:
        return self.session.exec(select(Territory).order_by(Territory.code)).all()

    def action(self, territory_code: str, number: str) -> ActionSheet:
        territory = self.territory(territory_code)
        found = self.session.exec(
            select(ActionSheet).where(
                ActionSheet.territory_id == territory.id, ActionSheet.number == number
            )
        ).first()
        if found is None:
            raise NotFound(f"Action inconnue : {number} (territoire « {territory_code} »).")
        return found

    def actions(self, territory_id: int) -> Sequence[ActionSheet]:
        return self.session.exec(
            select(ActionSheet)
            .where(ActionSheet.territory_id == territory_id)
            .order_by(ActionSheet.number)
        ).all()

    def copil(self, copil_id: int) -> CopilMeeting:
        found = self.session.get(CopilMeeting, copil_id)
        if found is None:
            raise NotFound(f"Réunion de COPIL inconnue : n° {copil_id}.")
        return found

    def person(self, person_id: int | None) -> Person | None:
        return None if person_id is None else self.session.get(Person, person_id)

    def person_by_email(self, territory_id: int, email: str) -> Person | None:
        return self.session.exec(
            select(Person).where(
                Person.territory_id == territory_id, Person.email == email.strip().lower()
            )
        ).first()

    def people(self, territory_id: int) -> Sequence[Person]:
        """Everyone of the territory, by name."""
        return self.session.exec(
            select(Person)
            .where(Person.territory_id == territory_id)
            .order_by(col(Person.full_name))
        ).all()

    def people_with_role(self, territory_id: int, role: Role) -> Sequence[Person]:
        return self.session.exec(
            select(Person)
            .join(PersonRole, col(PersonRole.person_id) == col(Person.id))
            .where(Person.territory_id == territory_id, PersonRole.role == role)
            .order_by(Person.full_name)
        ).all()

    def organisation(self, territory_id: int, name: str) -> Organisation | None:
        return self.session.exec(
            select(Organisation).where(
                Organisation.territory_id == territory_id,
                (Organisation.name == name) | (Organisation.short_name == name),
            )
        ).first()

    # SUM keeps the Money column type, so the sums come back as exact Decimals.
    def budget_total(self, action_id: int) -> Decimal:
        total = self.session.exec(
            select(sa.func.sum(BudgetLine.amount)).where(BudgetLine.action_id == action_id)
        ).one()
        return total or ZERO

    def granted_total(self, action_id: int) -> Decimal:
        total = self.session.exec(
            select(sa.func.sum(Funding.granted)).where(Funding.action_id == action_id)
        ).one()
        return total or ZERO

    def history(self, action_id: int) -> Sequence[TransitionRecord]:
        return self.session.exec(
            select(TransitionRecord)
            .where(TransitionRecord.action_id == action_id)
            .order_by(col(TransitionRecord.id))
        ).all()
