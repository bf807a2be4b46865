"""Outgoing e-mail value objects and their MIME rendering (stdlib ``email`` only).

Everything that ends up in a header is validated here, once, before any transport sees it:
addresses are strict ASCII ``addr-spec`` (optionally with a display name), control
characters are refused in addresses and collapsed to spaces in subjects, attachment file
names are ASCII (non-ASCII names give an invalid ``Content-Disposition`` in some clients).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import policy as email_policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import NamedTuple
from zoneinfo import ZoneInfo

from models import clock

PARIS = ZoneInfo("Europe/Paris")

# SMTP line endings, and 7bit so that accented bodies go out as quoted-printable/base64:
# no reliance on the relay's 8BITMIME support.
MIME_POLICY = email_policy.SMTP.clone(cte_type="7bit")

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDR_RE = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+{_LABEL}")
_NAMED_RE = re.compile(r"(?P<name>\"(?:[^\"\\]|\\.)*\"|[^<>\"\\]*?)\s*<(?P<addr>[^<>]*)>")
# C0/C1 controls, DEL and Unicode line/paragraph separators: never inside a header.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SUBJECT_SPACE_RE = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_FILENAME_RE = re.compile(r"[A-Za-z0-9_()+-][A-Za-z0-9._()+ -]{0,99}")
_TOKEN = r"[A-Za-z0-9!#$&^_.+-]+"
_PARAM = rf"\s*;\s*{_TOKEN}={_TOKEN}"
_CONTENT_TYPE_RE = re.compile(
    rf"(?P<main>{_TOKEN})/(?P<sub>{_TOKEN})(?P<params>(?:{_PARAM})*)\s*;?"
)
_KEY_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_HEADER_NAME_RE = re.compile(r"List-[A-Za-z-]{1,40}")  # the extra headers tiflow writes

CALENDAR_INVITATION = "text/calendar; method=REQUEST; charset=UTF-8"


class InvalidAddress(ValueError):
    """An e-mail address that we refuse to put in a header."""

    def __init__(self, address: str, reason: str = "invalid e-mail address") -> None:
        super().__init__(f"{reason}: {address!r}")
        self.address = address


class Mailbox(NamedTuple):
    name: str
    addr: str

    def __str__(self) -> str:
        # Address quotes the display name when needed and keeps accents readable.
        return str(Address(display_name=self.name, addr_spec=self.addr)) if self.name else self.addr


def parse_mailbox(value: str) -> Mailbox:
    """Validate ``addr`` or ``Display Name <addr>``; raise InvalidAddress naming it."""
    if not isinstance(value, str):
        raise InvalidAddress(repr(value), "address must be a string")
    if _CONTROL_RE.search(value):
        raise InvalidAddress(value, "control character (CR/LF...) in e-mail address")
    text = value.strip()
    named = _NAMED_RE.fullmatch(text)
    addr = named["addr"].strip() if named else text
    if not _ADDR_RE.fullmatch(addr) or len(addr) > 254 or len(addr.partition("@")[0]) > 64:
        raise InvalidAddress(value)
    # Second opinion from the stdlib parser: both must agree on the address.
    name, parsed = parseaddr(text)
    if parsed != addr:
        raise InvalidAddress(value, "ambiguous e-mail address")
    return Mailbox(name.strip() if named else "", addr)


def validate_address(value: str) -> str:
    """Return the normalised form (``addr`` or ``"Name" <addr>``) of a valid address."""
    return str(parse_mailbox(value))


def clean_subject(subject: str) -> str:
    """Collapse CR/LF, tabs and control characters to single spaces (no header injection)."""
    return _SUBJECT_SPACE_RE.sub(" ", subject).strip()


def ascii_filename(name: str) -> str:
    """Best-effort ASCII file name: ``Compte-rendu été.pdf`` -> ``Compte-rendu ete.pdf``."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    plain = re.sub(r"[^A-Za-z0-9._()+ -]+", "_", plain).strip(" .") or "piece-jointe"
    return plain[:100]


def _parse_content_type(value: str) -> tuple[str, str, dict[str, str]]:
    match = _CONTENT_TYPE_RE.fullmatch(value.strip())
    if not match:
        raise ValueError(f"invalid content type: {value!r}")
    params = {}
    for item in match["params"].split(";"):
        if item.strip():
            key, _, val = item.strip().partition("=")
            params[key.lower()] = val
    return match["main"].lower(), match["sub"].lower(), params


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not _FILENAME_RE.fullmatch(self.filename):
            raise ValueError(
                f"attachment file name must be plain ASCII, see ascii_filename(): {self.filename!r}"
            )
        if not isinstance(self.data, bytes):
            raise TypeError("attachment data must be bytes")
        _parse_content_type(self.content_type)

    @classmethod
    def invitation(cls, ics: bytes | str, filename: str = "invitation.ics") -> Attachment:
        """An iCalendar invitation (``METHOD:REQUEST``) that clients offer to accept."""
        data = ics.encode("utf-8") if isinstance(ics, str) else ics
        if not re.search(rb"^METHOD:REQUEST\r?$", data, re.MULTILINE):
            raise ValueError("an invitation needs METHOD:REQUEST in its VCALENDAR")
        return cls(filename, CALENDAR_INVITATION, data)

    @property
    def mime_type(self) -> tuple[str, str, dict[str, str]]:
        return _parse_content_type(self.content_type)

    @property
    def is_invitation(self) -> bool:
        main, sub, params = self.mime_type
        return (main, sub) == ("text", "calendar") and params.get("method", "").upper() == "REQUEST"


