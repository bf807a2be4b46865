"""MIME building: validation of everything that reaches a header, encoding, attachments."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifications.message import (
    Attachment,
    InvalidAddress,
    Mailbox,
    OutgoingEmail,
    ascii_filename,
    build_mime,
    parse_mailbox,
    validate_address,
)
from tests.smtp_sink import body_of

SENDER = "Territoire d'industrie Grand Est Touraine <tiflow@example.org>"


def round_trip(msg: EmailMessage) -> EmailMessage:
    parsed = BytesParser(policy=policy.default).parsebytes(msg.as_bytes())
    assert isinstance(parsed, EmailMessage)
    return parsed


def simple(**overrides: object) -> OutgoingEmail:
    fields: dict = {
        "to": ["Élodie Brûlé <e.brule@cc-tev.fr>"],
        "subject": "Rappel : échéance « Usine-témoin » dans 7 jours",
        "text": "Bonjour,\nL'action FA-07 arrive à échéance.\n",
    }
    fields.update(overrides)
    return OutgoingEmail(**fields)


def test_headers_are_ascii_and_decode_back_to_the_french_text() -> None:
    raw = build_mime(simple(), SENDER).as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0]
    head.decode("ascii")  # RFC 2047 encoded words only: never raw UTF-8 in headers
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert parsed["Subject"] == "Rappel\u00a0: échéance «\u00a0Usine-témoin\u00a0» dans 7 jours"
    assert parsed["To"].addresses[0].display_name == "Élodie Brûlé"
    assert parsed["From"].addresses[0].display_name == "Territoire d'industrie Grand Est Touraine"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert body_of(parsed) == "Bonjour,\nL'action FA-07 arrive à échéance.\n"


def test_date_header_is_in_paris_time() -> None:
    summer = build_mime(simple(), SENDER, now=datetime(2025, 7, 1, 6, 0, tzinfo=UTC))
    winter = build_mime(simple(), SENDER, now=datetime(2025, 1, 6, 7, 0, tzinfo=UTC))
    assert summer["Date"] == "Tue, 01 Jul 2025 08:00:00 +0200"
    assert winter["Date"] == "Mon, 06 Jan 2025 08:00:00 +0100"


@pytest.mark.parametrize(
    "subject",
    [
        "Rappel\r\nBcc: intrus@example.com",
        "Rappel\nBcc: intrus@example.com",
        "Rappel\rBcc: intrus@example.com",
        "Rappel\u2028Bcc: intrus@example.com",
    ],
)
def test_line_breaks_in_a_subject_cannot_add_a_header(subject: str) -> None:
    parsed = round_trip(build_mime(simple(subject=subject), SENDER))
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "Rappel Bcc: intrus@example.com"


@pytest.mark.parametrize(
    "address",
    [
        "marie@example.org\r\nBcc: intrus@example.com",
        "marie@example.org\nBcc: intrus@example.com",
        "Marie\r\n <marie@example.org>",
        "marie@example.org\x00",
        "marie@example.org, intrus@example.com",
        "marie@localhost",
        "marie",
        "marié@example.org",
        "Marie <marie@example.org> <intrus@example.com>",
        "",
    ],
)
def test_bad_addresses_are_refused_and_named(address: str) -> None:
    with pytest.raises(InvalidAddress) as error:
        simple(to=["ok@example.org", address])
    assert error.value.address == address
    assert repr(address) in str(error.value)


def test_bad_reply_to_and_sender_are_refused() -> None:
    with pytest.raises(InvalidAddress):
        simple(reply_to="coordination@example.org\r\nBcc: intrus@example.com")
    with pytest.raises(InvalidAddress):
        build_mime(simple(), "tiflow@example.org\nBcc: intrus@example.com")


def test_to_must_be_a_list_not_a_string() -> None:
    with pytest.raises(TypeError):
        simple(to="marie@example.org")


@pytest.mark.parametrize(
    "address",
    ["marie.dupont@cc-tev.fr", "Marie Dupont <marie.dupont@cc-tev.fr>", '"Dupont, Marie" <m@x.fr>'],
)
def test_valid_addresses_are_kept(address: str) -> None:
    assert validate_address(validate_address(address)) == validate_address(address)
    assert simple(to=[address]).to == (validate_address(address),)


def test_attachment_names_must_be_ascii() -> None:
    with pytest.raises(ValueError, match="ASCII"):
        Attachment("compte-rendu-COPIL-été.pdf", "application/pdf", b"%PDF-1.4")
    with pytest.raises(ValueError):
        Attachment("../etc/passwd", "text/plain", b"x")
    assert ascii_filename("Compte-rendu COPIL été.pdf") == "Compte-rendu COPIL ete.pdf"
    assert ascii_filename("Budget «2024».xlsx") == "Budget 2024.xlsx"


def test_attachments_round_trip_byte_for_byte() -> None:
    pdf = bytes(range(256)) * 40
    email = simple(
        html="<p>Bonjour</p>",
        attachments=[Attachment("compte-rendu-copil.pdf", "application/pdf", pdf)],
    )
    parsed = round_trip(build_mime(email, SENDER))
    (part,) = list(parsed.iter_attachments())
    assert part.get_filename() == "compte-rendu-copil.pdf"
    assert part.get_content_type() == "application/pdf"
    assert part.get_content() == pdf
    assert body_of(parsed, "html") == "<p>Bonjour</p>\n"


def test_invitation_needs_method_request() -> None:
    with pytest.raises(ValueError, match="METHOD:REQUEST"):
        Attachment.invitation(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n")


def test_key_gives_a_stable_message_id_per_recipient() -> None:
    first = build_mime(simple(key="outbox-42"), SENDER)
    again = build_mime(simple(key="outbox-42"), SENDER)
    other = build_mime(simple(key="outbox-42", to=["jean@example.org"]), SENDER)
    assert first["Message-ID"] == again["Message-ID"]
    assert first["Message-ID"] != other["Message-ID"]
    assert first["Message-ID"].endswith("@example.org>")
    assert build_mime(simple(), SENDER)["Message-ID"] != build_mime(simple(), SENDER)["Message-ID"]


def test_a_person_listed_twice_gets_one_copy() -> None:
    email = simple(to=["marie@example.org", "Marie Dupont <Marie@Example.org>", "jean@example.org"])
    assert email.recipients == ("marie@example.org", "jean@example.org")


# parse_mailbox reads the usual forms (a bare address, ``Words <addr>``) without the stdlib's
# parser, whose word it otherwise asks as a second opinion: on those forms both must agree.
_ATOMS = st.text("abcXYZ09!#$%&'*+/=?^_`{|}~-", min_size=1, max_size=6)
_LABELS = st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,4}[A-Za-z0-9])?", fullmatch=True)
_ADDRESSES = st.builds(
    lambda local, domain: ".".join(local) + "@" + ".".join(domain),
    st.lists(_ATOMS, min_size=1, max_size=3),
    st.lists(_LABELS, min_size=2, max_size=3),
)
_WORDS = st.lists(st.text("aéÉçßſİK0_'-\u0301ǅ", min_size=1, max_size=6), min_size=1, max_size=4)


@settings(max_examples=400)
@given(_ADDRESSES, _WORDS)
def test_the_usual_addresses_parse_as_the_stdlib_parses_them(
    address: str, words: list[str]
) -> None:
    assert parse_mailbox.__wrapped__(address) == Mailbox(*parseaddr(address))
    assert parseaddr(address) == ("", address)
    named = f"{' '.join(words)} <{address}>"
    name, addr = parseaddr(named)
    assert parse_mailbox.__wrapped__(named) == Mailbox(name.strip(), addr)
