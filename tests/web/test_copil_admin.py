"""The coordinator's COPIL pages and sent mail, over HTTP on SQLite and PostgreSQL: schedule,
agenda, digest preview (same renderer as the digest flow) and its sending days, decisions all
or nothing, record, PDF dossier (also on the J-3 digest), sent mail and « Renvoyer » once."""

from __future__ import annotations

import email
import email.policy
import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from flows.usecases.bus import unit_of_work
from flows.usecases.digest import (
    SUMMARY_PARTS,
    DigestSettings,
    compute_digests,
    preview_digest,
    render_digest,
)
from flows.usecases.dossier import dossier_pdf
from flows.usecases.proposals import propose
from models.lifecycle import State
from models.money import format_eur
from models.outbox import OutboxMessage, OutboxStatus
from models.tables import CopilDecision, CopilMeeting, TransitionRecord
from models.vocabulary import CopilStatus
from notifications.message import clean_subject
from tests.web.conftest import COPIL_ONLY, ONLY_COORDINATOR, Web, csrf_of, sign_in
from tiflow.web.pilot import today

HOME = "grand-est-touraine"


def _prepare(engine: Engine) -> int:
    """FA-07 and FA-12 proposed, FA-10 deferred; a fresh COPIL whose agenda holds them."""
    for number in ("FA-07", "FA-12", "FA-10"):
        with unit_of_work(engine) as uow:
            propose(uow, HOME, number)
            uow.commit()
    with unit_of_work(engine) as uow:
        uow.repo.action(HOME, "FA-10").state = State.DEFERRED
        uow.commit()
    with unit_of_work(engine) as uow:
        copil = uow.session.exec(
            select(CopilMeeting)
            .where(CopilMeeting.territory_id == uow.repo.territory(HOME).id)
            .order_by(col(CopilMeeting.id))
        ).first()
        assert copil is not None and copil.id is not None
        return copil.id


def _counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return (
            conn.execute(sa.select(sa.func.count()).select_from(CopilDecision)).scalar_one(),
            conn.execute(sa.select(sa.func.count()).select_from(TransitionRecord)).scalar_one(),
            conn.execute(sa.select(sa.func.count()).select_from(OutboxMessage)).scalar_one(),
        )


