"""The digest's budget figures are the consolidation's (one scope, one set of labels), and it
never says budgets are covered when nothing is committed. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy.engine import Engine
from sqlmodel import select

from flows.usecases.budget.consolidation import consolidate
from flows.usecases.digest import DigestSettings, compute_digests, render_digest
from models.lifecycle import State
from models.money import format_eur
from models.tables import ActionSheet, CopilDecision, FollowUpNote, Indicator
from models.uow import UnitOfWork
from tests.digest.conftest import Scenario

J10 = date(2024, 6, 10)


def _text(engine: Engine) -> str:
    with UnitOfWork(engine) as uow:
        (digest,) = compute_digests(uow.session, J10)
    return render_digest(digest, DigestSettings()).text


def test_digest_year_figures_are_the_budget_consolidation_s(
    engine: Engine, scenario: Scenario, example_plan: str
) -> None:
    year = _text(engine).split("5. Budget 2024 à ce jour")[1]
    with UnitOfWork(engine) as uow:
        c = consolidate(uow, 2024, example_plan, as_of=J10)
    total = c.total()
    for label, amount in (
        ("Prévu (actions du plan)", total.planned),
        ("Demandé", total.requested),
        ("Accordé", total.granted),
        ("Versé", total.paid),
        ("Reste à financer", total.left_to_fund),
        ("Reste à verser", total.left_to_pay),
    ):
        assert f"  {label}\u00a0: {format_eur(amount)}\n" in year, label


def test_no_covered_budgets_claim_when_nothing_is_committed(
    engine: Engine, scenario: Scenario, example_plan: str
) -> None:
    with UnitOfWork(engine) as uow:
        for action in uow.session.exec(select(ActionSheet)).all():
            if action.state not in (State.PROPOSED, State.DEFERRED, State.DRAFT):
                action.state = State.PROPOSED
                uow.session.add(action)
        uow.commit()
    missing = _text(engine).split("4. Financements")[1].split("5. Budget")[0]
    assert "les budgets des actions engagées sont couverts" not in missing
    assert "Aucune action n'est encore engagée." in missing


def test_digest_carries_the_pilots_words_and_recalls_the_copil_conditions_it_names(
    engine: Engine, scenario: Scenario, example_plan: str
) -> None:
    with UnitOfWork(engine) as uow:
        fa01 = uow.repo.action(example_plan, "FA-01")
        uow.session.add(
            CopilDecision(
                copil_id=scenario.previous,
                action_id=fa01.id,  # type: ignore[arg-type]
                outcome=State.VALIDATED,
                conditions="Bilan d'étape au COPIL de juin",
            )
        )
        uow.session.add(
            FollowUpNote(
                action_id=fa01.id,  # type: ignore[arg-type]
                written_on=date(2024, 5, 30),
                text="Bail signé pour le bâtiment de Château-Renault.",
            )
        )
        indicator = uow.session.exec(select(Indicator).where(Indicator.action_id == fa01.id)).one()
        indicator.actual = Decimal("12")
        uow.session.add(indicator)
        uow.commit()
    text = _text(engine)
    assert (
        "À examiner à ce COPIL\u00a0: FA-01 «\u00a0Usine-témoin"
        " de l'industrie du futur\u00a0»\u00a0:"
        " «\u00a0Bilan d'étape au COPIL de juin\u00a0»" in text
    )
    words = text.split("Ce qu'écrivent les pilotes\u00a0:")[1].split("3. Actions")[0]
    assert (
        "Note du jeudi 30 mai 2024\u00a0: Bail signé pour le bâtiment de Château-Renault." in words
    )
    assert (
        "Indicateur\u00a0: Entreprises accueillies\u00a0:"
        " 12 pour un objectif de 60 entreprises" in words
    )
