"""A real SMTP server on loopback for tests (aiosmtpd in a thread): no mock of smtplib/apprise.

Reuse from any test folder::

    from tests.smtp_sink import SmtpSink, running_sink

    @pytest.fixture
    def smtp_sink() -> Iterator[SmtpSink]:
        with running_sink() as sink:
            yield sink

The sink records every accepted envelope (``sink.received``), refuses the recipients in
``sink.refuse`` with 550 and defers those in ``sink.defer`` with 451; ``sink.stop()``
frees the port, which then refuses connections ("SMTP down"); ``sink.restart()`` drops
every open connection. Faults at the end of DATA, once per entry (issue 20):
``sink.die_before_250`` (recipients whose message is stored, then the connection is cut
before the reply: the server crashed before its 250) and ``sink.data_reply`` (recipient →
reply such as ``421 ...``, message not stored; ``sink.refused_data`` lists them with the
connection they came on).
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    login: str | None
    tls: bool
    peer: str  # client address and port: one value per SMTP connection

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.data)
        assert isinstance(parsed, EmailMessage)
        return parsed


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(
        self,
        server: Any,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.lower() in self.sink.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address.lower() in self.sink.defer:
            return "451 4.3.0 Mailbox temporarily unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        rcpt = envelope.rcpt_tos[0].lower() if envelope.rcpt_tos else ""
        with self.sink.lock:
            reply = self.sink.data_reply.pop(rcpt, None)
            dies = rcpt in self.sink.die_before_250
            self.sink.die_before_250.discard(rcpt)
            if reply is not None:
                self.sink.refused_data.append((str(session.peer), rcpt, reply))
        if reply is not None:
            return reply
        item = self._received(server, session, envelope)
        with self.sink.lock:
            self.sink.received.append(item)
        if dies:
            server.transport.abort()  # stored, but the client never reads a reply
        return "250 OK queued"

    def _received(self, server: Any, session: Session, envelope: Envelope) -> Received:
        auth = session.auth_data if session.authenticated else None
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        item = Received(
            mail_from=str(envelope.mail_from),
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=bytes(envelope.original_content or b""),
            login=login,
            tls=server.transport.get_extra_info("ssl_object") is not None,
            peer=str(session.peer),
        )
        return item


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class SmtpSink:
    """aiosmtpd on 127.0.0.1. ``credentials=(user, password)`` turns AUTH on (allowed
    without TLS, loopback only); ``tls`` is ``None``, ``"starttls"`` or ``"ssl"`` with a
    throw-away self-signed certificate (needs ``cryptography``; clients must not verify)."""

    def __init__(
        self,
        *,
        credentials: tuple[str, str] | None = None,
        tls: str | None = None,
        cert_dir: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.refuse: set[str] = set()
        self.defer: set[str] = set()
        self.die_before_250: set[str] = set()
        self.data_reply: dict[str, str] = {}
        self.refused_data: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()
        self.credentials = credentials
        kwargs: dict[str, Any] = {}
        if credentials:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        if tls:
            context = self_signed_context(cert_dir or Path(tempfile.mkdtemp(prefix="smtp-sink-")))
            if tls == "ssl":
                kwargs["ssl_context"] = context
            else:
                kwargs.update(tls_context=context, require_starttls=True)
        self._kwargs = kwargs
        self._controller = self._make_controller()
        self.running = False

    def _make_controller(self) -> Controller:
        return Controller(_Handler(self), hostname=HOST, port=self.port, **self._kwargs)

    def _authenticate(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and self.credentials is not None
            and (auth_data.login.decode(), auth_data.password.decode()) == self.credentials
        )
        # handled=False: aiosmtpd then answers 535 itself (the default leaves the client hanging).
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def start(self) -> SmtpSink:
        self._controller.start()
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self._controller.stop()
            self.running = False

    def restart(self) -> None:
        """Same port, fresh server: connections made before are dead (like an idle timeout)."""
        self.stop()
        self._controller = self._make_controller()
        self.start()

    def url(self, sender: str = "tiflow@example.org", **params: str) -> str:
        """apprise URL for this sink: plain SMTP, no TLS, custom port."""
        query = "&".join(f"{k}={v}" for k, v in {"from": sender, **params}.items())
        return f"mailto://{HOST}:{self.port}?{query}"

    def messages_to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [r.message for r in self.received if address in r.rcpt_tos]


@contextmanager
def running_sink(**kwargs: Any) -> Iterator[SmtpSink]:
    sink = SmtpSink(**kwargs).start()
    try:
        yield sink
    finally:
        sink.stop()


def self_signed_context(folder: Path) -> ssl.SSLContext:
    """Server context with a fresh self-signed certificate for 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "sink-cert.pem", folder / "sink-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


def body_of(message: EmailMessage, subtype: str = "plain") -> str:
    """Decoded text of the ``text/<subtype>`` body, with SMTP's CRLF turned back into LF."""
    part = message.get_body((subtype,))
    assert part is not None, f"no text/{subtype} part"
    content: str = part.get_content()
    return content.replace("\r\n", "\n")
