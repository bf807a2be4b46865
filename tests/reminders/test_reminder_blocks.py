"""Less noise: in a pilot's reminder each action is one block (its title once, then its
deadlines), blocks in the order of the actions. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

from sqlalchemy.engine import Engine

from tests.reminders.conftest import SmallPlan, add_milestone, inbox, run_day, smtp_deliverer
from tests.smtp_sink import SmtpSink, body_of


def test_one_block_per_action_title_once_then_its_deadlines(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    add_milestone(engine, plan.fa03, "Programme d'animation", date(2025, 6, 9))
    add_milestone(engine, plan.fa01, "Installation des démonstrateurs", date(2025, 6, 9))
    add_milestone(engine, plan.fa01, "Choix du site", date(2025, 6, 9))
    with smtp_deliverer(smtp_sink) as deliverer:
        run_day(engine, deliverer, date(2025, 6, 2))  # J-7 for all three
    (mail,) = inbox(smtp_sink, "helene.garnier@aicr.example")
    text = body_of(mail)
    assert text.count("FA-01 «\u00a0Usine-témoin de l'industrie du futur\u00a0»") == 1
    block = text.split("FA-01 «\u00a0Usine-témoin de l'industrie du futur\u00a0»")[1].split(
        "FA-03"
    )[0]
    assert "Jalon «\u00a0Installation des démonstrateurs\u00a0»" in block
    assert "Jalon «\u00a0Choix du site\u00a0»" in block
    assert text.index("FA-01 «") < text.index("FA-03 «")
    html = body_of(mail, "html")
    assert html.count("Usine-témoin") == 1
