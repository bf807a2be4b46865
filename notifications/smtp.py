"""SMTP delivery over reused connections, one transaction per recipient; and the
:class:`DeliveryResult` every transport returns.

Every step of a transaction is reported to a ``progress`` callback (``DeliveryPhase``):
``connected``, ``accepted`` (MAIL and RCPT), ``data_sent`` — called after the server's 354
and *before* the content leaves, so a caller that records it durably knows that a message
without that record never reached the server — and ``replied``. A connection is abandoned
(never reused) after any refusal of DATA, a 421, or a reply that never came.
"""

from __future__ import annotations

import errno
import logging
import re
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from apprise.plugins.email import SecureMailMode

from models.outbox import DeliveryPhase

from .config import SmtpChannel, mask_secrets

log = logging.getLogger(__name__)

Progress = Callable[[DeliveryPhase], object]

# Test seam: called with each phase once it is reached (after ``progress``). Fault-injection
# tests set it to kill the process (``os._exit``) at an exact point of the exchange.
phase_reached: Progress | None = None


@dataclass(frozen=True)
class DeliveryResult:
    """Outcome for one recipient (an address) or one non-e-mail channel (its masked URL).

    ``permanent`` failures must not be retried (e.g. SMTP 550 on that recipient); other
    failures are temporary: keep the message pending and retry later. ``in_doubt``: the
    content was sent but no reply came (the server may have accepted it).
    """

    recipient: str
    ok: bool
    error: str | None = None
    permanent: bool = False
    channel: str = "email"
    in_doubt: bool = False

    def __post_init__(self) -> None:
        # Stored in the outbox, logged, shown in artifacts: never with a password in it.
        if self.error:
            object.__setattr__(self, "error", mask_secrets(self.error))


def _failure(
    recipient: str, code: int, reply: bytes | str, what: str, *, permanent: bool | None = None
) -> DeliveryResult:
    """SMTP refusal: 5xx is permanent for that recipient, anything else temporary."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    error = f"{what} (réponse du serveur : {code} {text.strip()})"
    return DeliveryResult(
        recipient, False, error, permanent=500 <= code < 600 if permanent is None else permanent
    )


def temporary(
    recipient: str, error: str, channel: str = "email", *, in_doubt: bool = False
) -> DeliveryResult:
    return DeliveryResult(recipient, False, error, False, channel, in_doubt)


_ERRNO_FR = {
    errno.ECONNREFUSED: "connexion refusée",
    errno.ECONNRESET: "connexion coupée par le serveur",
    errno.EHOSTUNREACH: "machine injoignable",
    errno.ENETUNREACH: "réseau injoignable",
    errno.EPIPE: "connexion coupée par le serveur",
    errno.EACCES: "permission refusée",
    errno.ENOSPC: "disque plein",
    errno.EEXIST: "un fichier porte déjà ce nom",
    errno.ENOTDIR: "ce chemin n'est pas un dossier",
    errno.EROFS: "système de fichiers en lecture seule",
}


def french_reason(exc: BaseException) -> str:
    """A French description of a network/file error, never its English text."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificat du serveur refusé ({exc.reason or 'CERTIFICATE_VERIFY_FAILED'})"
    if isinstance(exc, ssl.SSLError):
        return f"échec de la négociation TLS ({exc.reason or 'SSL'})"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"identifiants refusés (code {exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return "fonction non proposée par le serveur (STARTTLS ou authentification)"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return "connexion coupée par le serveur"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"réponse inattendue du serveur (code {exc.smtp_code})"
    if isinstance(exc, socket.gaierror):
        return "nom de serveur inconnu"
    if isinstance(exc, TimeoutError):
        return "délai d'attente dépassé"
    if isinstance(exc, OSError) and exc.errno in _ERRNO_FR:
        return _ERRNO_FR[exc.errno]
    if isinstance(exc, OSError):
        return (
            f"erreur réseau ou disque ({errno.errorcode.get(exc.errno or 0, type(exc).__name__)})"
        )
    return f"erreur inattendue ({type(exc).__name__})"


@cache
def _ehlo_name() -> str:
    # smtplib would call socket.getfqdn() (a DNS lookup) on every new connection.
    return socket.getfqdn()


