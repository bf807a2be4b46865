"""SMTP delivery over reused connections, one transaction per recipient; and the
:class:`DeliveryResult` every transport returns."""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from dataclasses import dataclass
from functools import cache

from apprise.plugins.email import SecureMailMode

from .config import SmtpChannel, mask_secrets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryResult:
    """Outcome for one recipient (an address) or one non-e-mail channel (its masked URL).

    ``permanent`` failures must not be retried (e.g. SMTP 550 on that recipient); other
    failures are temporary: keep the message pending and retry later.
    """

    recipient: str
    ok: bool
    error: str | None = None
    permanent: bool = False
    channel: str = "email"

    def __post_init__(self) -> None:
        # Stored in the outbox, logged, shown in artifacts: never with a password in it.
        if self.error:
            object.__setattr__(self, "error", mask_secrets(self.error))


def _failure(
    recipient: str, code: int, reply: bytes | str, what: str, *, permanent: bool | None = None
) -> DeliveryResult:
    """SMTP refusal: 5xx is permanent for that recipient, anything else temporary."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    error = f"{what}: {code} {text}".strip()
    return DeliveryResult(
        recipient, False, error, permanent=500 <= code < 600 if permanent is None else permanent
    )


def temporary(recipient: str, error: str, channel: str = "email") -> DeliveryResult:
    return DeliveryResult(recipient, False, error, permanent=False, channel=channel)


@cache
def _ehlo_name() -> str:
    # smtplib would call socket.getfqdn() (a DNS lookup) on every new connection.
    return socket.getfqdn()


class SmtpSession:
    """One SMTP connection per channel, opened on first use and reused until ``close()``.

    After a connection failure the channel is considered down for the rest of the round, so
    a batch against a dead server fails fast instead of waiting for a timeout per message.
    """

    def __init__(self) -> None:
        # Keyed by id(channel): two services may share a masked URL.
        self._conns: dict[int, smtplib.SMTP] = {}
        self._down: dict[int, str] = {}
        self._contexts: dict[int, ssl.SSLContext] = {}

    def _context(self, ch: SmtpChannel) -> ssl.SSLContext:
        # One SSL context per channel and round (apprise builds one per message).
        if id(ch) not in self._contexts:
            ctx = ssl.create_default_context()
            if not ch.verify_certificate:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self._contexts[id(ch)] = ctx
        return self._contexts[id(ch)]

    def _connect(self, ch: SmtpChannel) -> smtplib.SMTP | None:
        if id(ch) in self._conns:
            return self._conns[id(ch)]
        if id(ch) in self._down:
            return None
        conn: smtplib.SMTP | None = None
        try:
            if ch.mode == SecureMailMode.SSL:
                conn = smtplib.SMTP_SSL(
                    ch.host, ch.port, _ehlo_name(), timeout=ch.timeout, context=self._context(ch)
                )
            else:
                conn = smtplib.SMTP(ch.host, ch.port, _ehlo_name(), timeout=ch.timeout)
            conn.ehlo()
            if ch.mode == SecureMailMode.STARTTLS:
                # Raises if the server does not offer STARTTLS: never fall back to clear text.
                conn.starttls(context=self._context(ch))
                conn.ehlo()
            if ch.user and ch.password:
                conn.login(ch.user, ch.password)
        except (OSError, smtplib.SMTPException) as exc:
            error = mask_secrets(
                f"SMTP {ch.host}:{ch.port} unavailable: {type(exc).__name__}: {exc}", [ch.password]
            )
            self._down[id(ch)] = error
            log.warning("%s (%s)", error, ch.name)
            if conn is not None:
                conn.close()
            return None
        self._conns[id(ch)] = conn
        return conn

    def _drop(self, ch: SmtpChannel) -> None:
        conn = self._conns.pop(id(ch), None)
        if conn is not None:
            conn.close()

    def send(self, ch: SmtpChannel, recipient: str, data: bytes) -> DeliveryResult:
        """One SMTP transaction (MAIL, RCPT, DATA) for one recipient."""
        for attempt in (1, 2):
            conn = self._connect(ch)
            if conn is None:
                return temporary(recipient, self._down[id(ch)])
            try:
                code, reply = conn.mail(ch.sender_addr)
            except (OSError, smtplib.SMTPException) as exc:
                code, reply = 421, str(exc).encode()
                self._drop(ch)
            if code == 421 and attempt == 1:
                # Stale reused connection (idle timeout, per-connection quota): nothing has
                # been sent yet, so reconnecting once is safe.
                self._drop(ch)
                continue
            if code != 250:
                self._reset(ch)
                # A refused sender is a configuration problem, not this recipient's.
                return _failure(recipient, code, reply, "MAIL FROM refused", permanent=False)
            return self._rcpt_data(ch, conn, recipient, data)
        raise AssertionError("unreachable")

    def _rcpt_data(
        self, ch: SmtpChannel, conn: smtplib.SMTP, recipient: str, data: bytes
    ) -> DeliveryResult:
        try:
            code, reply = conn.rcpt(recipient)
            if code not in (250, 251):
                self._reset(ch)
                return _failure(recipient, code, reply, "recipient refused")
            code, reply = conn.data(data)
        except smtplib.SMTPDataError as exc:  # the DATA command itself was refused
            self._reset(ch)
            return _failure(recipient, exc.smtp_code, exc.smtp_error, "message refused")
        except (OSError, smtplib.SMTPException) as exc:
            # Outcome unknown (maybe delivered): temporary. A deterministic Message-ID
            # (OutgoingEmail.key) lets mail clients recognise a duplicate.
            self._drop(ch)
            return temporary(recipient, f"SMTP error: {type(exc).__name__}: {exc}")
        if code != 250:
            return _failure(recipient, code, reply, "message refused")
        return DeliveryResult(recipient, True)

    def _reset(self, ch: SmtpChannel) -> None:
        conn = self._conns.get(id(ch))
        try:
            if conn is not None:
                conn.rset()
        except (OSError, smtplib.SMTPException):
            self._drop(ch)

    def close(self) -> None:
        for conn in self._conns.values():
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                conn.close()
        self._conns.clear()
        self._down.clear()
