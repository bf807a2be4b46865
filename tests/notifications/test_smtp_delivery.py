"""Deliverer over real SMTP (aiosmtpd on loopback), configured by apprise URLs."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import icalendar
import pytest

from notifications.message import Attachment, OutgoingEmail
from notifications.templates import render
from notifications.transports import Deliverer, DeliveryResult
from tests.smtp_sink import SmtpSink, body_of

SUBJECT = "Rappel\u00a0: échéance «\u00a0Usine-témoin\u00a0» dans 7 jours"
MARIE = "marie.dupont@cc-tev.fr"
JEAN = "jean.martin@aicr.fr"
INCONNU = "inconnu@example.org"


def reminder(to: list[str], **overrides: object) -> OutgoingEmail:
    text, html = render(
        "generic",
        title="Échéance de l'action FA-07 « Usine-témoin »",
        paragraphs=["Le démonstrateur industrie du futur arrive à échéance."],
    )
    fields: dict = {"to": to, "subject": SUBJECT, "text": text, "html": html}
    fields.update(overrides)
    return OutgoingEmail(**fields)


def send(config: str, email: OutgoingEmail, tag: str = "pilots") -> list[DeliveryResult]:
    with Deliverer(config) as deliverer:
        return deliverer.deliver(email, tag)


def only_message(sink: SmtpSink, address: str) -> EmailMessage:
    (message,) = sink.messages_to(address)
    return message


def test_french_subject_arrives_rfc2047_encoded_and_decodes_back(smtp_sink: SmtpSink) -> None:
    results = send(f"pilots={smtp_sink.url()}", reminder([f"Élodie Brûlé <{MARIE}>"]))
    assert results == [DeliveryResult(MARIE, True)]
    (received,) = smtp_sink.received
    assert received.mail_from == "tiflow@example.org"
    assert received.rcpt_tos == (MARIE,)
    head = received.data.split(b"\r\n\r\n", 1)[0]
    assert b"=?utf-8?" in head
    head.decode("ascii")
    parsed = BytesParser(policy=policy.default).parsebytes(received.data)
    assert parsed["Subject"] == SUBJECT
    assert parsed["To"].addresses[0].display_name == "Élodie Brûlé"


def test_html_part_escapes_a_script_the_text_part_keeps_it(smtp_sink: SmtpSink) -> None:
    text, html = render("generic", title="FA-07 <script>alert(1)</script>")
    email = OutgoingEmail(to=[MARIE], subject="Rappel FA-07", text=text, html=html)
    assert send(f"pilots={smtp_sink.url()}", email)[0].ok
    message = only_message(smtp_sink, MARIE)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body_of(message, "html")
    assert "<script>" not in body_of(message, "html")
    assert "FA-07 <script>alert(1)</script>" in body_of(message, "plain")


def test_line_breaks_in_subject_or_title_inject_no_header(smtp_sink: SmtpSink) -> None:
    title = "FA-07\r\nBcc: intrus@example.com\r\n\r\nfaux corps"
    text, html = render("generic", title=title)
    email = OutgoingEmail(
        to=[MARIE], subject="Rappel\r\nBcc: intrus@example.com", text=text, html=html
    )
    assert send(f"pilots={smtp_sink.url()}", email)[0].ok
    (received,) = smtp_sink.received
    assert received.rcpt_tos == (MARIE,)
    message = received.message
    assert message["Bcc"] is None
    assert message["Subject"] == "Rappel Bcc: intrus@example.com"
    assert "Bcc: intrus@example.com" in body_of(message, "plain")  # stays in the body


def _invitation() -> bytes:
    cal = icalendar.Calendar()
    cal.add("prodid", "-//tiflow//COPIL//FR")
    cal.add("version", "2.0")
    cal.add("method", "REQUEST")
    event = icalendar.Event()
    event.add("uid", "copil-2024-01-25@tiflow.example.org")
    event.add("summary", "COPIL Territoire d'industrie Grand Est Touraine – phase 2")
    event.add("location", "Hôtel communautaire, Amboise")
    event.add("dtstart", datetime(2024, 1, 25, 13, 30, tzinfo=UTC))
    event.add("dtend", datetime(2024, 1, 25, 16, 0, tzinfo=UTC))
    event.add("dtstamp", datetime(2024, 1, 10, 8, 0, tzinfo=UTC))
    event.add("organizer", "mailto:coordination@example.org")
    event.add("attendee", f"mailto:{MARIE}")
    cal.add_component(event)
    return cal.to_ical()


def test_ics_invitation_survives_and_parses(smtp_sink: SmtpSink) -> None:
    ics = _invitation()
    email = reminder([MARIE], attachments=[Attachment.invitation(ics)])
    assert send(f"copil={smtp_sink.url()}", email, "copil")[0].ok
    message = only_message(smtp_sink, MARIE)
    parts = {part.get_content_type(): part for part in message.walk()}
    invite = parts["text/calendar"]
    assert invite.get_param("method") == "REQUEST"
    assert invite.get_content_charset() == "utf-8"
    attachment = parts["application/ics"]
    assert attachment.get_filename() == "invitation.ics"
    assert attachment.get_content() == ics
    raw_invite = invite.get_payload(decode=True)
    assert isinstance(raw_invite, bytes)
    for raw in (raw_invite, attachment.get_content()):
        (event,) = icalendar.Calendar.from_ical(raw).walk("VEVENT")
        assert str(event["summary"]) == "COPIL Territoire d'industrie Grand Est Touraine – phase 2"
        assert str(event["location"]) == "Hôtel communautaire, Amboise"
        assert event.decoded("dtstart") == datetime(2024, 1, 25, 13, 30, tzinfo=UTC)


def test_refused_recipient_is_permanent_and_the_others_are_delivered(smtp_sink: SmtpSink) -> None:
    smtp_sink.refuse.add(INCONNU)
    results = send(f"pilots={smtp_sink.url()}", reminder([MARIE, INCONNU, JEAN]))
    assert [(r.recipient, r.ok, r.permanent) for r in results] == [
        (MARIE, True, False),
        (INCONNU, False, True),
        (JEAN, True, False),
    ]
    assert results[1].error is not None and "550" in results[1].error
    assert sorted(r for m in smtp_sink.received for r in m.rcpt_tos) == [JEAN, MARIE]


def test_deferred_recipient_is_a_temporary_failure(smtp_sink: SmtpSink) -> None:
    smtp_sink.defer.add(JEAN)
    results = send(f"pilots={smtp_sink.url()}", reminder([JEAN, MARIE]))
    assert [(r.ok, r.permanent) for r in results] == [(False, False), (True, False)]
    assert results[0].error is not None and "451" in results[0].error


def test_smtp_down_is_a_fast_temporary_failure_for_everyone(smtp_sink: SmtpSink) -> None:
    smtp_sink.stop()
    emails = [reminder([MARIE, JEAN]) for _ in range(50)]
    start = time.monotonic()
    with Deliverer(f"pilots={smtp_sink.url()}") as deliverer:
        results = [r for e in emails for r in deliverer.deliver(e, "pilots")]
    assert len(results) == 100
    assert all(not r.ok and not r.permanent for r in results)
    assert "connexion refusée" in (results[-1].error or "")
    assert time.monotonic() - start < 2  # one connection attempt per round, not per message


def test_one_smtp_connection_serves_the_whole_round(smtp_sink: SmtpSink) -> None:
    with Deliverer(f"pilots={smtp_sink.url()}") as deliverer:
        for i in range(20):
            assert deliverer.deliver(reminder([f"pilote{i}@example.org"]), "pilots")[0].ok
    assert len(smtp_sink.received) == 20
    assert len({m.peer for m in smtp_sink.received}) == 1


def test_a_dropped_connection_is_reopened_once(smtp_sink: SmtpSink) -> None:
    with Deliverer(f"pilots={smtp_sink.url()}") as deliverer:
        assert deliverer.deliver(reminder([MARIE]), "pilots")[0].ok
        smtp_sink.restart()  # the server forgets the idle connection
        assert deliverer.deliver(reminder([JEAN]), "pilots")[0].ok
    assert [m.rcpt_tos for m in smtp_sink.received] == [(MARIE,), (JEAN,)]
    assert len({m.peer for m in smtp_sink.received}) == 2


def test_url_credentials_are_used_to_log_in(make_sink: Callable[..., SmtpSink]) -> None:
    sink = make_sink(credentials=("tiflow", "s3cr3t-pw"))
    url = sink.url().replace("mailto://", "mailto://tiflow:s3cr3t-pw@")
    assert send(f"pilots={url}", reminder([MARIE]))[0].ok
    assert sink.received[0].login == "tiflow"

    bad = sink.url().replace("mailto://", "mailto://tiflow:wrong-pw@")
    (result,) = send(f"pilots={bad}", reminder([MARIE]))
    assert not result.ok and not result.permanent
    assert "535" in (result.error or "")
    assert "wrong-pw" not in (result.error or "")


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_tls_modes_from_the_url(make_sink: Callable[..., SmtpSink], mode: str) -> None:
    pytest.importorskip("cryptography")
    sink = make_sink(tls=mode)
    secure = sink.url(mode=mode).replace("mailto://", "mailtos://")
    # Self-signed certificate: refused by default (we verify), accepted with verify=no.
    (refused,) = send(f"pilots={secure}", reminder([MARIE]))
    assert not refused.ok and "CERTIFICATE_VERIFY_FAILED" in (refused.error or "")
    assert send(f"pilots={secure}&verify=no", reminder([MARIE]))[0].ok
    assert sink.received[0].tls


def test_mailtos_with_mode_insecure_sends_in_clear(smtp_sink: SmtpSink) -> None:
    url = smtp_sink.url(mode="insecure").replace("mailto://", "mailtos://")
    assert send(f"pilots={url}", reminder([MARIE]))[0].ok
    assert not smtp_sink.received[0].tls


def test_only_services_with_the_tag_are_used(make_sink: Callable[..., SmtpSink]) -> None:
    pilots, copil = make_sink(), make_sink()
    config = f"pilots={pilots.url()} copil,coordinator={copil.url(sender='copil@example.org')}"
    with Deliverer(config) as deliverer:
        assert deliverer.deliver(reminder([MARIE]), "pilots")[0].ok
        assert deliverer.deliver(reminder([JEAN]), "copil")[0].ok
        (missing,) = deliverer.deliver(reminder([JEAN]), "financeurs")
        with pytest.raises(ValueError):
            deliverer.deliver(reminder([JEAN]), "all")
    assert [m.rcpt_tos for m in pilots.received] == [(MARIE,)]
    assert [m.rcpt_tos for m in copil.received] == [(JEAN,)]
    assert copil.received[0].mail_from == "copil@example.org"
    assert not missing.ok and not missing.permanent
    assert "financeurs" in (missing.error or "")


def test_url_targets_are_only_used_for_the_coordinator(smtp_sink: SmtpSink) -> None:
    url = smtp_sink.url(to="coordination@example.org")
    config = f"pilots,coordinator={url}"
    with Deliverer(config) as deliverer:
        person = deliverer.deliver(reminder([MARIE]), "pilots")
        nobody = deliverer.deliver(reminder([]), "pilots")
        coordinator = deliverer.deliver(reminder([]), "coordinator")
    assert [r.recipient for r in person] == [MARIE]
    assert nobody == []
    assert coordinator == [DeliveryResult("coordination@example.org", True)]
    assert [m.rcpt_tos for m in smtp_sink.received] == [(MARIE,), ("coordination@example.org",)]


def test_sender_name_and_reply_to_come_from_the_url(smtp_sink: SmtpSink) -> None:
    url = smtp_sink.url(name="%C3%89quipe%20TI%20GETI", reply="coordination@example.org")
    assert send(f"pilots={url}", reminder([MARIE]))[0].ok
    message = only_message(smtp_sink, MARIE)
    assert message["From"].addresses[0].display_name == "Équipe TI GETI"
    assert message["From"].addresses[0].addr_spec == "tiflow@example.org"
    assert message["Reply-To"] == "coordination@example.org"


def test_sender_name_fills_in_when_the_url_has_none(smtp_sink: SmtpSink) -> None:
    # apprise 1.13 refuses an apostrophe in name=, so this one cannot come from the URL.
    name = "Territoire d'industrie Grand Est Touraine"
    with Deliverer(f"pilots={smtp_sink.url()}", sender_name=name) as deliverer:
        assert deliverer.deliver(reminder([MARIE]), "pilots")[0].ok
    assert only_message(smtp_sink, MARIE)["From"].addresses[0].display_name == name


def test_next_email_service_is_tried_after_a_temporary_failure(
    make_sink: Callable[..., SmtpSink],
) -> None:
    down, backup = make_sink(), make_sink()
    down.stop()
    results = send(f"pilots={down.url()} pilots={backup.url()}", reminder([MARIE, JEAN]))
    assert all(r.ok for r in results)
    assert len(backup.received) == 2


def test_only_retries_the_pending_recipients(smtp_sink: SmtpSink) -> None:
    with Deliverer(f"pilots={smtp_sink.url()}") as deliverer:
        results = deliverer.deliver(reminder([MARIE, JEAN]), "pilots", only={JEAN})
    assert [r.recipient for r in results] == [JEAN]
    assert [m.rcpt_tos for m in smtp_sink.received] == [(JEAN,)]


def test_deliver_outside_a_round_is_a_programming_error(smtp_sink: SmtpSink) -> None:
    deliverer = Deliverer(f"pilots={smtp_sink.url()}")
    with pytest.raises(RuntimeError):
        deliverer.deliver(reminder([MARIE]), "pilots")
