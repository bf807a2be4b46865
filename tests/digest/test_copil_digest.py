"""The digest before a COPIL: content, .ics invitation, Excel CSV, once per offset, never for
a meeting that moved; on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import icalendar
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import select

from flows.usecases.digest import (
    Digest,
    DigestSettings,
    agenda_csv,
    compute_digests,
    invitation,
    render_digest,
    send_digests,
)
from models.lifecycle import State
from models.money import format_eur
from models.outbox import OutboxMessage
from models.tables import ActionSheet, CopilMeeting, CopilMember, FollowUpNote, Territory
from models.uow import UnitOfWork
from models.vocabulary import Axis
from notifications.transports import Deliverer
from tests.digest.conftest import Scenario
from tests.smtp_sink import SmtpSink, body_of

PARIS = ZoneInfo("Europe/Paris")
J10 = date(2024, 6, 10)


def digests_on(engine: Engine, day: date, settings: DigestSettings | None = None) -> list[Digest]:
    with UnitOfWork(engine) as uow:
        return compute_digests(uow.session, day, settings)


def morning(day: date) -> datetime:
    return datetime.combine(day, time(8, 0), tzinfo=PARIS).astimezone(UTC)


def deliverer_for(sink: SmtpSink) -> Deliverer:
    return Deliverer(f"copil,pilots,coordinator={sink.url('tiflow@grand-est-touraine.example')}")


def test_digest_gives_agenda_changes_risks_missing_funding_and_year_budget(
    engine: Engine, scenario: Scenario
) -> None:
    (digest,) = digests_on(engine, J10)
    assert digest.label == "J-10"
    assert sorted(p.email for p in digest.members) == sorted(scenario.members)
    message = render_digest(digest, DigestSettings())
    assert message.subject == (
        "COPIL du jeudi 20 juin 2024 à 10 h : ordre du jour et synthèse (Grand Est Touraine)"
    )
    # Amounts are written 150 000,00 € with a narrow no-break space and a no-break space;
    # read them with plain spaces below.
    assert f"budget demandé\u00a0: {format_eur(Decimal('150000'))}\u202f;" in message.text
    assert "150\u202f000,00\u00a0€" in message.text
    text = message.text.replace("\u202f", " ").replace("\u00a0", " ")
    assert "se réunit le jeudi 20 juin 2024 à 10 h, Salle du conseil, Château-Renault" in text
    assert "(dans 10 jours)" in text
    # 1. Agenda: actions awaiting a decision, with the budget they ask.
    assert "FA-03 « Lieu d'accueil de start-up en intelligence artificielle et big data »" in text
    assert "(Innovation, proposée)" in text and "(Foncier, ajournée)" in text
    assert "budget demandé : 150 000,00 € ; financements demandés : 150 000,00 €" in text
    assert "Total des budgets demandés : 270 000,00 €" in text
    assert "FA-05" not in text.split("2. Depuis")[0]  # still a draft: not on the agenda
    # 2. Since the previous COPIL: transitions after it, funding decided since, budget delta.
    since = text.split("2. Depuis")[1].split("3. Actions")[0]
    assert "le COPIL du jeudi 25 janvier 2024" in since
    assert (
        "lundi 5 février 2024 : FA-02 « Industry-lab au CFAI d'Amboise », proposée → validée"
        in since
    )
    assert (
        "FA-04 « Couverture mobile 4G puis 5G de tout le territoire », proposée → ajournée" in since
    )
    assert "FA-01 « Usine-témoin de l'industrie du futur », brouillon → proposée" not in since
    assert "250 000,00 € (Région, vendredi 15 mars 2024)" in since
    assert (
        "Budget 2024 : 500 000,00 € validés au COPIL précédent, 595 000,00 € aujourd'hui"
        " (écart : +95 000,00 €)" in since
    )
    # 3. Late or at risk.
    risks = text.split("3. Actions")[1].split("4. Financements")[0]
    assert "En retard : FA-05 « Relations entreprises – Éducation nationale »" in risks
    assert "jalon « Semaine de l'industrie : visites d'usines » : lundi 25 mars 2024" in risks
    assert (
        "À risque : FA-02 « Industry-lab au CFAI d'Amboise », démarrage prévu : vendredi"
        " 1er mars 2024 (il y a 101 jours) ; financement incomplet : il manque 205 000,00 €"
    ) in risks
    # 4. Missing funding of committed actions.
    missing = text.split("4. Financements")[1].split("5. Budget")[0]
    assert (
        "FA-01 « Usine-témoin de l'industrie du futur » (validée) : budget 540 000,00 €,"
        " accordé 250 000,00 €, manque 290 000,00 €" in missing
    )
    assert "Total manquant : 495 000,00 €" in missing
    # 5. The year so far.
    year = text.split("5. Budget 2024 à ce jour")[1]
    # the same figures, named as models.figures names them everywhere (one scope: the plan)
    assert "dont actions validées et suivantes : 595 000,00 €" in year
    assert "dont actions en attente de décision : 180 000,00 €" in year
    assert "Accordé : 250 000,00 €" in year and "Versé : 0,00 €" in year
    assert "Reste à verser : 250 000,00 €" in year
    html = message.html or ""
    assert '<td style="padding:6px 8px; border-bottom:1px solid #e5e7eb;' in html
    assert format_eur(Decimal("270000")) in html and "Château-Renault" in html


def test_invitation_is_an_icalendar_request_in_paris_time(
    engine: Engine, scenario: Scenario
) -> None:
    (digest,) = digests_on(engine, J10)
    ics = invitation(digest, DigestSettings(duration_minutes=150))
    calendar = icalendar.Calendar.from_ical(ics)
    assert str(calendar["method"]) == "REQUEST"
    (event,) = calendar.walk("VEVENT")
    start, end = event.decoded("dtstart"), event.decoded("dtend")
    assert start == datetime(2024, 6, 20, 10, 0, tzinfo=PARIS)
    assert str(start.tzinfo) == "Europe/Paris" and start.utcoffset() == timedelta(hours=2)
    assert end - start == timedelta(minutes=150)
    assert event["dtstart"].params["TZID"] == "Europe/Paris"
    assert [tz["tzid"] for tz in calendar.walk("VTIMEZONE")] == ["Europe/Paris"]
    assert str(event["summary"]) == "COPIL Territoire d'industrie Grand Est Touraine"
    assert str(event["location"]) == "Salle du conseil, Château-Renault"
    assert str(event["uid"]) == f"copil-{scenario.copil}-grand-est-touraine@tiflow"
    attendees = sorted(str(a).removeprefix("mailto:") for a in event["attendee"])
    assert attendees == sorted(scenario.members)
    assert str(event["organizer"]) == "mailto:claire.moreau@grand-est-touraine.example"
    assert event["organizer"].params["CN"] == "Claire Moreau"


def test_agenda_csv_opens_in_french_excel_and_neutralises_formulas(
    engine: Engine, scenario: Scenario
) -> None:
    with UnitOfWork(engine) as uow:
        action = uow.repo.action("grand-est-touraine", "FA-04")
        action.title = '=HYPERLINK("http://intrus.example","Couverture 4G")'
        uow.commit()
    (digest,) = digests_on(engine, J10)
    data = agenda_csv(digest)
    assert data.startswith("\ufeff".encode())
    text = data.decode("utf-8-sig")
    assert "\r\n" in text
    header, *rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert header[:2] == ["N°", "Intitulé"] and header[6] == "Budget demandé (€)"
    assert [r[0] for r in rows] == ["FA-03", "FA-04"]
    assert rows[0][1] == "Lieu d'accueil de start-up en intelligence artificielle et big data"
    assert rows[0][6] == "150000,00"
    assert Decimal(rows[1][6].replace(",", ".")) == Decimal("120000.00")
    assert rows[1][1].startswith("'=HYPERLINK")  # shown as text, never run as a formula


def test_without_listed_members_the_territorys_copil_members_get_it(
    engine: Engine, scenario: Scenario
) -> None:
    with UnitOfWork(engine) as uow:
        for member in uow.session.exec(select(CopilMember)).all():
            uow.session.delete(member)
        uow.commit()
    (digest,) = digests_on(engine, J10)
    assert sorted(p.full_name for p in digest.members) == [
        "Claire Moreau",
        "Hélène Garnier",
        "Jean Lefèvre",
        "Karim Haddad",
        "Lucas Fontaine",
        "Marc Aubert",
        "Sophie Bernard",
    ]


def test_each_member_gets_the_digest_at_j10_and_j3_once_with_its_attachments(
    engine: Engine, scenario: Scenario, smtp_sink: SmtpSink, example_plan: str
) -> None:
    with deliverer_for(smtp_sink) as deliverer:
        day = date(2024, 6, 1)
        while day <= date(2024, 6, 20):
            send_digests(engine, deliverer, now=morning(day))
            send_digests(engine, deliverer, now=morning(day))  # a second run the same day
            if day == date(2024, 6, 12):  # news between J-10 and J-3 (else no J-3: see
                with UnitOfWork(engine) as uow:  # test_digest_since_j10.py)
                    fa01 = uow.repo.action(example_plan, "FA-01")
                    uow.session.add(
                        FollowUpNote(action_id=fa01.id, written_on=day, text="Bail signé.")
                    )
                    uow.commit()
            day += timedelta(days=1)
    per_member = Counter(r for m in smtp_sink.received for r in m.rcpt_tos)
    assert per_member == Counter({email: 2 for email in scenario.members})
    mails = smtp_sink.messages_to("marc.aubert@prefecture.example")
    assert ["(dans 10 jours)" in body_of(mails[0]), "(dans 3 jours)" in body_of(mails[1])] == [
        True,
        True,
    ]
    parts = {p.get_content_type(): p for p in mails[0].walk()}
    assert parts["text/calendar"].get_param("method") == "REQUEST"
    icalendar.Calendar.from_ical(parts["application/ics"].get_content())
    csv_part = parts["text/csv"]
    assert csv_part.get_filename() == "ordre-du-jour-copil-2024-06-20.csv"
    assert mails[0]["Reply-To"] == "Claire Moreau <claire.moreau@grand-est-touraine.example>"


def test_a_pending_digest_for_a_copil_that_moved_is_dropped_and_the_new_date_announced(
    engine: Engine, scenario: Scenario, smtp_sink: SmtpSink
) -> None:
    smtp_sink.stop()
    with deliverer_for(smtp_sink) as deliverer:
        down = send_digests(engine, deliverer, now=morning(J10))[2]
    assert down.retry == 3
    with UnitOfWork(engine) as uow:
        uow.session.get_one(CopilMeeting, scenario.copil).held_at = datetime(
            2024, 6, 27, 8, 0, tzinfo=UTC
        )
        uow.commit()
    smtp_sink.restart()
    with deliverer_for(smtp_sink) as deliverer:
        next_day = send_digests(engine, deliverer, now=morning(J10 + timedelta(days=1)))[2]
        new_j10 = send_digests(engine, deliverer, now=morning(date(2024, 6, 17)))[2]
    assert (next_day.dropped, next_day.sent) == (3, 0)
    assert new_j10.sent == 3
    (mail,) = smtp_sink.messages_to("jean.lefevre@cc-castelrenaudais.example")
    assert "jeudi 27 juin 2024 à 10 h" in mail["Subject"]
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        reasons = conn.execute(sa.select(table.c.drop_reason).where(table.c.status == "dropped"))
        assert sorted(reasons.scalars()) == ["stale", "stale", "stale"]


@pytest.mark.parametrize("state", ["held", "cancelled"])
def test_no_digest_for_a_copil_that_is_not_scheduled(
    engine: Engine, scenario: Scenario, state: str
) -> None:
    with UnitOfWork(engine) as uow:
        copil = uow.session.get_one(CopilMeeting, scenario.copil)
        copil.status = state  # type: ignore[assignment]
        uow.commit()
    assert digests_on(engine, J10) == []
    assert [d.label for d in digests_on(engine, J10, DigestSettings(offsets_days=[10]))] == []


def test_actions_of_another_territory_stay_out_of_the_digest(
    engine: Engine, scenario: Scenario
) -> None:
    with UnitOfWork(engine) as uow:
        other = Territory(code="vallee-de-la-bresle", name="Vallée de la Bresle")
        uow.session.add(other)
        uow.flush()
        assert other.id is not None
        uow.session.add(
            ActionSheet(
                territory_id=other.id,
                number="FA-03",
                title="Verrerie du futur",
                axis=Axis.INNOVATION,
                state=State.PROPOSED,
            )
        )
        uow.commit()
    (digest,) = digests_on(engine, J10)
    assert [row["title"] for row in digest.agenda] == [
        "Lieu d'accueil de start-up en intelligence artificielle et big data",
        "Couverture mobile 4G puis 5G de tout le territoire",
    ]
    assert "Verrerie" not in render_digest(digest, DigestSettings()).text


def test_digest_also_reaches_the_copil_channel_once_when_asked(
    engine: Engine, scenario: Scenario, smtp_sink: SmtpSink
) -> None:
    from tests.notifications.http_sink import running_receiver

    with running_receiver() as channel:
        mail = smtp_sink.url("tiflow@grand-est-touraine.example")
        config = f"copil={mail} copil={channel.url}"
        with Deliverer(config) as deliverer:
            _, result, report = send_digests(
                engine, deliverer, now=morning(J10), settings=DigestSettings(channels=True)
            )
    assert (len(result.created), report.sent) == (4, 4)  # 3 members + the channel
    assert len(smtp_sink.received) == 3
    (post,) = channel.posts
    assert post["title"].startswith("COPIL du jeudi 20 juin 2024 à 10 h")
    assert "1. Ordre du jour\u00a0: actions à décider" in post["message"]
