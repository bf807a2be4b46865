"""Notification configuration: apprise services from ``TIFLOW_NOTIFY_CONFIG``.

apprise parses every URL itself (hosts, ports, TLS modes, credentials, provider defaults);
this module checks tags and reads what tiflow's own SMTP delivery needs from the e-mail
services. Error messages name the bad setting with passwords masked.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from functools import lru_cache
from pathlib import Path

import apprise
from apprise.plugins.email import NotifyEmail
from apprise.utils.cwe312 import cwe312_url

from .message import InvalidAddress, Mailbox, parse_mailbox, validate_address

ENV_VAR = "TIFLOW_NOTIFY_CONFIG"
# A service tagged ``canal-<name>`` is a channel a person may choose instead of e-mail (their
# preference names the tag, never a URL): the operator decides where it leads.
PERSON_CHANNEL_PREFIX = "canal-"

_TAG_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")
_INLINE_RE = re.compile(r"(?:(?P<tags>[A-Za-z0-9_,-]+)=)?(?P<url>[A-Za-z0-9]{1,32}://\S+)")
_FORBIDDEN_TAGS = {"all", "always"}  # "all" matches every service; "always" is implied
# A percent-encoded line break in a mailto URL: apprise (2.0.1) turns `to=a@x%0D%0ACc: b@y`
# into two recipients and `name=X%0D%0ABcc: b@y` into sender b@y (pitfalls.md).
_ENCODED_LINE_BREAK = re.compile(r"%0[ad]", re.IGNORECASE)

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """Bad notification configuration (for the operator; never contains a password)."""


# A password in a URL (scheme://user:password@host) or in its query (?pass=...).
# A password cannot hold a raw / ? # & (URL syntax): « host:2525?from=a@b » is no password.
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]{0,31}://[^\s:/@?#]*):[^\s@/?#&]+@")
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&](?:pass|password|pwd|secret|token|apikey|key)=)[^&\s]+", re.IGNORECASE
)
MASK = "****"


def mask_secrets(text: str, known: Iterable[str | None] = ()) -> str:
    """`text` with every password it may quote masked: the `known` ones (the configured SMTP
    passwords) wherever they appear, and any password written in a URL."""
    for secret in known:
        if secret and len(secret) >= 4:  # a shorter one would garble every message
            text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(rf"\g<head>:{MASK}@", text)
    return _QUERY_SECRET.sub(rf"\g<head>{MASK}", text)


def check_private_file(path: Path) -> None:
    """Refuse a configuration file that other accounts of the machine can read or change: it
    holds SMTP passwords (or says where mail goes)."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o006:
        raise ConfigError(
            f"{ENV_VAR} : le fichier de configuration {path} est accessible à tous les comptes"
            f" de la machine (droits {mode:o}) alors qu'il contient les mots de passe SMTP."
            f" Réservez-le au compte du service : chmod 600 {path} (ou 640 avec un groupe"
            " dédié). tiflow ne démarre pas tant que ce n'est pas fait."
        )


@dataclass(frozen=True)
class SmtpChannel:
    """What tiflow needs from an apprise ``mailto(s)://`` service."""

    name: str  # masked URL, safe for logs
    tags: frozenset[str]
    host: str
    port: int
    mode: str  # SecureMailMode: insecure | ssl | starttls
    user: str | None
    password: str | None = field(repr=False)
    sender: str
    targets: tuple[str, ...]
    reply_to: str | None
    timeout: float
    verify_certificate: bool

    @property
    def sender_addr(self) -> str:
        return parse_mailbox(self.sender).addr


def tags_of(server: apprise.NotifyBase) -> frozenset[str]:
    return frozenset(str(t).lower() for t in server.tags)


def check_tag(tag: str) -> str:
    if not isinstance(tag, str) or not _TAG_RE.fullmatch(tag) or tag in _FORBIDDEN_TAGS:
        raise ValueError(f"invalid notification tag {tag!r} (lowercase word; not 'all'/'always')")
    return tag


def person_channels(config: str | None) -> frozenset[str]:
    """The ``canal-…`` tags of ``config``: the channels a person may choose besides e-mail.
    A configuration apprise cannot read offers none (delivery reports the error itself)."""
    if not config or not config.strip():
        return frozenset()
    return _person_channels(config.strip())


@lru_cache(maxsize=8)
def _person_channels(config: str) -> frozenset[str]:
    try:
        services = load_services(config)
    except ConfigError:
        log.warning("%s unreadable: no personal channel offered", ENV_VAR)
        return frozenset()
    return frozenset(
        tag for s in services for tag in tags_of(s) if tag.startswith(PERSON_CHANNEL_PREFIX)
    )


