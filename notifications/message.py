"""Outgoing e-mail value objects and their MIME rendering (stdlib ``email`` only).

Everything that ends up in a header is validated here, once, before any transport sees it:
addresses are strict ASCII ``addr-spec`` (optionally with a display name), control
characters are refused in addresses and collapsed to spaces in subjects, attachment file
names are ASCII (non-ASCII names give an invalid ``Content-Disposition`` in some clients).
"""

from __future__ import annotations

import binascii
import hashlib
import re
import secrets
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import policy as email_policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid, parseaddr
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from models import clock

from .fr import typeset_text

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
# ASCII white space and controls only: French no-break spaces (U+00A0, U+202F) are kept.
_SUBJECT_SPACE_RE = re.compile(r"[ \x00-\x1f\x7f-\x9f\u2028\u2029]+")
_FILENAME_RE = re.compile(r"[A-Za-z0-9_()+-][A-Za-z0-9._()+ -]{0,99}")
_TOKEN = r"[A-Za-z0-9!#$&^_.+-]+"
_PARAM = rf"\s*;\s*{_TOKEN}={_TOKEN}"
_CONTENT_TYPE_RE = re.compile(
    rf"(?P<main>{_TOKEN})/(?P<sub>{_TOKEN})(?P<params>(?:{_PARAM})*)\s*;?"
)
_SPECIALS_RE = re.compile(r'[][\\()<>@,:;".]')
# ``Hélène Garnier-Roy <addr>``: a display name of words (letters, digits, _ ' -) and single
# spaces, no RFC 5322 special, quote or comment: what `parse_mailbox` reads without the stdlib.
_PLAIN_NAMED_RE = re.compile(r"(?P<name>[\w'-]+(?: [\w'-]+)*) <(?P<addr>[^<>\s]+)>")
_KEY_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")

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
        # The display name quoted when needed (RFC 5322 specials), accents kept readable.
        if not self.name:
            return self.addr
        name = self.name
        if _SPECIALS_RE.search(name):
            name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{name} <{self.addr}>"


@lru_cache(maxsize=4096)
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
    if not named:
        # A bare addr-spec of _ADDR_RE (dot-atoms, nothing the stdlib parser reads apart):
        # it gives ("", addr) back, as the tests check; a sweep validates thousands.
        return Mailbox("", addr)
    simple = _PLAIN_NAMED_RE.fullmatch(text)
    if simple is not None and simple["addr"] == addr:
        # Words, single spaces, then `` <addr>``: the parser's display name is the same
        # words (tests/notifications check it against parseaddr).
        return Mailbox(simple["name"], addr)
    # Second opinion from the stdlib parser: both must agree on the address.
    name, parsed = parseaddr(text)
    if parsed != addr:
        raise InvalidAddress(value, "ambiguous e-mail address")
    return Mailbox(name.strip() if named else "", addr)


def validate_address(value: str) -> str:
    """Return the normalised form (``addr`` or ``"Name" <addr>``) of a valid address."""
    return str(parse_mailbox(value))


def clean_subject(subject: str) -> str:
    """Collapse CR/LF, tabs and control characters to single spaces (no header injection),
    then French typography (no-break spaces inside « » and before : ; ? !): every subject,
    enqueued or sent, goes through here."""
    return typeset_text(_SUBJECT_SPACE_RE.sub(" ", subject).strip())


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
    # Extra headers (List-Unsubscribe…), see check_headers(); rendered with the others.
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
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
        object.__setattr__(self, "headers", check_headers(self.headers))
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


# Headers tiflow writes itself: an extra header may not replace or double one of them.
OWN_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "sender",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "auto-submitted",
        "x-tiflow-tag",
    }
)
_HEADER_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,75}")