def test_coordinator_schedules_a_copil_and_a_past_date_writes_nothing(web: Web) -> None:
    _prepare(web.engine)
    client = sign_in(web, ONLY_COORDINATOR)
    form = client.get(f"/t/{HOME}/planifier-copil")
    assert form.status_code == 200 and "Planifier un COPIL" in form.text
    token = csrf_of(form.text)
    refused = client.post(
        f"/t/{HOME}/planifier-copil",
        data={"csrf": token, "date": "01/01/2020", "heure": "25:00", "lieu": "Bléré"},
    )
    assert refused.status_code == 422
    assert "Date\u00a0: le 01/01/2020 est passé" in refused.text
    assert "Heure\u00a0: «\u00a025:00\u00a0» n&#39;est pas une heure" in refused.text
    done = client.post(
        f"/t/{HOME}/planifier-copil",
        data={"csrf": token, "date": "14/10/2030", "heure": "14 h", "lieu": "Bléré"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    prepared = client.get(done.headers["location"])
    assert "COPIL planifié" in prepared.text
    assert "Préparer le COPIL du lundi 14 octobre 2030 à 14 h" in prepared.text
    for number in ("FA-07", "FA-12", "FA-10"):
        assert f">{number}</a>" in prepared.text  # the agenda built itself
    assert "<strong>J-10</strong>\u00a0: vendredi 4 octobre 2030 — à venir" in prepared.text
    j3 = "<strong>J-3</strong>\u00a0: vendredi 11 octobre 2030 — à venir (avec le dossier PDF)"
    assert j3 in prepared.text
    with unit_of_work(web.engine) as uow:
        places = uow.session.exec(select(CopilMeeting.place).order_by(col(CopilMeeting.id)))
        assert list(places) == ["Amboise", "Amboise", "Bléré"]


def test_the_preview_is_the_digest_as_the_flow_renders_it(web: Web) -> None:
    copil_id = _prepare(web.engine)
    client = sign_in(web, ONLY_COORDINATOR)
    page = client.get(f"/t/{HOME}/copil/{copil_id}/preparation")
    html = client.get(f"/t/{HOME}/copil/{copil_id}/synthese.html")
    with unit_of_work(web.engine) as uow:
        digest = preview_digest(uow.session, copil_id, today())
        assert digest is not None
        message = render_digest(digest, DigestSettings())
    assert message.html is not None and html.text == message.html
    assert "style-src 'unsafe-inline'" in html.headers["content-security-policy"]
    assert clean_subject(message.subject) in page.text  # as the outbox stores it: typeset
    text = page.text.split('id="synthese-texte">', 1)[1].split("</pre>", 1)[0]
    assert text.replace("&#39;", "'").replace("&quot;", '"').replace("&amp;", "&") == (
        message.text.replace("<", "&lt;").replace(">", "&gt;")
    )


def test_the_copil_page_summary_is_the_digest_s_own_parts_and_is_never_sent(web: Web) -> None:
    copil_id = _prepare(web.engine)
    with unit_of_work(web.engine) as uow:
        whole = preview_digest(uow.session, copil_id, today())
        summary = preview_digest(uow.session, copil_id, today(), summary=True)
    assert whole is not None and summary is not None and summary.summary
    assert whole.agenda, "the prepared COPIL has an agenda to compare"
    for part in SUMMARY_PARTS:
        assert getattr(summary, part) == getattr(whole, part), part
    assert not summary.follow_up and not summary.year  # not read for the page
    with pytest.raises(ValueError, match="summary"):
        render_digest(summary, DigestSettings())
    with pytest.raises(ValueError, match="summary"), unit_of_work(web.engine) as uow:
        dossier_pdf(uow.session, summary)
    page = sign_in(web, ONLY_COORDINATOR).get(f"/t/{HOME}/copil/{copil_id}")
    for row in whole.agenda:
        assert f">{row['number']}</a>" in page.text


def test_a_decision_the_lifecycle_refuses_writes_nothing_then_all_are_recorded(
    web: Web,
) -> None:
    copil_id = _prepare(web.engine)
    client = sign_in(web, ONLY_COORDINATOR)
    form = client.get(f"/t/{HOME}/copil/{copil_id}/decisions")
    rows = {n: i for i, n in enumerate(("FA-07", "FA-12", "FA-10"), start=1)}
    for number, index in rows.items():
        assert f'name="numero-{index}" value="{number}"' in form.text
    data = {
        "csrf": csrf_of(form.text),
        "decision-1": "validated",
        "conditions-1": "Bilan à six mois",
        "decision-2": "revision_requested",
        "commentaire-2": "Chiffrage à préciser",
        "decision-3": "deferred",  # already deferred: the lifecycle refuses it
        "budget": "1 250 000,00 €",
        **{f"numero-{i}": n for n, i in rows.items()},
    }
    before = _counts(web.engine)
    refused = client.post(f"/t/{HOME}/copil/{copil_id}/decisions", data=data)
    assert refused.status_code == 422
    assert (
        "Décision n° 3 (FA-10)\u00a0: Transition impossible pour l&#39;action FA-10" in refused.text
    )
    assert "Bilan à six mois" in refused.text  # the form keeps what was typed
    assert _counts(web.engine) == before
    with unit_of_work(web.engine) as uow:
        assert uow.session.get_one(CopilMeeting, copil_id).status == CopilStatus.SCHEDULED
    data["decision-3"] = "validated"
    done = client.post(f"/t/{HOME}/copil/{copil_id}/decisions", data=data, follow_redirects=False)
    assert done.status_code == 303
    record = client.get(done.headers["location"])
    assert "Décisions enregistrées" in record.text
    assert (
        f"Budget 2030 validé\u00a0: <strong>{format_eur(Decimal(1_250_000))}</strong>"
        in record.text
    )
    assert "Bilan à six mois" in record.text and "Chiffrage à préciser" in record.text
    assert "Action FA-07 validée en COPIL\u00a0: prochaines étapes" in record.text
    with unit_of_work(web.engine) as uow:
        states = {n: uow.repo.action(HOME, n).state for n in rows}
    assert states == {
        "FA-07": State.VALIDATED,
        "FA-12": State.REVISION_REQUESTED,
        "FA-10": State.VALIDATED,
    }
    again = client.post(f"/t/{HOME}/copil/{copil_id}/decisions", data=data)
    assert again.status_code == 422 and "déjà tenu" in again.text


def test_the_dossier_is_a_pdf_of_the_agenda_sheets_and_budget(web: Web, tmp_path: Path) -> None:
    copil_id = _prepare(web.engine)
    client = sign_in(web, ONLY_COORDINATOR)
    got = client.get(f"/t/{HOME}/copil/{copil_id}/dossier.pdf")
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/pdf"
    assert 'filename="dossier-copil-2030-06-03.pdf"' in got.headers["content-disposition"]
    assert got.content.startswith(b"%PDF-")
    (tmp_path / "d.pdf").write_bytes(got.content)
    info = subprocess.run(
        ["pdfinfo", str(tmp_path / "d.pdf")], capture_output=True, text=True, check=True
    ).stdout
    pages = int(info.split("Pages:", 1)[1].split()[0])
    assert pages == 2 + 3  # agenda and budget, figures, one sheet per agenda action
    text = subprocess.run(
        ["pdftotext", "-layout", str(tmp_path / "d.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Dossier du COPIL du lundi 3 juin 2030 à 9 h 30" in text
    assert "Fiche FA-10 — Requalification de friches industrielles" in text
    assert "Budget par axe (2030)" in text and "Financement par financeur (2030)" in text


@pytest.mark.parametrize("day, attached", [(date(2030, 5, 24), False), (date(2030, 5, 31), True)])
def test_the_j3_digest_carries_the_dossier(web: Web, day: date, attached: bool) -> None:
    _prepare(web.engine)
    with unit_of_work(web.engine) as uow:
        digests = [d for d in compute_digests(uow.session, day) if d.territory.code == HOME]
    (digest,) = digests
    names = [a.filename for a in render_digest(digest, DigestSettings()).attachments]
    assert ("dossier-copil-2030-06-03.pdf" in names) is attached
    assert digest.label == ("J-3" if attached else "J-10")


def _failed(web: Web, status: OutboxStatus = OutboxStatus.FAILED) -> int:
    with unit_of_work(web.engine) as uow:
        row = OutboxMessage(
            key=f"reminder:test:{status}",
            address="karim.haddad@tev.example",
            recipient="Karim Haddad <karim.haddad@tev.example>",
            kind="reminder",
            tag="pilots",
            territory_id=uow.repo.territory(HOME).id,
            subject="Rappel : jalon à venir",
            text_body="Bonjour Karim,\nle jalon arrive.",
            status=status,
            attempts=8,
            last_error="destinataire refusé (réponse du serveur : 550 boîte inconnue)",
        )
        uow.session.add(row)
        uow.commit()
        assert row.id is not None
        return row.id


def test_sent_mail_lists_filters_opens_and_resends_once(web: Web) -> None:
    failed = _failed(web)
    client = sign_in(web, ONLY_COORDINATOR)
    listing = client.get(f"/t/{HOME}/envois", params={"etat": "failed", "personne": "karim"})
    assert listing.status_code == 200
    assert "Karim Haddad" in listing.text and "550 boîte inconnue" in listing.text
    assert "1 message<" in listing.text
    none = client.get(f"/t/{HOME}/envois", params={"etat": "failed", "type": "digest"})
    assert "Aucun message ne correspond." in none.text
    page = client.get(f"/t/{HOME}/envois/{failed}")
    assert "le jalon arrive." in page.text and 'id="renvoyer"' in page.text
    token = csrf_of(page.text)
    url = f"/t/{HOME}/envois/{failed}/renvoyer"
    first = client.post(url, data={"csrf": token}, follow_redirects=False)
    second = client.post(url, data={"csrf": token}, follow_redirects=False)  # a double click
    assert first.headers["location"].endswith("?renvoi=1")
    assert second.status_code == 303
    with unit_of_work(web.engine) as uow:
        row = uow.session.get_one(OutboxMessage, failed)
        assert row.requeued_at is not None
        assert row.status in (OutboxStatus.PENDING, OutboxStatus.SENT, OutboxStatus.SENDING)
    sent = client.get(f"/t/{HOME}/envois/{failed}")
    assert 'id="renvoyer"' not in sent.text
    # The delivery round after the answer wrote it once (.eml, same Message-ID).
    files = [
        p for p in web.outbox.glob("*.eml") if "karim.haddad" in p.name and "reminder" in p.name
    ]
    assert len(files) == 1
    message = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert message["Subject"] == "Rappel\u00a0: jalon à venir"


def test_a_sent_message_is_not_sent_again_and_another_territory_sees_none(web: Web) -> None:
    sent = _failed(web, OutboxStatus.SENT)
    client = sign_in(web, ONLY_COORDINATOR)
    page = client.get(f"/t/{HOME}/envois/{sent}")
    refused = client.post(f"/t/{HOME}/envois/{sent}/renvoyer", data={"csrf": csrf_of(page.text)})
    assert refused.status_code == 409
    assert "seul un message en échec ou en attente peut être renvoyé" in refused.text
    assert client.get(f"/t/vallee-de-la-bresle/envois/{sent}").status_code == 404


def test_the_record_before_the_meeting_says_it_is_not_held(web: Web) -> None:
    copil_id = _prepare(web.engine)
    client = sign_in(web, ONLY_COORDINATOR)
    page = client.get(f"/t/{HOME}/copil/{copil_id}/releve")
    assert "pas encore tenu" in page.text


def test_a_copil_member_downloads_the_dossier_from_the_copil_page(web: Web) -> None:
    copil_id = _prepare(web.engine)
    client = sign_in(web, COPIL_ONLY)
    page = client.get(f"/t/{HOME}/copil/{copil_id}")
    assert f'href="/t/{HOME}/copil/{copil_id}/dossier.pdf"' in page.text
    assert "/preparation" not in page.text  # the coordinator's page, not theirs
    assert client.get(f"/t/{HOME}/copil/{copil_id}/dossier.pdf").content.startswith(b"%PDF-")
    assert client.get(f"/t/{HOME}/copil/{copil_id}/preparation").status_code == 403
