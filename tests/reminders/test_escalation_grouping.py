"""The coordinator's alert groups late deadlines per pilot, then per action (title once, then
its deadlines); SQLite and PostgreSQL, read at the SMTP sink."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.engine import Engine

from tests.reminders.conftest import SmallPlan, add_milestone, inbox, run_day, smtp_deliverer
from tests.smtp_sink import SmtpSink, body_of

CLAIRE = "claire.moreau@grand-est-touraine.example"
DUE = date(2025, 6, 2)


def test_the_escalation_names_each_pilot_once_then_each_action_once(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    add_milestone(engine, plan.fa01, "Choix du site", DUE)
    add_milestone(engine, plan.fa01, "Installation des démonstrateurs", DUE)
    add_milestone(engine, plan.fa03, "Programme d'animation", DUE)
    add_milestone(engine, plan.fa02, "Cahier des charges", DUE)
    with smtp_deliverer(smtp_sink) as deliverer:
        run_day(engine, deliverer, DUE + timedelta(days=14))
    (alert,) = inbox(smtp_sink, CLAIRE)
    text = body_of(alert)
    assert alert["Subject"] == "Alerte plan d'actions\u00a0: 4 échéances en retard"
    assert (
        text.count("Pilote\u00a0: Hélène Garnier") == 1
        and text.count("Pilote\u00a0: Karim Haddad") == 1
    )
    assert text.count("FA-01 «\u00a0Usine-témoin de l'industrie du futur\u00a0»") == 1
    helene = text.split("Pilote\u00a0: Hélène Garnier")[1].split("Pilote\u00a0: Karim Haddad")[0]
    fa01 = helene.split("FA-01")[1].split("FA-03")[0]
    assert "Choix du site" in fa01 and "Installation des démonstrateurs" in fa01
    assert "Programme d'animation" in helene.split("FA-03")[1]
    assert "Cahier des charges" in text.split("Pilote\u00a0: Karim Haddad")[1]
    html = body_of(alert, "html")
    assert html.count("Hélène Garnier") >= 1 and html.count("<strong>FA-01</strong>") == 1