def check_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Extra headers (``List-Unsubscribe``…) as ``{Canonical-Name: value}``; ValueError for a
    bad name, a header tiflow writes itself, or a value that is not one printable line."""
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME_RE.fullmatch(name):
            raise ValueError(f"invalid header name: {name!r}")
        lowered = name.lower()
        if lowered in OWN_HEADERS or lowered.startswith("content-"):
            raise ValueError(f"header written by tiflow itself, not an extra header: {name!r}")
        if not isinstance(value, str) or _CONTROL_RE.search(value) or len(value) > 998:
            raise ValueError(f"header {name} must be one printable line: {value!r}")
        canonical = "-".join(part[:1].upper() + part[1:] for part in lowered.split("-"))
        if canonical.lower() in {k.lower() for k in checked}:
            raise ValueError(f"header given twice: {name!r}")
        checked[canonical] = value.strip()
    return checked


_WORD_BYTES = 39  # UTF-8 bytes per encoded word: 52 base64 characters, a 64-column word
_LINE = 78


def encoded_words(text: str) -> list[str]:
    """``text`` as RFC 2047 ``=?utf-8?b?…?=`` words, split between characters (never inside
    one): every character, spaces and no-break spaces included, is inside a word, and
    decoders join adjacent words without the white space between them."""
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    for char in text:
        width = len(char.encode("utf-8"))
        if size + width > _WORD_BYTES:
            words.append(_word("".join(chunk)))
            chunk, size = [], 0
        chunk.append(char)
        size += width
    if chunk:
        words.append(_word("".join(chunk)))
    return words


def _word(text: str) -> str:
    return f"=?utf-8?b?{binascii.b2a_base64(text.encode('utf-8'), newline=False).decode()}?="


def _folded(name: str, tokens: list[str]) -> bytes:
    """``Name: tok tok…`` + CRLF, a line break (CRLF + the space) before a token that would
    pass 78 columns: unfolding gives back the tokens joined by single spaces."""
    lines = [f"{name}:"]
    for index, token in enumerate(tokens):
        if index and len(lines[-1]) + 1 + len(token) > _LINE:
            lines.append("")
        lines[-1] += " " + token
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def header_line(name: str, value: str) -> bytes:
    """``Name: value`` + CRLF, RFC 2047 encoded when not ASCII, folded at 78 columns, so that
    a parser gives back exactly ``value`` (spaces, « », no-break spaces included)."""
    if not value.isascii():
        return _folded(name, encoded_words(value))
    if len(name) + 2 + len(value) <= _LINE:
        return f"{name}: {value}\r\n".encode("ascii")
    return _folded(name, value.split(" "))


def mailbox_tokens(box: Mailbox) -> list[str]:
    """An address for a header, as foldable tokens: ``addr``, ``"Dupont, Marie" <addr>``, or
    the name's encoded words then ``<addr>``."""
    if not box.name:
        return [box.addr]
    if box.name.isascii():
        return str(box).split(" ")
    return [*encoded_words(box.name), f"<{box.addr}>"]


def _address_line(name: str, boxes: Sequence[Mailbox]) -> bytes:
    tokens: list[str] = []
    for index, box in enumerate(boxes):
        parts = mailbox_tokens(box)
        if index < len(boxes) - 1:
            parts[-1] += ","
        tokens.extend(parts)
    return _folded(name, tokens)


@dataclass(frozen=True)
class RenderedEmail:
    """An e-mail rendered once for one sender: the headers and MIME body every copy shares,
    as bytes; :meth:`copy_for` adds the two headers that differ per recipient (To and the
    Message-ID). Nothing is parsed again to re-address a copy."""

    domain: str
    key: str | None
    to: tuple[Mailbox, ...]
    head: bytes  # From, Reply-To, Subject, Date, Auto-Submitted, extra headers (CRLF ended)
    body: bytes  # MIME-Version, Content-Type… then the blank line and the encoded parts

    def copy_for(self, recipient: str | None = None) -> bytes:
        """The message as sent to ``recipient`` (one of ``to``; None: to every ``to``)."""
        boxes = (parse_mailbox(recipient),) if recipient else self.to
        key_addr = ",".join(b.addr for b in boxes)
        lines = []
        if boxes:
            lines.append(_address_line("To", boxes))
        lines.append(header_line("Message-ID", message_id(self.domain, self.key, key_addr)))
        return b"".join(lines) + self.head + self.body