@dataclass(frozen=True)
class OutgoingEmail:
    """One message to one or more people. ``key`` (ASCII, e.g. the outbox id) makes the
    Message-ID deterministic, so a copy re-sent after a crash is recognisable."""

    to: Sequence[str]
    subject: str
    text: str
    html: str | None = None
    attachments: Sequence[Attachment] = ()
    reply_to: str | None = None
    key: str | None = None
    # Extra headers (List-Unsubscribe…): names of the form Name-Name, one-line values.
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, value in self.headers.items():
            if not _HEADER_NAME_RE.fullmatch(name) or _CONTROL_RE.search(value):
                raise ValueError(f"invalid extra header {name!r}")
        if isinstance(self.to, str):
            raise TypeError("to must be a list of addresses, not a string")
        # Frozen dataclass: normalise through object.__setattr__.
        # One copy per person even if listed twice (addresses compared case-insensitively).
        unique: dict[str, str] = {}
        for address in self.to:
            box = parse_mailbox(address)
            unique.setdefault(box.addr.lower(), str(box))
        object.__setattr__(self, "to", tuple(unique.values()))
        object.__setattr__(self, "subject", clean_subject(self.subject))
        object.__setattr__(self, "attachments", tuple(self.attachments))
        if self.reply_to is not None:
            object.__setattr__(self, "reply_to", validate_address(self.reply_to))
        if self.key is not None and not _KEY_RE.fullmatch(self.key):
            raise ValueError(f"key must match {_KEY_RE.pattern}: {self.key!r}")
        if not self.subject:
            raise ValueError("empty subject")
        for item in self.attachments:
            if not isinstance(item, Attachment):
                raise TypeError(f"not an Attachment: {item!r}")

    @property
    def recipients(self) -> tuple[str, ...]:
        """Bare addresses of ``to``, as reported in delivery results."""
        return tuple(parse_mailbox(a).addr for a in self.to)


def message_id(domain: str, key: str | None = None, recipient: str = "") -> str:
    if key is None:
        return make_msgid("tiflow", domain=domain)
    digest = hashlib.sha256(recipient.lower().encode()).hexdigest()[:12]
    return f"<tiflow.{key}.{digest}@{domain}>"


def build_mime(
    email: OutgoingEmail,
    sender: str,
    *,
    now: datetime | None = None,
    reply_to: str | None = None,
) -> EmailMessage:
    """Render ``email`` as a MIME message: text (+ html) alternative, invitations as a
    ``text/calendar; method=REQUEST`` alternative (and an ``invitation.ics`` copy),
    other attachments; Date in Europe/Paris. ``reply_to`` is used when the e-mail has none.
    """
    sender_box = parse_mailbox(sender)
    domain = sender_box.addr.rpartition("@")[2]
    msg = EmailMessage(policy=MIME_POLICY)
    msg["From"] = str(sender_box)
    if email.to:
        msg["To"] = ", ".join(email.to)
    reply = email.reply_to or (validate_address(reply_to) if reply_to else None)
    if reply:
        msg["Reply-To"] = reply
    msg["Subject"] = email.subject
    msg["Date"] = format_datetime((now or clock.now()).astimezone(PARIS))
    to_key = email.recipients[0] if len(email.to) == 1 else ",".join(email.recipients)
    msg["Message-ID"] = message_id(domain, email.key, to_key)
    # RFC 3834: tells out-of-office robots not to answer.
    msg["Auto-Submitted"] = "auto-generated"
    msg["Content-Language"] = "fr"
    for name, value in email.headers.items():
        msg[name] = value

    msg.set_content(email.text)
    if email.html is not None:
        msg.add_alternative(email.html, subtype="html")
    for item in email.attachments:
        if item.is_invitation:
            # Outlook/Thunderbird/Gmail show the invitation from this alternative part.
            msg.add_alternative(
                item.data,
                maintype="text",
                subtype="calendar",
                params={"method": "REQUEST", "charset": "UTF-8"},
            )
    for item in email.attachments:
        main, sub, params = item.mime_type
        if item.is_invitation:
            main, sub, params = "application", "ics", {}
        msg.add_attachment(
            item.data, maintype=main, subtype=sub, filename=item.filename, params=params
        )
    return msg


def readdress(msg: EmailMessage, recipient: str, key: str | None) -> EmailMessage:
    """Point ``msg`` (in place) at one recipient, with a Message-ID of its own."""
    box = parse_mailbox(recipient)
    domain = msg["From"].addresses[0].domain
    if "To" in msg:
        msg.replace_header("To", str(box))
    else:
        msg["To"] = str(box)
    msg.replace_header("Message-ID", message_id(domain, key, box.addr))
    return msg