def load_services(config: str) -> list[apprise.NotifyBase]:
    """Instantiate every service of ``config`` (inline URLs or a config file path) with apprise."""
    value = config.strip()
    loaded: list[apprise.NotifyBase] = []
    if "://" not in value:
        path = Path(value).expanduser()
        if not path.is_file():
            raise ConfigError(f"{ENV_VAR} : fichier de configuration apprise introuvable : {path}")
        check_private_file(path)
        _refuse_line_breaks(path.read_text(encoding="utf-8", errors="replace"), str(path))
        cfg = apprise.AppriseConfig()
        # apprise only logs a bad entry and skips it: turn its errors into a ConfigError.
        # Its log masks secrets (secure_logging); warnings are kept as the explanation.
        with apprise.LogCapture(level=logging.WARNING, fmt="%(levelname)s %(message)s") as logs:
            cfg.add(str(path))
            loaded = list(cfg.services())
        messages = logs.getvalue().strip()
        if not loaded or "ERROR " in messages:
            detail = messages or "aucun service"
            raise ConfigError(f"{ENV_VAR} : configuration apprise inutilisable ({path}) : {detail}")
    else:
        for token in value.split():
            match = _INLINE_RE.fullmatch(token)
            if not match:
                raise ConfigError(f"{ENV_VAR} : attendu [étiquettes=]URL, reçu {cwe312_url(token)}")
            _refuse_line_breaks(match["url"], cwe312_url(match["url"]))
            # Apprise.add() silently drops a "tags=" prefix: we parse it ourselves.
            apobj = apprise.Apprise()
            if not apobj.add(match["url"], tag=(match["tags"] or "").lower() or None):
                raise ConfigError(f"{ENV_VAR} : URL apprise invalide {cwe312_url(match['url'])}")
            loaded.extend(apobj)
    for server in loaded:
        if not tags_of(server):
            raise ConfigError(
                f"{ENV_VAR} : le service {server.url(privacy=True)} n'a pas d'étiquette, il ne"
                " servirait jamais ; écrivez-le « pilots,copil,coordinator=URL » (ou"
                " « always=URL »)"
            )
    return loaded


def _refuse_line_breaks(text: str, where: str) -> None:
    if _ENCODED_LINE_BREAK.search(text):
        raise ConfigError(
            f"{ENV_VAR} : un saut de ligne encodé (%0D/%0A) dans {where} ajouterait des"
            " destinataires ou remplacerait l'expéditeur : retirez-le"
        )


def smtp_channel(server: NotifyEmail, sender_name: str | None = None) -> SmtpChannel:
    """Read the SMTP settings apprise parsed from a ``mailto(s)://`` URL."""
    name = server.url(privacy=True)
    if str(server.pgp_mode) != "no":
        raise ConfigError(
            f"{ENV_VAR} : PGP n'est pas pris en charge par l'envoi d'e-mails de tiflow : {name}"
        )
    display, addr = (str(part) if part else "" for part in server.from_addr)
    # apprise keeps a non-ASCII name= RFC 2047-encoded; decode it, our MIME layer encodes.
    display = str(make_header(decode_header(display))) if "=?" in display else display
    # apprise puts its app id ("Apprise") as display name when it derives the sender, and
    # refuses an apostrophe in name= ("Territoire d'industrie"): sender_name fills the gap.
    if not display or display == server.app_id:
        display = sender_name or ""
    if server.cc or server.bcc:
        log.warning("cc=/bcc= of %s are ignored: tiflow addresses each person itself", name)
    try:
        sender = str(Mailbox(display, parse_mailbox(addr).addr))
        targets = tuple(validate_address(a) for _, a in server.targets)
        reply_to = ", ".join(validate_address(a) for a in sorted(server.reply_to)) or None
    except InvalidAddress as exc:
        raise ConfigError(f"{ENV_VAR} : adresse invalide « {exc.address} » dans {name}") from None
    return SmtpChannel(
        name=name,
        tags=tags_of(server),
        host=server.smtp_host,
        port=int(str(server.port)),
        mode=str(server.secure_mode),
        user=server.user or None,
        password=server.password or None,
        sender=sender,
        targets=targets,
        reply_to=reply_to,
        timeout=float(server.socket_connect_timeout),
        verify_certificate=bool(server.verify_certificate),
    )