def render_email(
    email: OutgoingEmail,
    sender: str,
    *,
    now: datetime | None = None,
    reply_to: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> RenderedEmail:
    """Render ``email`` once, as bytes: text (+ html) alternative, invitations as a
    ``text/calendar; method=REQUEST`` alternative (and an ``invitation.ics`` copy), other
    attachments; Date in Europe/Paris. ``reply_to`` is used when the e-mail has none;
    ``extra`` are the transport's own headers (``X-Tiflow-Tag``), after the e-mail's."""
    sender_box = parse_mailbox(sender)
    reply = email.reply_to or (validate_address(reply_to) if reply_to else None)
    head = [_address_line("From", [sender_box])]
    if reply:
        head.append(_address_line("Reply-To", [parse_mailbox(reply)]))
    head.append(header_line("Subject", email.subject))
    head.append(header_line("Date", format_datetime((now or clock.now()).astimezone(PARIS))))
    # RFC 3834: tells out-of-office robots not to answer.
    head.append(b"Auto-Submitted: auto-generated\r\nContent-Language: fr\r\n")
    for name, value in {**email.headers, **(extra or {})}.items():
        head.append(header_line(name, value))
    return RenderedEmail(
        domain=sender_box.addr.rpartition("@")[2],
        key=email.key,
        to=tuple(parse_mailbox(a) for a in email.to),
        head=b"".join(head),
        body=_mime_body(email),
    )


def _base64(data: bytes) -> bytes:
    """Base64 in CRLF-ended lines of 76 characters."""
    encoded = binascii.b2a_base64(data, newline=False)
    lines = [encoded[start : start + 76] for start in range(0, len(encoded), 76)]
    return b"\r\n".join(lines) + b"\r\n" if lines else b""


def _part(content_type: str, data: bytes, disposition: str = "") -> bytes:
    """One leaf part, base64 (C speed; 7bit-safe without relying on 8BITMIME)."""
    head = f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: base64\r\n{disposition}"
    return head.encode("ascii") + b"\r\n" + _base64(data)


def _text(text: str, subtype: str) -> bytes:
    # Canonical CRLF line ends, and a final one, as EmailMessage.set_content writes them.
    lines = text.replace("\r\n", "\n").replace("\r", "\n")
    if not lines.endswith("\n"):
        lines += "\n"
    return _part(f'text/{subtype}; charset="utf-8"', lines.replace("\n", "\r\n").encode())


def _multipart(subtype: str, parts: list[bytes]) -> bytes:
    # "=_" never occurs in base64 text, so the boundary cannot collide with a part's content.
    boundary = f"=_tiflow_{secrets.token_hex(8)}"
    out = [f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode()]
    for part in parts:
        out += [f"--{boundary}\r\n".encode(), part]
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out)


def _content_type(main: str, sub: str, params: Mapping[str, str]) -> str:
    return f"{main}/{sub}" + "".join(f'; {name}="{value}"' for name, value in params.items())


def _mime_body(email: OutgoingEmail) -> bytes:
    """The MIME body, written directly as bytes (every part base64, boundaries that cannot
    collide): text (+ html) alternative, invitations, attachments."""
    parts = [_text(email.text, "plain")]
    if email.html is not None:
        parts.append(_text(email.html, "html"))
    for item in email.attachments:
        if item.is_invitation:
            # Outlook/Thunderbird/Gmail show the invitation from this alternative part.
            calendar = 'text/calendar; method="REQUEST"; charset="UTF-8"'
            parts.append(_part(calendar, item.data))
    body = parts[0] if len(parts) == 1 else _multipart("alternative", parts)
    if email.attachments:
        files = [body]
        for item in email.attachments:
            main, sub, params = item.mime_type
            if item.is_invitation:
                main, sub, params = "application", "ics", {}
            disposition = f'Content-Disposition: attachment; filename="{item.filename}"\r\n'
            files.append(_part(_content_type(main, sub, params), item.data, disposition))
        body = _multipart("mixed", files)
    return b"MIME-Version: 1.0\r\n" + body


def build_mime(
    email: OutgoingEmail,
    sender: str,
    *,
    now: datetime | None = None,
    reply_to: str | None = None,
) -> EmailMessage:
    """The whole message as a stdlib :class:`EmailMessage`, for inspection (sending uses
    :func:`render_email`'s bytes; this parses them)."""
    raw = render_email(email, sender, now=now, reply_to=reply_to).copy_for()
    parsed = BytesParser(policy=MIME_POLICY).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    return parsed
