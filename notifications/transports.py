"""Delivery of :class:`OutgoingEmail`: apprise configuration, tiflow's own SMTP sending.

Configuration (``TIFLOW_NOTIFY_CONFIG``, for the operator; secrets live only there):

* empty or unset: no delivery, every message becomes an ``.eml`` file in an outbox folder
  (:class:`EmlDirectoryTransport`), which any mail client opens;
* a path to an apprise configuration file (apprise's own TEXT or YAML format, with tags);
* or inline apprise URLs separated by spaces/newlines, each one prefixed by its tags like in
  apprise's TEXT format: ``pilots,copil,coordinator=mailtos://user:pass@smtp.example.org?from=ti@example.org``.

Every service must carry a tag (``pilots``, ``copil``, ``coordinator``... or apprise's
``always``): deliveries always name a tag, because apprise notifies *everybody* without one.

Routing, per ``deliver(email, tag)``:

* e-mail services (``mailto://``/``mailtos://``, parsed by apprise itself) only provide the
  SMTP server, credentials, sender and ``reply=``; tiflow sends its own MIME with ``smtplib``
  over one connection per channel, reused for the whole round (apprise opens a connection and
  builds an SSL context per message, ~10x slower). Recipients are ``email.to``; the URL's
  ``to=``/``cc=``/``bcc=`` are ignored, except for tag ``coordinator`` when ``email.to`` is
  empty: the message then goes to the URL's own targets (apprise's rule: ``to=``, else the
  sender address). With several e-mail services on one tag, the next one is tried only after
  a temporary failure of the previous one.
* every other service (Slack, Teams, ntfy, Matrix, JSON...) gets the plain-text body through
  ``apprise.notify(tag=...)`` with its throttle turned off.
* ``deliver(email, tag, channel="canal-x")``, for a person who chose the operator's channel
  ``canal-x`` instead of e-mail: only the services tagged ``canal-x`` (the person names a
  tag, never a URL), e-mail ones writing to their URL's own ``to=``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection
from dataclasses import replace
from types import TracebackType
from typing import Self

import apprise
from apprise.plugins.email import NotifyEmail

from models.outbox import DeliveryPhase

from .config import (
    ENV_VAR,
    PERSON_CHANNEL_PREFIX,
    ConfigError,
    SmtpChannel,
    check_tag,
    load_services,
    mask_secrets,
    smtp_channel,
    tags_of,
)
from .eml import COORDINATOR_TAG, DEFAULT_OUTBOX_SENDER, EmlDirectoryTransport
from .message import OutgoingEmail, RenderedEmail, parse_mailbox, render_email
from .smtp import DeliveryResult, Progress, SmtpSession, temporary

log = logging.getLogger(__name__)

__all__ = [
    "COORDINATOR_TAG",
    "DEFAULT_OUTBOX_SENDER",
    "ENV_VAR",
    "ConfigError",
    "Deliverer",
    "DeliveryResult",
    "EmlDirectoryTransport",
]


class Deliverer:
    """Delivers messages for one round: ``with Deliverer(...) as d: d.deliver(email, "pilots")``.

    Not thread-safe (it holds SMTP connections): one Deliverer per thread or task.

    ``config`` is the ``TIFLOW_NOTIFY_CONFIG`` value; empty means "write .eml files to
    ``outbox``" (a folder or an :class:`EmlDirectoryTransport`). Configuration errors raise
    :class:`ConfigError` here, at construction; ``deliver`` never raises for a delivery failure.
    """

    def __init__(
        self,
        config: str | None = None,
        *,
        outbox: str | os.PathLike[str] | EmlDirectoryTransport | None = None,
        sender_name: str | None = None,
    ) -> None:
        self._apprise = apprise.Apprise()
        self._smtp: dict[int, SmtpChannel] = {}
        self._eml: EmlDirectoryTransport | None = None
        self._session: SmtpSession | None = None
        if config and config.strip():
            for server in load_services(config):
                if isinstance(server, NotifyEmail):
                    self._smtp[id(server)] = smtp_channel(server, sender_name)
                else:
                    # The throttle is really a sleep of N seconds between two sends.
                    server.request_rate_per_sec = 0
                self._apprise.add(server)
        elif outbox is None:
            raise ConfigError(f"{ENV_VAR} is empty and no outbox folder was given for .eml files")
        elif isinstance(outbox, EmlDirectoryTransport):
            self._eml = outbox
        else:
            self._eml = EmlDirectoryTransport(outbox)

    @classmethod
    def from_env(
        cls,
        *,
        outbox: str | os.PathLike[str] | EmlDirectoryTransport | None = None,
        sender_name: str | None = None,
        environ: dict[str, str] | None = None,
    ) -> Deliverer:
        env = os.environ if environ is None else environ
        return cls(env.get(ENV_VAR), outbox=outbox, sender_name=sender_name)

    @property
    def writes_files(self) -> bool:
        return self._eml is not None

    def describe(self) -> list[str]:
        """One line per service (masked URL and tags) for the operator's logs."""
        if self._eml is not None:
            return [f"eml outbox: {self._eml.folder}"]
        return [f"{s.url(privacy=True)} tags={sorted(tags_of(s))}" for s in self._apprise]

    def personal_channel(self, channel: str | None) -> list[apprise.NotifyBase]:
        """The services of a person's ``canal-…`` channel (none: unknown or not one)."""
        if not channel or not channel.startswith(PERSON_CHANNEL_PREFIX) or self._eml is not None:
            return []
        found = [s for s in self._apprise.find(tag=channel) if channel in tags_of(s)]
        if not found:
            log.warning("personal channel %s is not configured: sent by e-mail", channel)
        return found

    def open(self) -> Self:
        self.close()
        self._session = SmtpSession()
        return self

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def deliver(
        self,
        email: OutgoingEmail,
        tag: str,
        *,
        only: Collection[str] | None = None,
        progress: Progress | None = None,
        channel: str | None = None,
    ) -> list[DeliveryResult]:
        """Send ``email`` to its recipients and to the non-e-mail channels tagged ``tag``.

        One result per recipient address and per non-e-mail channel (``recipient`` is then
        the channel's masked URL). ``only`` restricts the round to those result keys, to
        retry just what failed before. ``progress`` hears each SMTP step (``smtp.py``); a
        file or a non-e-mail channel reports ``data_sent`` before it is written or notified.

        ``channel``: the ``canal-…`` tag the person chose instead of e-mail. When it is
        configured, the message goes to that tag's services only (an e-mail service of it
        writes to its URL's own ``to=``, not to the person's address); when the operator
        removed it, to ``email.to`` as usual, so a person is never left without messages.
        """
        check_tag(tag)
        if self._session is None:
            raise RuntimeError("Deliverer is not open: use 'with Deliverer(...) as d:'")
        if self._eml is not None:
            if progress is not None:
                progress(DeliveryPhase.DATA_SENT)
            return self._eml.write(email, tag, only=only)
        servers = self.personal_channel(channel)
        if servers:
            tag, email = check_tag(str(channel)), replace(email, to=())
        else:
            servers = list(self._apprise.find(tag=tag))
        channels = [self._smtp[id(s)] for s in servers if id(s) in self._smtp]
        own_targets = tag == COORDINATOR_TAG or tag.startswith(PERSON_CHANNEL_PREFIX)
        results = self._deliver_email(email, tag, channels, only, progress, own_targets)
        for server in servers:
            if id(server) not in self._smtp:
                key = server.url(privacy=True)
                if only is None or key in only:
                    if progress is not None:
                        progress(DeliveryPhase.DATA_SENT)
                    results.append(self._notify(server, email, tag))
        # A server may quote what it was sent: no configured password in a stored error.
        passwords = [ch.password for ch in self._smtp.values()]
        return [
            replace(r, error=mask_secrets(r.error, passwords)) if r.error else r for r in results
        ]

    def _deliver_email(
        self,
        email: OutgoingEmail,
        tag: str,
        channels: list[SmtpChannel],
        only: Collection[str] | None,
        progress: Progress | None,
        own_targets: bool,
    ) -> list[DeliveryResult]:
        assert self._session is not None
        recipients = list(email.to)
        if not recipients and own_targets and channels:
            recipients = list(channels[0].targets)
        pairs = [(r, parse_mailbox(r).addr) for r in recipients]
        wanted = [(r, a) for r, a in pairs if only is None or a in only]
        if not channels:
            error = f"aucun service e-mail configuré pour l'étiquette « {tag} »"
            return [temporary(a, error) for _, a in wanted]
        # Rendered once per sender (channel); each copy only adds its To and Message-ID.
        rendered: dict[int, RenderedEmail] = {}
        results = []
        for recipient, addr in wanted:
            result = None
            for ch in channels:
                if id(ch) not in rendered:
                    rendered[id(ch)] = render_email(email, ch.sender, reply_to=ch.reply_to)
                data = rendered[id(ch)].copy_for(recipient)
                result = self._session.send(ch, addr, data, progress)
                # After an unanswered DATA, another server would make a certain duplicate.
                if result.ok or result.permanent or result.in_doubt:
                    break
            assert result is not None
            results.append(result)
        return results

    def _notify(self, server: apprise.NotifyBase, email: OutgoingEmail, tag: str) -> DeliveryResult:
        key = server.url(privacy=True)
        single = apprise.Apprise()
        single.add(server)
        with apprise.LogCapture(level=logging.WARNING) as logs:
            ok = single.notify(
                body=email.text,
                title=email.subject,
                body_format=apprise.NotifyFormat.TEXT,
                tag=tag,
            )
        channel = str(server.service_name or server.protocol)
        if ok:
            return DeliveryResult(key, True, channel=channel)
        reason = logs.getvalue().strip().splitlines()
        # apprise explains in English: its reason goes to the log, the stored text is French.
        log.warning("apprise notify to %s failed: %s", key, reason[-1] if reason else "?")
        return temporary(key, "échec de l'envoi sur ce canal (détail dans le journal)", channel)
