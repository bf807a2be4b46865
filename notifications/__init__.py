"""Notification transport: French formatting, MIME e-mails, templates and delivery.

Typical round (e.g. the reminder sweep)::

    from notifications import Deliverer, OutgoingEmail, render

    text, html = render("generic", title=..., paragraphs=[...], items=[...])
    email = OutgoingEmail(to=["Marie Dupont <marie.dupont@cc-tev.fr>"], subject=...,
                          text=text, html=html, key="outbox-42")
    with Deliverer.from_env(outbox=Path("var/outbox")) as deliverer:
        for result in deliverer.deliver(email, "pilots"):
            ...  # ok / permanent failure (give up) / temporary failure (keep pending)

Configuration: environment variable ``TIFLOW_NOTIFY_CONFIG`` (the only place for SMTP
passwords and webhook tokens; never in the repository):

* unset or empty: nothing is sent, each message is written as an ``.eml`` file in the
  outbox folder given by the caller (open it with any mail client);
* a path to an apprise configuration file, TEXT (``pilots,copil=mailtos://...``, one per
  line) or YAML (``urls:`` with ``tag:``), see https://appriseit.com;
* or apprise URLs separated by spaces or newlines, each prefixed by its tags::

    TIFLOW_NOTIFY_CONFIG='pilots,copil,coordinator=mailtos://tiflow:PASSWORD@smtp.example.org?from=ti@example.org
                          copil=slack://T000/B000/XXXX'

Tags used by tiflow: ``pilots``, ``copil``, ``coordinator``; a service without tag is a
configuration error (apprise's ``always`` tag means every tag). E-mail URLs:
``mailtos://user:pass@host`` (STARTTLS on 587), ``mailtos://user:pass@host:465?mode=ssl``,
``mailto://host:2525?from=ti@example.org`` (plain SMTP, no TLS, no login); ``from=`` is
required when the host is an IP address; ``reply=`` sets Reply-To; ``verify=no`` accepts a
self-signed certificate.
"""

from .fr import deadline_phrase, format_date, format_datetime, format_eur, relative_days
from .message import Attachment, InvalidAddress, OutgoingEmail, ascii_filename, build_mime
from .templates import render
from .transports import (
    ENV_VAR,
    ConfigError,
    Deliverer,
    DeliveryResult,
    EmlDirectoryTransport,
)

__all__ = [
    "ENV_VAR",
    "Attachment",
    "ConfigError",
    "Deliverer",
    "DeliveryResult",
    "EmlDirectoryTransport",
    "InvalidAddress",
    "OutgoingEmail",
    "ascii_filename",
    "build_mime",
    "deadline_phrase",
    "format_date",
    "format_datetime",
    "format_eur",
    "relative_days",
    "render",
]
