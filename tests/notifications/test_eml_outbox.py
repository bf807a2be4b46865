"""Embedded default: without configuration, messages become .eml files in an outbox folder."""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import icalendar
import pytest

from notifications.message import Attachment, OutgoingEmail
from notifications.templates import render
from notifications.transports import Deliverer, EmlDirectoryTransport
from tests.smtp_sink import body_of

MARIE = "marie.dupont@cc-tev.fr"
JEAN = "Jean Martin <jean.martin@aicr.fr>"
SUBJECT = "Convocation\u00a0: COPIL du jeudi 25 janvier 2024 à 14 h 30"
NAME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d{6}\.\d{6}Z_[a-z0-9._-]+_[a-z0-9._-]+\.eml")
ICS = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tiflow//FR\r\nMETHOD:REQUEST\r\n"
    b"BEGIN:VEVENT\r\nUID:copil-2024-01-25@tiflow.example.org\r\n"
    b"DTSTAMP:20240110T080000Z\r\nDTSTART:20240125T133000Z\r\n"
    b"SUMMARY:COPIL phase 2\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def convocation(to: list[str], key: str | None = "copil-2024-01") -> OutgoingEmail:
    text, html = render(
        "generic", title="COPIL du 25 janvier 2024", paragraphs=["Ordre du jour : budget 2024."]
    )
    return OutgoingEmail(
        to=to,
        subject=SUBJECT,
        text=text,
        html=html,
        attachments=[
            Attachment.invitation(ICS),
            Attachment("ordre-du-jour.pdf", "application/pdf", b"%PDF-1.4 ordre du jour"),
        ],
        key=key,
    )


def read(path: Path) -> EmailMessage:
    with path.open("rb") as fh:
        parsed = BytesParser(policy=policy.default).parse(fh)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_one_eml_per_recipient_that_round_trips(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    email = convocation([MARIE, JEAN])
    with Deliverer(None, outbox=outbox) as deliverer:
        assert deliverer.writes_files
        results = deliverer.deliver(email, "copil")
    assert [(r.recipient, r.ok, r.channel) for r in results] == [
        (MARIE, True, "eml"),
        ("jean.martin@aicr.fr", True, "eml"),
    ]
    files = sorted(outbox.iterdir())
    assert len(files) == 2
    assert all(NAME_RE.fullmatch(f.name) and f.name.isascii() for f in files), files
    assert files[0].name.endswith("_copil-2024-01_marie.dupont-at-cc-tev.fr.eml")
    for path, to in zip(files, [MARIE, "Jean Martin <jean.martin@aicr.fr>"], strict=True):
        message = read(path)
        assert message["Subject"] == SUBJECT
        assert message["To"] == to
        assert message["X-Tiflow-Tag"] == "copil"
        assert body_of(message) == email.text
        assert "COPIL du 25 janvier 2024" in body_of(message, "html")
        attachments = {p.get_filename(): p.get_content() for p in message.iter_attachments()}
        assert attachments == {
            "invitation.ics": ICS,
            "ordre-du-jour.pdf": b"%PDF-1.4 ordre du jour",
        }
        (event,) = icalendar.Calendar.from_ical(attachments["invitation.ics"]).walk("VEVENT")
        assert str(event["summary"]) == "COPIL phase 2"


def test_names_sort_in_writing_order_and_no_temporary_file_is_left(tmp_path: Path) -> None:
    transport = EmlDirectoryTransport(tmp_path)
    for i in range(5):
        transport.write(convocation([f"pilote{i}@example.org"], key=None), "pilots")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert [n.split("_")[-1] for n in names] == [f"pilote{i}-at-example.org.eml" for i in range(5)]
    assert not list(tmp_path.glob(".*"))


def test_the_coordinator_without_address_still_gets_a_file(tmp_path: Path) -> None:
    with Deliverer(None, outbox=tmp_path) as deliverer:
        (result,) = deliverer.deliver(convocation([]), "coordinator")
        assert deliverer.deliver(convocation([]), "pilots") == []
    assert result.ok and result.recipient == "coordinator"
    (path,) = tmp_path.iterdir()
    assert read(path)["To"] is None


def test_an_unwritable_outbox_is_a_temporary_failure(tmp_path: Path) -> None:
    blocked = tmp_path / "outbox"
    blocked.write_text("a file where the folder should be")
    with Deliverer(None, outbox=blocked) as deliverer:
        (result,) = deliverer.deliver(convocation([MARIE]), "copil")
    assert not result.ok and not result.permanent
    assert "impossible d'écrire" in (result.error or "")


def test_outbox_sender_can_be_chosen(tmp_path: Path) -> None:
    transport = EmlDirectoryTransport(tmp_path, sender="Coordination TI <coordination@example.org>")
    with Deliverer(outbox=transport) as deliverer:
        deliverer.deliver(convocation([MARIE]), "copil")
    (path,) = tmp_path.iterdir()
    assert read(path)["From"] == "Coordination TI <coordination@example.org>"
    with pytest.raises(ValueError):
        EmlDirectoryTransport(tmp_path, sender="coordination@example.org\r\nBcc: x@example.org")