_LEADING_DOT = re.compile(rb"(?m)^\.")


def _dot_stuffed(data: bytes) -> bytes:
    """The DATA payload as smtplib.SMTP.data() sends it (RFC 5321 §4.5.2)."""
    payload = _LEADING_DOT.sub(b"..", data)
    if not payload.endswith(b"\r\n"):
        payload += b"\r\n"
    return payload + b".\r\n"


def _reached(progress: Progress | None, phase: DeliveryPhase) -> None:
    if progress is not None:
        progress(phase)
    if phase_reached is not None:
        phase_reached(phase)


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
                f"serveur SMTP {ch.host}:{ch.port} indisponible : {french_reason(exc)}",
                [ch.password],
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

    def send(
        self, ch: SmtpChannel, recipient: str, data: bytes, progress: Progress | None = None
    ) -> DeliveryResult:
        """One SMTP transaction (MAIL, RCPT, DATA) for one recipient."""
        for attempt in (1, 2):
            conn = self._connect(ch)
            if conn is None:
                return temporary(recipient, self._down[id(ch)])
            _reached(progress, DeliveryPhase.CONNECTED)
            try:
                code, reply = conn.mail(ch.sender_addr)
            except (OSError, smtplib.SMTPException) as exc:
                code, reply = 421, french_reason(exc).encode()
                self._drop(ch)
            if code == 421 and attempt == 1:
                # Stale reused connection (idle timeout, per-connection quota): nothing has
                # been sent yet, so reconnecting once is safe.
                self._drop(ch)
                continue
            if code != 250:
                self._reset(ch, code)
                # A refused sender is a configuration problem, not this recipient's.
                return _failure(recipient, code, reply, "expéditeur refusé", permanent=False)
            return self._rcpt_data(ch, conn, recipient, data, progress)
        raise AssertionError("unreachable")

    def _rcpt_data(
        self,
        ch: SmtpChannel,
        conn: smtplib.SMTP,
        recipient: str,
        data: bytes,
        progress: Progress | None,
    ) -> DeliveryResult:
        try:
            code, reply = conn.rcpt(recipient)
            if code not in (250, 251):
                self._reset(ch, code)
                return _failure(recipient, code, reply, "destinataire refusé")
            _reached(progress, DeliveryPhase.ACCEPTED)
            conn.putcmd("data")
            code, reply = conn.getreply()
        except (OSError, smtplib.SMTPException) as exc:
            self._drop(ch)  # nothing was sent: a plain temporary failure
            return temporary(recipient, f"connexion perdue avant l'envoi : {french_reason(exc)}")
        if code != 354:
            self._drop(ch)  # a refused DATA leaves the session in an unknown state
            return _failure(recipient, code, reply, "message refusé")
        if progress is not None:  # recorded before the content leaves (see module docstring)
            try:
                progress(DeliveryPhase.DATA_SENT)
            except BaseException:
                self._drop(ch)  # mid-DATA: closing without the final dot discards it
                raise
        try:
            conn.send(_dot_stuffed(data))
            if phase_reached is not None:
                phase_reached(DeliveryPhase.DATA_SENT)  # the seam: content out, no reply yet
            code, reply = conn.getreply()
        except (OSError, smtplib.SMTPException) as exc:
            # Outcome unknown (maybe delivered): in doubt. The deterministic Message-ID
            # (OutgoingEmail.key) lets mail clients recognise a duplicate.
            self._drop(ch)
            return temporary(
                recipient,
                f"aucune réponse du serveur après l'envoi du contenu ({french_reason(exc)}) :"
                " le message a peut-être été reçu",
                in_doubt=True,
            )
        _reached(progress, DeliveryPhase.REPLIED)
        if code != 250:
            self._drop(ch)  # never reuse a connection whose DATA was refused (e.g. 421)
            return _failure(recipient, code, reply, "message refusé")
        return DeliveryResult(recipient, True)

    def _reset(self, ch: SmtpChannel, code: int) -> None:
        conn = self._conns.get(id(ch))
        if code == 421:  # the server is closing this connection
            self._drop(ch)
            return
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
