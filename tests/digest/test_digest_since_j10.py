"""The J-3 digest says what changed since the J-10 one went out — notes, decisions and state
changes, progress, funding figures — and is not sent when nothing did; SQLite and PostgreSQL,
counted at the real SMTP sink."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import select

from flows.digest import unchanged_line
from flows.usecases.digest import send_digests
from models.lifecycle import State
from models.tables import FollowUpNote, Funding
from models.transitions import transition_action
from models.uow import UnitOfWork
from notifications.transports import Deliverer
from tests.digest.conftest import Scenario
from tests.smtp_sink import SmtpSink, body_of

PARIS = ZoneInfo("Europe/Paris")
J10, J3 = date(2024, 6, 10), date(2024, 6, 17)
MEMBER = "marc.aubert@prefecture.example"


def morning(day: date) -> datetime:
    return datetime.combine(day, time(7, 30), tzinfo=PARIS).astimezone(UTC)


def deliverer_for(sink: SmtpSink) -> Deliverer:
    return Deliverer(f"copil,pilots,coordinator={sink.url('tiflow@grand-est-touraine.example')}")


def plain(text: str) -> str:
    return text.replace("\u00a0", " ").replace("\u202f", " ")


def test_nothing_changed_since_j10_no_j3_and_the_log_says_why(
    engine: Engine, scenario: Scenario, smtp_sink: SmtpSink
) -> None:
    with deliverer_for(smtp_sink) as deliverer:
        send_digests(engine, deliverer, now=morning(J10))
        digests, result, _ = send_digests(engine, deliverer, now=morning(J3))
    assert len(smtp_sink.messages_to(MEMBER)) == 1  # the J-10 only
    (digest,) = digests
    assert digest.unchanged and result.created == []
    assert plain(unchanged_line(digest)) == (
        "- Grand Est Touraine : COPIL du jeudi 20 juin 2024 à 10 h : synthèse J-3 non envoyée,"
        " rien n'a changé depuis la synthèse J-10 du lundi 10 juin 2024"
    )


def test_j3_lists_the_notes_decisions_and_figures_new_since_j10(
    engine: Engine, scenario: Scenario, smtp_sink: SmtpSink, example_plan: str
) -> None:
    with deliverer_for(smtp_sink) as deliverer:
        send_digests(engine, deliverer, now=morning(J10))
        with UnitOfWork(engine) as uow:
            fa01 = uow.repo.action(example_plan, "FA-01")
            fa05 = uow.repo.action(example_plan, "FA-05")
            uow.session.add(
                FollowUpNote(
                    action_id=fa01.id,
                    author_id=fa01.pilot_id,
                    written_on=date(2024, 6, 12),
                    text="Bail signé pour le bâtiment des démonstrateurs.",
                )
            )
            transition_action(
                uow, fa05, State.PROPOSED, actor="Claire Moreau", at=morning(date(2024, 6, 13))
            )
            funding = uow.session.exec(select(Funding).where(Funding.action_id == fa01.id)).first()
            assert funding is not None
            funding.paid = Decimal("75000")
            funding.updated_at = morning(date(2024, 6, 14))
            uow.commit()
        send_digests(engine, deliverer, now=morning(J3))
    j10, j3 = smtp_sink.messages_to(MEMBER)
    assert "Nouveau depuis la synthèse" not in body_of(j10)
    new = plain(body_of(j3)).split("Nouveau depuis la synthèse J-10 du lundi 10 juin 2024 :")[1]
    new = new.split("1. Ordre du jour")[0]
    lines = [line.strip() for line in new.strip().splitlines()]
    assert lines[0].startswith("- FA-01 « ") and lines[0].endswith(
        "», note du mercredi 12 juin 2024 : Bail signé pour le bâtiment des démonstrateurs."
    )
    assert re.fullmatch(
        r"- FA-01 « .+ », financement .+ \(20\d\d\) : demandé .+ €, accordé .+ €,"
        r" versé 75 000,00 €",
        lines[1],
    ), lines[1]
    assert lines[2].startswith("- FA-05 « ") and lines[2].endswith(" : brouillon → proposée")
    assert len(lines) == 3
    assert "Nouveau depuis" in body_of(j3, "html")


def test_a_j3_caught_up_without_any_j10_is_a_full_digest(
    engine: Engine, scenario: Scenario, smtp_sink: SmtpSink
) -> None:
    with deliverer_for(smtp_sink) as deliverer:
        (digest,), _, _ = send_digests(engine, deliverer, now=morning(J3))
    assert digest.earlier is None and not digest.unchanged
    (mail,) = smtp_sink.messages_to(MEMBER)
    assert "Nouveau depuis" not in body_of(mail) and "1. Ordre du jour" in body_of(mail)
