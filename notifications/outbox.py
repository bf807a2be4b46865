"""The outbox: every message is stored before anything is sent, then delivered in rounds.

Two calls make the whole API::

    with UnitOfWork(engine) as uow:                       # 1. in the caller's transaction
        enqueue(uow, [NewMessage(key="budget:2025:grand-est-touraine", kind="budget",
                                 tag="coordinator", to=[Recipient.of(person)], subject=...,
                                 text=text, html=html, attachments=[xlsx])])
        uow.commit()                                      # the message exists, or nothing does
    with open_deliverer(load_settings()) as deliverer:    # 2. one delivery round
        report = deliver_pending(engine, deliverer)

A large round may go over several SMTP connections at once, each with its share of the
addresses: ``deliver_in_parallel(engine, lambda: open_deliverer(settings), connections=2)``
(what the flows call); the guarantees below are each share's.

Guarantees:

* **Idempotent enqueue.** A message is one row per recipient, unique on ``(key, address)``:
  enqueuing the same key again is a no-op (``INSERT ... ON CONFLICT DO NOTHING``).
* **Never lost.** A temporary failure (SMTP down, 4xx, timeout) leaves the row ``pending`` with
  ``attempts``, ``last_error`` and ``next_attempt_at`` (exponential back-off); the next round
  sends it. After ``max_attempts`` it becomes ``failed``; so does a permanent refusal (5xx) of
  that recipient, which never blocks the other recipients (each has its own row).
* **Never stale.** Rows carry what they are about (``outbox_item``: a milestone at J-7, a COPIL)
  and the facts they were written for; right before sending, a round re-reads those facts
  (:func:`models.deadlines.current_fingerprints`) and drops the rows whose due date, pilot,
  state or COPIL date changed.
* **Never twice, and the one window SMTP cannot close.** A round claims each row just before
  sending it (``pending -> sending``, a conditional UPDATE committed on its own: two rounds
  running at once never both get it) and records the outcome right after, in its own small
  commit. How far an attempt got is kept in ``delivery_phase``: ``claimed`` with the claim,
  ``data_sent`` committed after the server's 354 and before the content leaves
  (:class:`PhaseRecorder`), the rest with the outcome. Claims are committed without a disk
  flush of their own; the ``data_sent`` flush that precedes any content covers them
  (:func:`_claims_connection`). The in-doubt window is the content, the server's reply and
  the outcome's flushed commit: nothing else (the next claim comes after it). A row left
  ``sending`` by a dead round is taken up after ``in_doubt_after``: at ``claimed`` it never
  reached the server and is sent again (``report.resumed``); at ``data_sent`` it is in doubt
  (``report.in_doubt``), like a message whose server cut the connection before its 250. In
  doubt is resent by default — the Message-ID is derived from the key and the recipient, so
  the copy is recognisable — or held as ``failed``/``in_doubt`` for the kinds of
  ``DeliveryPolicy.hold_in_doubt``. A database that stays locked raises
  :class:`models.errors.DatabaseBusy` after bounded retries; a row whose claim or
  ``data_sent`` could not be written was not sent.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import re
import time
import uuid
import zlib
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache, partial
from typing import Any, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection, Engine

from models import clock
from models.db import copy_rows, driver_cursor, is_busy, one_of, retry_when_busy
from models.deadlines import (
    ACTION_END,
    FUNDING_KINDS,
    MILESTONE,
    NUDGE,
    current_fingerprints,
    matches,
)
from models.errors import DatabaseBusy, NotFound, TiflowError
from models.outbox import (
    DeliveryPhase,
    OutboxAttachment,
    OutboxItem,
    OutboxMessage,
    OutboxStatus,
)
from models.preferences import KIND_CATEGORY
from models.settings import Settings, load_settings
from models.tables import Funding, Milestone, Person
from models.uow import UnitOfWork
from models.vocabulary import Role
from notifications.config import check_tag
from notifications.fr import format_datetime, plural
from notifications.message import (
    Attachment,
    InvalidAddress,
    Mailbox,
    OutgoingEmail,
    check_headers,
    clean_subject,
    parse_mailbox,
)
from notifications.preferences import (
    chosen_channels,
    list_unsubscribe,
    period_groups,
    route_rows,
)
from notifications.smtp import DeliveryResult, Progress, temporary
from notifications.transports import Deliverer

log = logging.getLogger(__name__)
T = TypeVar("T")

SENDER_NAME = "Territoire d'industrie (tiflow)"
_KIND_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
KEY_MAX = 200

M = OutboxMessage.__table__  # type: ignore[attr-defined]
I = OutboxItem.__table__  # type: ignore[attr-defined]  # noqa: E741
A = OutboxAttachment.__table__  # type: ignore[attr-defined]

PENDING, SENDING, SENT = OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.SENT
FAILED, DROPPED = OutboxStatus.FAILED, OutboxStatus.DROPPED


def utcnow() -> datetime:
    return clock.now()


# ---------------------------------------------------------------------------------------------
# Enqueue


@dataclass(frozen=True)
class Recipient:
    """One person to write to: ``mailbox`` is ``addr`` or ``Display Name <addr>``."""

    mailbox: str
    person_id: int | None = None
    # Extra headers for this recipient only (an unsubscribe link of theirs), merged over
    # NewMessage.headers; see notifications.message.check_headers.
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)

    @classmethod
    def of(cls, person: Person) -> Recipient:
        return cls(mailbox_of(person.full_name, person.email), person.id)


def recipients_with_role(uow: UnitOfWork, territory_id: int, role: Role) -> list[Recipient]:
    """Everyone of the territory with ``role`` (e.g. its coordinators), as recipients."""
    return [Recipient.of(p) for p in uow.repo.people_with_role(territory_id, role)]


def mailbox_of(full_name: str, email: str) -> str:
    """``Hélène Garnier <helene.garnier@aicr.example>``; control characters in the name are
    removed (they could never reach a header anyway, but the address must stay parseable)."""
    name = _CONTROL_RE.sub(" ", full_name or "").strip()
    address = (email or "").strip()
    try:
        return str(Mailbox(name, parse_mailbox(address).addr))
    except InvalidAddress:
        return address  # refused again, and recorded, by enqueue()


@dataclass(frozen=True)
class ItemRef:
    """What a message is about, for idempotency (``key``) and freshness (the rest).

    ``ref_kind``/``ref_id`` name a deadline, a silence or a COPIL (models.deadlines.REF_KINDS);
    ``fingerprint`` the facts the message was written for (see tiflow.deadlines);
    ``remind_on`` the day the reminder belongs to."""

    key: str
    ref_kind: str
    ref_id: int
    fingerprint: str
    remind_on: date


@dataclass(frozen=True)
class NewMessage:
    """A message to enqueue: one outbox row per recipient, all with the same ``key``.

    ``channels=True`` adds one row for the tag's non-e-mail channels (Slack, Teams... and, for
    tag ``coordinator``, the configuration's own addresses)."""

    key: str
    kind: str
    tag: str
    to: Sequence[Recipient | str]
    subject: str
    text: str
    html: str | None = None
    attachments: Sequence[Attachment] = ()
    reply_to: str | None = None
    territory_id: int | None = None
    items: Sequence[ItemRef] = ()
    channels: bool = False
    not_before: datetime | None = None
    # Extra headers (List-Unsubscribe…) for every recipient, stored with each row.
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass
class EnqueueResult:
    created: list[int] = field(default_factory=list)  # ids of the new rows
    existing: int = 0  # rows already there: the idempotent no-op
    invalid: list[str] = field(default_factory=list)  # refused addresses (stored as failed)

    def merge(self, other: EnqueueResult) -> None:
        self.created.extend(other.created)
        self.existing += other.existing
        self.invalid.extend(other.invalid)


def message_key(kind: str, key: str) -> str:
    """The ASCII key that makes the Message-ID stable: same outbox key, same Message-ID."""
    return f"{kind}.{hashlib.sha256(key.encode()).hexdigest()[:20]}"


def _check(message: NewMessage) -> None:
    if not _KIND_RE.fullmatch(message.kind):
        raise ValueError(f"invalid outbox kind {message.kind!r}")
    check_tag(message.tag)
    if not message.key or len(message.key) > KEY_MAX or _CONTROL_RE.search(message.key):
        raise ValueError(f"invalid outbox key {message.key!r} (1 to {KEY_MAX} printable chars)")
    if not message.to and not message.channels:
        raise ValueError(f"message {message.key!r} has no recipient and no channel")
    if isinstance(message.to, str):
        raise TypeError("to must be a list of recipients, not a string")


def _rows(
    message: NewMessage, now: datetime, correlation_id: str | None, invalid: list[str]
) -> list[dict[str, Any]]:
    _check(message)
    # What the transport will check anyway (sender-independent), checked now: a bad message
    # is refused here, in the caller's transaction, not days later in a delivery round.
    OutgoingEmail(
        to=[],
        subject=message.subject,
        text=message.text,
        html=message.html,
        attachments=message.attachments,
        reply_to=message.reply_to,
        key=message_key(message.kind, message.key),
        headers=message.headers,
    )
    subject = clean_subject(message.subject)
    base = {
        "key": message.key,
        "kind": message.kind,
        "tag": message.tag,
        "territory_id": message.territory_id,
        "subject": subject,
        "text_body": message.text,
        "html_body": message.html,
        "reply_to": message.reply_to,
        "status": PENDING.value,
        "attempts": 0,
        "next_attempt_at": message.not_before or now,
        "last_error": None,
        "created_at": now,
        "correlation_id": correlation_id,
    }
    rows: dict[str, dict[str, Any]] = {}
    for entry in message.to:
        recipient = entry if isinstance(entry, Recipient) else Recipient(entry)
        row = dict(base, person_id=recipient.person_id)
        row["headers"] = _headers_json({**message.headers, **recipient.headers})
        try:
            box = parse_mailbox(recipient.mailbox)
            row.update(address=box.addr.lower(), recipient=recipient.mailbox.strip())
        except InvalidAddress:
            shown = _CONTROL_RE.sub(" ", recipient.mailbox).strip()[:254]
            invalid.append(shown)
            row.update(
                address=shown.lower(),
                recipient=shown,
                status=FAILED.value,
                last_error=f"Adresse e-mail invalide : « {shown} ». Corrigez-la dans la fiche"
                " de la personne ; ce message ne sera pas envoyé.",
            )
        rows.setdefault(str(row["address"]), row)
    if message.channels:
        headers = _headers_json(message.headers)
        rows.setdefault("", dict(base, person_id=None, address="", recipient="", headers=headers))
    return list(rows.values())


def _headers_json(headers: Mapping[str, str]) -> str | None:
    """Checked extra headers as stored in ``outbox_message.headers`` (None when there are none)."""
    checked = check_headers(headers)
    return json.dumps(checked, ensure_ascii=False, sort_keys=True) if checked else None


def _insert_ignoring_duplicates(session: sa.orm.Session, rows: list[dict[str, Any]]) -> list[Any]:
    """Insert ``rows``, leaving alone those whose ``(key, address)`` exists: the new rows'
    ``(id, key, address)`` (``INSERT ... ON CONFLICT DO NOTHING RETURNING``)."""
    from sqlalchemy.dialects import sqlite

    dialect = session.get_bind().dialect.name
    returned = (M.c.id, M.c.key, M.c.address)
    if dialect == "postgresql":
        return _copy_ignoring_duplicates(session, rows)
    if dialect != "sqlite":  # pragma: no cover - tiflow supports SQLite and PostgreSQL
        raise NotImplementedError(f"outbox: unsupported database {dialect}")
    page = sqlite.insert(M).on_conflict_do_nothing(index_elements=["key", "address"])
    pages = (rows[start : start + 1000] for start in range(0, len(rows), 1000))
    return [row for chunk in pages for row in session.execute(page.returning(*returned), chunk)]


def _insert_all(session: sa.orm.Session, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    if session.get_bind().dialect.name == "postgresql":
        columns = list(rows[0])  # every row has the same keys
        with driver_cursor(session) as cursor:
            _copy_rows(session, cursor, table, table.name, columns, rows)
    else:
        session.execute(sa.insert(table), rows)


# PostgreSQL: the rows travel by COPY (psycopg formats them in C). The earlier forms cost more
# CPU than the database's work: a multi-row VALUES is a statement of ~0.5 MB per thousand
# outbox rows, parsed in Python on every execution; `unnest` arrays are dumped value by value
# in Python (bench/reminders.py's national plan, 1917 messages and 15358 items: client CPU
# of the two inserts 0.5-0.8 s -> 0.1-0.3 s; what is left is the server's work).
_LOAD_TABLE = "outbox_message_load"  # per transaction, dropped after use (and at commit)


def _copy_ignoring_duplicates(session: sa.orm.Session, rows: list[dict[str, Any]]) -> list[Any]:
    """COPY into a temporary table of the same columns, then one ``INSERT ... SELECT ... ON
    CONFLICT DO NOTHING RETURNING``: duplicates are ignored by the same unique index, in the
    caller's transaction, rows inserted in their given order (ids ascending, as before)."""
    columns = list(rows[0])
    quote = session.get_bind().dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    load = quote(_LOAD_TABLE)
    with driver_cursor(session) as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE {load} ON COMMIT DROP AS"
            f" SELECT 0 AS load_order, {names} FROM {quote(M.name)} WITH NO DATA"
        )
        _copy_rows(session, cursor, M, _LOAD_TABLE, columns, rows, numbered=True)
        cursor.execute(
            f"INSERT INTO {quote(M.name)} ({names}) SELECT {names} FROM {load}"
            " ORDER BY load_order ON CONFLICT (key, address) DO NOTHING"
            " RETURNING id, key, address"
        )
        found = cursor.fetchall()
        cursor.execute(f"DROP TABLE {load}")  # a second enqueue of the transaction makes its own
    return [_Inserted(*row) for row in found]


@dataclass(frozen=True, slots=True)
class _Inserted:
    id: int
    key: str
    address: str


def _copy_rows(
    session: sa.orm.Session,
    cursor: Any,
    table: sa.Table,
    target: str,
    columns: list[str],
    rows: list[dict[str, Any]],
    *,
    numbered: bool = False,
) -> None:
    """``rows`` into ``target`` by COPY, each value through its column's bind processing
    (the UTC conversion of `UTCDateTime`, the enum's check), as an INSERT would do; with
    ``numbered``, a first column ``load_order``: the rows' order."""
    dialect = session.get_bind().dialect
    processors = [table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns]

    def values(row: dict[str, Any]) -> list[Any]:
        return [
            value if process is None else process(value)
            for process, value in zip(processors, map(row.__getitem__, columns), strict=True)
        ]

    if numbered:
        copy_rows(
            cursor, target, ["load_order", *columns], ((n, *values(r)) for n, r in enumerate(rows))
        )
    else:
        copy_rows(cursor, target, columns, map(values, rows))


def enqueue(
    uow: UnitOfWork,
    messages: Iterable[NewMessage],
    *,
    correlation_id: str | None = None,
    now: datetime | None = None,
) -> EnqueueResult:
    """Store ``messages`` in the caller's unit of work (the caller commits); bulk inserts.

    Rows whose ``(key, address)`` already exist are left as they are (sent or not). An invalid
    recipient address is stored as a ``failed`` row with a French error naming it, so that a
    sweep never stops on one bad address; ``result.invalid`` lists them."""
    now = now or utcnow()
    result = EnqueueResult()
    by_message: list[tuple[NewMessage, list[dict[str, Any]]]] = []
    for message in messages:
        by_message.append((message, _rows(message, now, correlation_id, result.invalid)))
    route_rows(uow.session, by_message)  # each person's choice: when, or never
    rows = [row for _, message_rows in by_message for row in message_rows]
    if not rows:
        return result
    # One set of columns for every row: a bulk insert takes them from the first row only,
    # and route_rows adds some (drop_reason) to a few.
    columns = dict.fromkeys(name for row in rows for name in row)
    rows = [{**columns, **row} for row in rows]
    session = uow.session
    ids = {(r.key, r.address): r.id for r in _insert_ignoring_duplicates(session, rows)}
    result.existing = len(rows) - len(ids)
    items: list[dict[str, Any]] = []
    attachments: list[dict[str, Any]] = []
    for message, message_rows in by_message:
        for row in message_rows:
            row_id = ids.get((message.key, row["address"]))
            if row_id is None:
                continue
            result.created.append(row_id)
            items.extend(
                {
                    "message_id": row_id,
                    "item_key": item.key,
                    "ref_kind": item.ref_kind,
                    "ref_id": item.ref_id,
                    "fingerprint": item.fingerprint,
                    "remind_on": item.remind_on,
                }
                for item in message.items
            )
            attachments.extend(
                {
                    "message_id": row_id,
                    "filename": att.filename,
                    "content_type": att.content_type,
                    "data": att.data,
                }
                for att in message.attachments
            )
    if items:
        _insert_all(session, I, items)
    if attachments:
        session.execute(sa.insert(A), attachments)
    return result


# ---------------------------------------------------------------------------------------------
# Delivery


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int = 8
    retry_after: timedelta = timedelta(minutes=15)  # first retry; doubles each time
    max_backoff: timedelta = timedelta(hours=6)
    in_doubt_after: timedelta = timedelta(minutes=30)  # longer than any SMTP timeout
    # In doubt (content sent, no reply recorded): resent with the same Message-ID, since a
    # reminder missed costs more than a duplicate mail systems can fold; the kinds in
    # ``hold_in_doubt`` (or every kind, with resend_in_doubt=False) are held as failed instead.
    resend_in_doubt: bool = True
    hold_in_doubt: frozenset[str] = frozenset()
    chunk_size: int = 500
    ignore_backoff: bool = False  # the operator's « maintenant »: retry what waits, at once
    # A row enqueued less than this before its chunk is read carries facts read (in the
    # enqueuing transaction) that recently: its items are not read again to find it stale.
    # Re-reading them costs what the planning did (0.7 s of a national sweep's 8 s round) and
    # would only catch an edit made in those seconds — no narrower than the window the check
    # leaves anyway between its chunk's read and the chunk's last send (500 messages).
    recheck_after: timedelta = timedelta(seconds=30)

    def backoff(self, attempts: int) -> timedelta:
        """Delay before attempt ``attempts + 1``: 15 min, 30 min, 1 h... capped."""
        return min(self.retry_after * (2 ** max(attempts - 1, 0)), self.max_backoff)

    def resends_in_doubt(self, kind: str) -> bool:
        return self.resend_in_doubt and kind not in self.hold_in_doubt

    def needs_recheck(self, created_at: datetime | None, now: datetime) -> bool:
        """Whether a pending row's facts are old enough to be checked again before it goes."""
        enqueued = _aware(created_at)
        return enqueued is None or enqueued <= now - self.recheck_after


# Each SMTP connection of a round holds two database connections (outcomes, claims) for the
# whole round: four keep eight of a default SQLAlchemy pool's fifteen, the rest for the
# process's other work (the flow's own writes, a web request).
MAX_CONNECTIONS = 4


class DeliverySettings(BaseModel):
    """Réglages de la distribution des messages (tournée d'envoi de la boîte d'envoi)."""

    model_config = ConfigDict(title="Réglages de l'envoi", frozen=True)

    max_attempts: int = Field(
        default=8,
        ge=1,
        le=50,
        title="Tentatives au plus",
        description="Après ce nombre d'échecs temporaires (serveur SMTP indisponible…), le"
        " message passe en échec.",
    )
    retry_after_minutes: int = Field(
        default=15,
        ge=0,
        le=1440,
        title="Premier nouvel essai après (minutes)",
        description="Délai avant le deuxième essai ; il double ensuite à chaque échec.",
    )
    max_backoff_hours: int = Field(
        default=6,
        ge=1,
        le=72,
        title="Délai maximal entre deux essais (heures)",
        description="Le délai entre deux essais cesse de doubler à cette durée.",
    )
    resend_in_doubt: bool = Field(
        default=True,
        title="Renvoyer les messages incertains",
        description="Un message dont le contenu est parti sans que le serveur ait répondu"
        " (serveur ou machine arrêté à ce moment précis) a peut-être été reçu. Par défaut il"
        " est renvoyé avec le même identifiant (Message-ID), que les messageries reconnaissent"
        " comme un doublon ; décochez pour le signaler en échec sans le renvoyer.",
    )
    hold_in_doubt_kinds: list[str] = Field(
        default_factory=list,
        title="Types de messages incertains à ne pas renvoyer",
        description="Par exemple budget ou digest : ces messages incertains sont signalés en"
        " échec (à vérifier, puis « tiflow envois --relancer N ») au lieu d'être renvoyés.",
    )
    connections: int = Field(
        default=2,
        ge=1,
        le=MAX_CONNECTIONS,
        title="Connexions SMTP simultanées",
        description="Nombre de connexions au serveur SMTP ouvertes en même temps pour une"
        " grosse tournée : chacune envoie les messages d'une partie des adresses. Une"
        " connexion de plus ne s'ouvre que pour au moins 100 messages chacune ; mettez 1 si"
        " votre serveur SMTP limite les connexions simultanées.",
    )
    now: bool = Field(
        default=False,
        title="Maintenant",
        description="Renvoie tout de suite les messages en attente d'un nouvel essai, sans"
        " attendre la fin de leur délai (après le retour du serveur SMTP, par exemple).",
    )

    def policy(self) -> DeliveryPolicy:
        return DeliveryPolicy(
            max_attempts=self.max_attempts,
            retry_after=timedelta(minutes=self.retry_after_minutes),
            max_backoff=timedelta(hours=self.max_backoff_hours),
            resend_in_doubt=self.resend_in_doubt,
            hold_in_doubt=frozenset(self.hold_in_doubt_kinds),
            ignore_backoff=self.now,
        )


@dataclass(frozen=True)
class Failure:
    id: int
    kind: str
    recipient: str
    error: str


@dataclass
class DeliveryReport:
    sent: int = 0
    retry: int = 0  # temporary failure: still pending, retried after the back-off
    failed: int = 0
    dropped: int = 0  # stale, or nobody to send to
    in_doubt: int = 0  # content sent without a recorded reply, in an earlier round
    resumed: int = 0  # interrupted before the content left, in an earlier round: sent again
    skipped: int = 0  # claimed by another round running at the same time
    elapsed: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    backlog: Backlog | None = None  # what is left in the outbox after the round

    @property
    def attempted(self) -> int:
        return self.sent + self.retry + self.failed

    def add(self, other: DeliveryReport) -> None:
        """Another share's counts and failures, added to this round's (every count field:
        one added to the report is added up too)."""
        for counter in fields(self):
            if counter.type in ("int", int):
                total = getattr(self, counter.name) + getattr(other, counter.name)
                setattr(self, counter.name, total)
        self.failures += other.failures

    def summary(self) -> str:
        rate = f", {self.sent / self.elapsed:.0f} messages/s" if self.elapsed and self.sent else ""
        text = self.counts() + f" en {self.elapsed:.1f} s{rate}"
        return text + (f" ; {self.backlog.summary()}" if self.backlog else "")

    def counts(self) -> str:
        parts = [
            count_fr(self.sent, "envoyé", "envoyés"),
            f"{self.retry} à réessayer",
            count_fr(self.failed, "en échec", "en échec"),
            count_fr(self.dropped, "abandonné", "abandonnés"),
            count_fr(self.in_doubt, "incertain", "incertains"),
        ]
        if self.resumed:
            parts.append(
                count_fr(
                    self.resumed, "repris après une interruption", "repris après une interruption"
                )
            )
        return ", ".join(parts)


def count_fr(n: int, one: str, many: str) -> str:
    """``0 envoyé``, ``1 envoyé``, ``2 envoyés`` (French: the singular up to 1)."""
    return f"{n} {one if n <= 1 else many}"


@dataclass(frozen=True)
class Backlog:
    """What waits in the outbox: for every summary the operator reads."""

    waiting: int = 0  # pending, due later (back-off or scheduled)
    next_at: datetime | None = None
    last_at: datetime | None = None
    due: int = 0  # pending and due now (another round will take them)
    sending: int = 0  # being sent, or left by an interrupted round (resolved later)
    held_in_doubt: int = 0  # failed in doubt, waiting for the operator

    def summary(self) -> str:
        parts = []
        if self.waiting:
            when = f" jusqu'au {format_datetime(self.next_at)}" if self.next_at else ""
            if self.last_at and self.next_at and self.last_at != self.next_at:
                when = (
                    f" (prochain envoi le {format_datetime(self.next_at)}, dernier le"
                    f" {format_datetime(self.last_at)})"
                )
            parts.append(f"{count_fr(self.waiting, 'message', 'messages')} en attente{when}")
        else:
            parts.append("aucun message en attente")
        if self.due:
            parts.append(f"{self.due} à envoyer maintenant")
        if self.sending:
            parts.append(
                count_fr(
                    self.sending,
                    "en cours d'envoi ou interrompu",
                    "en cours d'envoi ou interrompus",
                )
            )
        parts.append(
            f"{count_fr(self.held_in_doubt, 'incertain', 'incertains')} à vérifier"
            " (tiflow envois --etat incertain)"
            if self.held_in_doubt
            else "aucun incertain à vérifier"
        )
        return ", ".join(parts)


def backlog(conn: Connection | sa.orm.Session, now: datetime) -> Backlog:
    """Counts of what waits (one query), for :class:`DeliveryReport` and the CLI."""
    waiting = sa.and_(M.c.status == PENDING.value, M.c.next_attempt_at > now)
    row = conn.execute(
        sa.select(
            sa.func.count().filter(waiting),
            sa.func.min(M.c.next_attempt_at).filter(waiting),
            sa.func.max(M.c.next_attempt_at).filter(waiting),
            sa.func.count().filter(M.c.status == PENDING.value, M.c.next_attempt_at <= now),
            sa.func.count().filter(M.c.status == SENDING.value),
            sa.func.count().filter(M.c.status == FAILED.value, M.c.drop_reason == "in_doubt"),
        )
    ).one()
    return Backlog(
        int(row[0]), _aware(row[1]), _aware(row[2]), int(row[3]), int(row[4]), int(row[5])
    )


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _outgoing_email(
    row: Any, attachments: Sequence[Attachment], headers: dict[str, str] | None = None
) -> OutgoingEmail:
    """The row as an e-mail: its stored extra headers, then `headers` (the unsubscribe link,
    computed when it is sent) over them."""
    stored = json.loads(row.headers) if row.headers else {}
    return OutgoingEmail(
        to=[row.recipient] if row.address else [],
        subject=row.subject,
        text=row.text_body,
        html=row.html_body,
        attachments=attachments,
        reply_to=row.reply_to,
        key=message_key(row.kind, row.key),
        headers={**stored, **(headers or {})},
    )


_BODY = re.compile(r"<body[^>]*>(?P<inner>.*)</body>", re.DOTALL | re.IGNORECASE)


def _grouped_email(
    rows: Sequence[Any], files: Mapping[int, list[Attachment]], headers: dict[str, str]
) -> OutgoingEmail:
    """The messages of one person's period as one e-mail: each one's subject as a heading,
    then its text (and HTML, the inside of its body), in the order they were queued."""
    first = rows[0]
    category = KIND_CATEGORY[first.kind]
    count = plural(len(rows), "message", "messages")
    subject = f"{category.label[:1].upper()}{category.label[1:]} : {count} regroupés"
    intro = f"Selon votre préférence, voici en un seul e-mail les {count} de la période."
    texts = [intro]
    texts += [f"{n}. {r.subject}\n\n{r.text_body.strip()}" for n, r in enumerate(rows, 1)]
    parts = []
    for n, row in enumerate(rows, 1):
        found = _BODY.search(row.html_body or "")
        inner = found["inner"] if found else (row.html_body or "")
        if not inner:
            inner = f"<pre>{html.escape(row.text_body)}</pre>"
        parts.append(f"<section><h2>{n}. {html.escape(row.subject)}</h2>{inner}</section>")
    stored = json.loads(first.headers) if first.headers else {}
    return OutgoingEmail(
        to=[first.recipient],
        subject=clean_subject(subject),
        text="\n\n— — —\n\n".join(texts) + "\n",
        html=f'<!DOCTYPE html><html lang="fr"><body><p>{html.escape(intro)}</p>'
        + "".join(parts)
        + "</body></html>",
        attachments=[a for r in rows for a in files.get(r.id, [])],
        reply_to=first.reply_to,
        key=message_key(first.kind, f"group:{first.key}"),
        headers={**stored, **headers},
    )


BEFORE_CONTENT = [
    DeliveryPhase.CLAIMED.value,
    DeliveryPhase.CONNECTED.value,
    DeliveryPhase.ACCEPTED.value,
]

IN_DOUBT_RESENT = (
    "Envoi interrompu après la transmission du contenu, sans réponse du serveur : le message a"
    " peut-être été reçu. Renvoyé avec le même Message-ID (un doublon éventuel est"
    " reconnaissable)."
)
IN_DOUBT_HELD = (
    "Envoi interrompu pendant la remise (arrêt brutal après la transmission du contenu) : le"
    " message a peut-être été reçu. Il n'est pas renvoyé automatiquement, pour éviter un"
    " doublon ; vérifiez auprès du destinataire, puis remettez-le en file si besoin avec"
    " « tiflow envois --relancer {id} »."
)


def _settle(
    row: Any,
    results: list[DeliveryResult],
    policy: DeliveryPolicy,
    now: datetime,
    correlation_id: str | None,
    personal: bool = False,
) -> dict[str, Any]:
    """Column values after one attempt, from the per-recipient/per-channel results.
    ``personal``: sent to the person's own channel, whose services are retried one by one
    like a tag's channels."""
    attempts = row.attempts + 1
    values: dict[str, Any] = {
        "attempts": attempts,
        "claim_token": None,
        "send_started_at": None,
        "sent_by": correlation_id,
    }
    if not results:
        return values | {
            "status": DROPPED.value,
            "drop_reason": "no_channel",
            "last_error": f"Aucun destinataire ni canal configuré pour l'étiquette « {row.tag} »"
            " : rien à envoyer.",
        }
    ok = [r for r in results if r.ok]
    temp = [r for r in results if not r.ok and not r.permanent]
    perm = [r for r in results if not r.ok and r.permanent]
    values["channel"] = ", ".join(sorted({r.channel for r in ok or results}))[:64]
    errors = "; ".join(f"{r.recipient} : {r.error}" for r in (*temp, *perm))
    if not temp and not perm:
        return values | {
            "status": SENT.value,
            "sent_at": now,
            "last_error": None,
            "retry_only": None,
        }
    doubt = [r for r in temp if r.in_doubt]
    if doubt and not policy.resends_in_doubt(row.kind):
        return values | {
            "status": FAILED.value,
            "drop_reason": "in_doubt",
            "last_error": IN_DOUBT_HELD.format(id=row.id) + f" Détail : {errors}",
        }
    if temp and attempts < policy.max_attempts:
        several = personal or not row.address
        retry_only = json.dumps(sorted(r.recipient for r in temp)) if several else None
        return values | {
            "status": PENDING.value,
            "next_attempt_at": now + policy.backoff(attempts),
            "last_error": f"Échec temporaire (tentative {attempts}), nouvel essai prévu : {errors}",
            "retry_only": retry_only if ok else row.retry_only,
        }
    prefix = f"Abandon après {attempts} tentatives" if temp else "Refus définitif du destinataire"
    return values | {"status": FAILED.value, "last_error": f"{prefix} : {errors}"}


def _recover_interrupted(
    conn: Connection, policy: DeliveryPolicy, now: datetime, report: DeliveryReport
) -> None:
    """Rows left ``sending`` by a round that died mid-send (after ``in_doubt_after``, when no
    live round can still own them). Their durable phase decides: content never sent → sent
    again; content sent (or phase unknown) → in doubt: resent, or held for the operator."""
    stuck = sa.and_(M.c.status == SENDING.value, M.c.send_started_at < now - policy.in_doubt_after)
    released = {"claim_token": None, "send_started_at": None}
    report.resumed += conn.execute(
        sa.update(M)
        .where(stuck, M.c.delivery_phase.in_(BEFORE_CONTENT))
        .values(
            status=PENDING.value,
            next_attempt_at=now,
            last_error="Envoi interrompu avant la transmission du contenu : renvoyé.",
            **released,
        )
    ).rowcount
    doubt = sa.and_(
        stuck, sa.or_(M.c.delivery_phase.is_(None), M.c.delivery_phase.not_in(BEFORE_CONTENT))
    )
    held = sorted(policy.hold_in_doubt)
    if policy.resend_in_doubt:
        report.in_doubt += conn.execute(
            sa.update(M)
            .where(doubt, M.c.kind.not_in(held))
            .values(
                status=PENDING.value, next_attempt_at=now, last_error=IN_DOUBT_RESENT, **released
            )
        ).rowcount
    hold = sa.true() if not policy.resend_in_doubt else M.c.kind.in_(held)
    for row_id in conn.execute(sa.select(M.c.id).where(doubt, hold)).scalars():
        report.in_doubt += conn.execute(
            sa.update(M)
            .where(M.c.id == row_id, M.c.status == SENDING.value)
            .values(
                status=FAILED.value,
                drop_reason="in_doubt",
                last_error=IN_DOUBT_HELD.format(id=row_id),
                **released,
            )
        ).rowcount


def _drop_stale(conn: Connection, ids: list[int], report: DeliveryReport) -> set[int]:
    """Drop the pending rows whose facts changed since they were enqueued."""
    if not ids:
        return set()
    items = conn.execute(
        sa.select(I.c.message_id, I.c.item_key, I.c.ref_kind, I.c.ref_id, I.c.fingerprint).where(
            one_of(I.c.message_id, ids)
        )
    ).all()
    if not items:
        return set()
    refs: dict[str, set[int]] = defaultdict(set)
    for item in items:
        refs[item.ref_kind].add(item.ref_id)
    current = current_fingerprints(conn, refs)
    stale: dict[int, list[str]] = defaultdict(list)
    for item in items:
        if not matches(item.fingerprint, current.get((item.ref_kind, item.ref_id))):
            stale[item.message_id].append(item.item_key)
    for message_id, keys in stale.items():
        report.dropped += conn.execute(
            sa.update(M)
            .where(M.c.id == message_id, M.c.status == PENDING.value)
            .values(
                status=DROPPED.value,
                drop_reason="stale",
                last_error="Non envoyé : l'échéance, le pilote ou l'état a changé depuis la mise"
                f" en file ({plural(len(keys), 'élément périmé', 'éléments périmés')},"
                f" dont {keys[0]}).",
            )
        ).rowcount
    return set(stale)


def deliver_pending(
    engine: Engine,
    deliverer: Deliverer,
    *,
    policy: DeliveryPolicy | None = None,
    kinds: Collection[str] | None = None,
    ids: Collection[int] | None = None,
    now: datetime | None = None,
    correlation_id: str | None = None,
    on_sent: Callable[[int], None] | None = None,
    share: tuple[int, int] = (0, 1),
) -> DeliveryReport:
    """One delivery round: send every due ``pending`` row (or those of ``kinds``/``ids``).

    ``deliverer`` must be open (``with open_deliverer(...) as d``): one per round, its SMTP
    connection reused for every message. ``now`` fixes the clock (tests, catch-up runs).
    ``on_sent(id)`` is called after each sent row is committed (progress, tests). A database
    that stays locked ends the round with :class:`models.errors.DatabaseBusy` (French).
    ``share=(i, n)``: only the rows of the i-th of n shares of the addresses (see
    :func:`deliver_in_parallel`, which runs the n shares at once); such a report carries no
    backlog, the whole round's does."""
    policy = policy or DeliveryPolicy()
    clock: Callable[[], datetime] = (lambda: now) if now is not None else utcnow
    report = DeliveryReport()
    started = time.perf_counter()
    round_ = _Round(deliverer, uuid.uuid4().hex, policy, clock, report, correlation_id, on_sent)
    scope = _scope(kinds, ids)
    # AUTOCOMMIT: every statement below is its own transaction, durable when it returns
    # (one round trip on PostgreSQL instead of BEGIN/UPDATE/COMMIT). Each claim and each
    # outcome is a single UPDATE, so nothing here needs a wider transaction. Claims go
    # through a second connection whose commits are not flushed to disk on their own (see
    # _claims_connection): the data_sent record's flush makes the claim durable with it.
    with (
        engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn,
        _claims_connection(engine) as claims,
    ):
        round_.conn, round_.claims = conn, claims
        # PostgreSQL: each outcome travels with the next claim (see _Round._claim), unless
        # the caller watches between the two (on_sent: it must find the next row unclaimed).
        round_.pairs_outcomes = conn.dialect.name == "postgresql" and on_sent is None
        round_.write(lambda: _recover_interrupted(conn, policy, clock(), report), "la reprise")
        try:
            _deliver_chunks(round_, policy, clock, scope, share)
        except BaseException:
            round_.record_left_outcome(quietly=True)  # the error that stopped it comes first
            raise
        if share[1] == 1:
            report.backlog = _backlog_after(conn, clock())
    report.elapsed = time.perf_counter() - started
    log.info("outbox round: %s", report.summary())
    return report


# A connection's login and first exchanges cost a few hundred ms on a real server: below this
# many messages for each, one more connection would cost about what it saves.
MESSAGES_PER_CONNECTION = 100


def deliver_in_parallel(
    engine: Engine,
    open_one: Callable[[], AbstractContextManager[Deliverer]],
    *,
    connections: int,
    policy: DeliveryPolicy | None = None,
    kinds: Collection[str] | None = None,
    now: datetime | None = None,
    correlation_id: str | None = None,
) -> DeliveryReport:
    """One delivery round over up to ``connections`` SMTP connections at once.

    Each connection (``open_one()``, one Deliverer) runs :func:`deliver_pending` on its share
    of the addresses (:func:`share_of`), in its own thread. A round waits mostly on the SMTP
    server's replies and the database's flushes, so two connections send nearly twice as fast
    — the guarantees are each share's, kept apart by the claims as two rounds started at once
    are. A second connection opens only for :data:`MESSAGES_PER_CONNECTION` messages each.
    The first error of a share is raised once every share has ended; the report adds them
    up, with the backlog read after the last."""
    policy = policy or DeliveryPolicy()
    started = time.perf_counter()
    scope = _scope(kinds, None)
    due = retry_when_busy(
        partial(_due_count, engine, policy, now or utcnow(), scope), "la lecture des messages"
    )
    shares = max(1, min(connections, due // MESSAGES_PER_CONNECTION))

    def deliver_share(index: int) -> DeliveryReport:
        with open_one() as deliverer:
            return deliver_pending(
                engine,
                deliverer,
                policy=policy,
                kinds=kinds,
                now=now,
                correlation_id=correlation_id,
                share=(index, shares),
            )

    if shares == 1:
        return deliver_share(0)
    with ThreadPoolExecutor(shares, thread_name_prefix="tiflow-delivery") as pool:
        futures = [pool.submit(deliver_share, index) for index in range(shares)]
    for future in futures:
        if (error := future.exception()) is not None:
            raise error
    report = _merged([f.result() for f in futures])
    with engine.connect() as conn:
        report.backlog = _backlog_after(conn, now or utcnow())
    report.elapsed = time.perf_counter() - started
    log.info("outbox round over %s connections: %s", shares, report.summary())
    return report


def _scope(
    kinds: Collection[str] | None, ids: Collection[int] | None
) -> list[sa.ColumnElement[bool]]:
    """The conditions a round's reads add to « due »: only these kinds, only these ids."""
    scope: list[sa.ColumnElement[bool]] = []
    if kinds is not None:
        scope.append(M.c.kind.in_(sorted(kinds)))
    if ids is not None:
        scope.append(M.c.id.in_(sorted(ids)))
    return scope


def _due_count(
    engine: Engine, policy: DeliveryPolicy, now: datetime, scope: list[sa.ColumnElement[bool]]
) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).where(_due(policy, now), *scope)).scalar_one()
        )


def _merged(reports: list[DeliveryReport]) -> DeliveryReport:
    """The shares' reports as one round's: counts added up, failures in id order."""
    total = DeliveryReport()
    for part in reports:
        total.add(part)
    total.failures.sort(key=lambda failure: failure.id)
    return total


def _deliver_chunks(
    round_: _Round,
    policy: DeliveryPolicy,
    clock: Callable[[], datetime],
    scope: list[sa.ColumnElement[bool]],
    share: tuple[int, int],
) -> None:
    """Every due row (of ``share``), one chunk at a time, in id order: groups as one e-mail,
    others alone."""
    conn, report = round_.conn, round_.report
    last_id = 0
    while True:
        round_.record_left_outcome()  # before the chunk's reads: it never waits on them
        due = partial(_due_rows, conn, policy, clock(), last_id, scope)
        rows = round_.write(due, "la lecture des messages")
        if not rows:
            break
        last_id = rows[-1].id
        rows = [r for r in rows if share_of(r, share[1]) == share[0]]
        aged = [r.id for r in rows if policy.needs_recheck(r.created_at, clock())]
        check = partial(_drop_stale, conn, aged, report)
        stale = round_.write(check, "la vérification des messages")
        live = [r for r in rows if r.id not in stale]
        files = _attachments(conn, [r.id for r in live])
        chosen = chosen_channels(conn, live)
        groups, grouped = _leads(live, period_groups(conn, live, clock()))
        for row in live:
            if row.id in groups:
                round_.deliver_group(groups[row.id], chosen.get(row.id))
            elif row.id not in grouped:
                round_.deliver_one(row, files[row.id], chosen.get(row.id))


def share_of(row: Any, shares: int) -> int:
    """Which of ``shares`` connections sends ``row``: by its address (its apprise tag for a
    row without one), so that every message of one mailbox — a period's group included — goes
    over one connection, in id order, as in a round over one connection. crc32, not hash():
    the same share in every process."""
    if shares == 1:
        return 0
    return zlib.crc32((row.address or row.tag).encode()) % shares


def _leads(live: list[Any], groups: list[list[Any]]) -> tuple[dict[int, list[Any]], set[int]]:
    """Each group under its first row in this chunk (a group without one waits for its own
    chunk), and the ids of the rows that go with another one."""
    ids = {r.id for r in live}
    leads: dict[int, list[Any]] = {}
    for group in groups:
        lead = next((r.id for r in group if r.id in ids), None)
        if lead is not None:
            leads[lead] = group
    return leads, {r.id for g in leads.values() for r in g} - set(leads)


@contextmanager
def _claims_connection(engine: Engine) -> Iterator[Connection]:
    """The round's connection for claims: each claim is committed (visible to every other
    round at once, so two rounds never both get a row) but not flushed to disk by itself —
    SQLite in WAL mode: ``synchronous=NORMAL``; PostgreSQL: ``synchronous_commit=off``.

    That keeps the guarantee, and saves one disk flush per message: the content never leaves
    before the ``data_sent`` record is committed *and flushed* (default durability, on the
    other connection), and that flush writes out the whole log, the claim included. A claim
    lost in a power cut is therefore one whose message never reached the server: the row is
    pending again and sent once. A process killed after a claim loses nothing (the log is
    the operating system's, not the process's). Another SQLite journal mode keeps full
    durability for claims too."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        restore = None
        if conn.dialect.name == "sqlite":
            if str(conn.exec_driver_sql("PRAGMA journal_mode").scalar()).lower() == "wal":
                restore = (
                    f"PRAGMA synchronous={conn.exec_driver_sql('PRAGMA synchronous').scalar()}"
                )
                conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
        elif conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET synchronous_commit = off")
            restore = "RESET synchronous_commit"
        try:
            yield conn
        finally:
            if restore is not None:
                conn.exec_driver_sql(restore)  # the pooled connection goes back as it came


def _due(policy: DeliveryPolicy, now: datetime) -> sa.ColumnElement[bool]:
    """The rows a round sends now."""
    due: sa.ColumnElement[bool] = M.c.next_attempt_at <= now
    if policy.ignore_backoff:  # a tried row waits for its back-off; a scheduled one stays
        due = sa.or_(due, M.c.attempts > 0)
    return sa.and_(M.c.status == PENDING.value, due)


def _due_rows(
    conn: Connection,
    policy: DeliveryPolicy,
    now: datetime,
    last_id: int,
    scope: list[sa.ColumnElement[bool]],
) -> list[Any]:
    return list(
        conn.execute(
            sa.select(M)
            .where(_due(policy, now), M.c.id > last_id, *scope)
            .order_by(M.c.id)
            .limit(policy.chunk_size)
        ).all()
    )


def _attachments(conn: Connection, ids: list[int]) -> dict[int, list[Attachment]]:
    files: dict[int, list[Attachment]] = defaultdict(list)
    if ids:
        for att in conn.execute(
            sa.select(A.c.message_id, A.c.filename, A.c.content_type, A.c.data)
            .where(one_of(A.c.message_id, ids))
            .order_by(A.c.id)
        ):
            files[att.message_id].append(
                Attachment(att.filename, att.content_type, bytes(att.data))
            )
    return files


def _backlog_after(conn: Connection, now: datetime) -> Backlog | None:
    try:
        return backlog(conn, now)
    except sa.exc.DBAPIError as error:  # only a figure for the summary: never fail for it
        if not is_busy(error):
            raise
        return None


# Built once: per message, SQLAlchemy then only binds values (statement construction cost
# ~0.15 ms each, a measurable share of a round).
_CLAIM = (
    sa.update(M)
    .where(M.c.id == sa.bindparam("row_id"), M.c.status == PENDING.value)
    .values(
        status=SENDING.value,
        claim_token=sa.bindparam("token"),
        send_started_at=sa.bindparam("started"),
        delivery_phase=DeliveryPhase.CLAIMED.value,
    )
)
_DATA_SENT = (
    sa.update(M)
    .where(M.c.id == sa.bindparam("row_id"), M.c.claim_token == sa.bindparam("token"))
    .values(delivery_phase=DeliveryPhase.DATA_SENT.value)
)


@lru_cache(maxsize=32)
def _outcome(columns: frozenset[str]) -> sa.Update:
    """UPDATE of an attempt's outcome, for rows this round claimed (one per set of columns)."""
    return (
        sa.update(M)
        .where(M.c.id == sa.bindparam("row_id"), M.c.claim_token == sa.bindparam("token"))
        .values({name: sa.bindparam(name, type_=M.c[name].type) for name in sorted(columns)})
    )


@lru_cache(maxsize=32)
def _claim_after(columns: frozenset[str]) -> sa.Update:
    """PostgreSQL: the previous row's outcome (its values bound as ``done_<column>``, its id as
    ``done_id``) and the claim of the next, in one statement — one transaction, one round
    trip. The two rows differ, so the two updates never meet."""
    recorded = (
        sa.update(M)
        .where(M.c.id == sa.bindparam("done_id"), M.c.claim_token == sa.bindparam("token"))
        .values({n: sa.bindparam(f"done_{n}", type_=M.c[n].type) for n in sorted(columns)})
        .returning(M.c.id)
        .cte("recorded")
    )
    return _CLAIM.add_cte(recorded)


class PhaseRecorder:
    """How far one attempt got. ``data_sent`` is committed *before* the content leaves (the
    transport calls this between the server's 354 and the content): a row left ``sending``
    without it never reached the server. The other phases travel with the outcome."""

    def __init__(self, round_: _Round, row_id: int) -> None:
        self.round, self.row_id = round_, row_id
        self.phase = DeliveryPhase.CLAIMED

    def __call__(self, phase: DeliveryPhase) -> None:
        if phase == DeliveryPhase.DATA_SENT and self.phase.rank < phase.rank:
            # A busy database raises DatabaseBusy here: the content is then never sent.
            self.round.write(
                lambda: self.round.execute(_DATA_SENT, self.row_id), "l'enregistrement de l'envoi"
            )
        if self.phase.rank < phase.rank:
            self.phase = phase


class _GroupPhase:
    """How far the one e-mail of a group got, recorded on each of its rows."""

    def __init__(self, recorders: list[PhaseRecorder]) -> None:
        self.recorders = recorders

    @property
    def phase(self) -> DeliveryPhase:
        return self.recorders[0].phase

    def __call__(self, phase: DeliveryPhase) -> None:
        for recorder in self.recorders:
            recorder(phase)


class _Round:
    """One delivery round's state, and the sending of one row (claim, send, outcome)."""

    conn: Connection  # outcomes, data_sent: committed and flushed
    claims: Connection  # claims: committed, flushed with the next data_sent (see above)
    pairs_outcomes = False  # PostgreSQL: an outcome waits for the next claim (see _claim)

    def __init__(
        self,
        deliverer: Deliverer,
        token: str,
        policy: DeliveryPolicy,
        clock: Callable[[], datetime],
        report: DeliveryReport,
        correlation_id: str | None,
        on_sent: Callable[[int], None] | None,
    ) -> None:
        self.deliverer, self.token, self.policy, self.clock = deliverer, token, policy, clock
        self.report, self.correlation_id, self.on_sent = report, correlation_id, on_sent
        self.settings = load_settings()  # once per round, not per message
        self.unrecorded: tuple[Any, dict[str, Any]] | None = None  # (row, outcome): see _claim

    def write(self, action: Callable[[], T], what: str) -> T:
        """``action`` (one autocommit statement or a few), retried while the database is busy."""
        return retry_when_busy(action, what)

    def execute(
        self, statement: sa.Executable, row_id: int, *, on: Connection | None = None, **values: Any
    ) -> int:
        params = {**values, "row_id": row_id, "token": self.token}
        return int((on or self.conn).execute(statement, params).rowcount)

    def deliver_one(
        self, row: Any, attachments: list[Attachment], channel: str | None = None
    ) -> None:
        """Claim, send, record one row. ``channel``: the ``canal-…`` its person chose."""
        # Claimed first, built then: the claim may carry the previous row's outcome, which
        # must be committed right after that row's reply, not after this row is built.
        if not self._claim(row.id):
            self.report.skipped += 1
            return
        try:
            email = _outgoing_email(
                row, attachments, list_unsubscribe(self.conn, row, self.settings)
            )
        except InvalidAddress as exc:  # e.g. an address edited by hand in the table
            self._refuse(
                row,
                f"Message non envoyé : adresse e-mail invalide « {exc.address} ». Corrigez-la"
                " dans la fiche de la personne.",
            )
            return
        except (ValueError, TypeError):
            log.exception("outbox row %s cannot be built", row.id)
            self._refuse(row, "Message invalide, non envoyé (détail dans le journal).")
            return
        personal = bool(self.deliverer.personal_channel(channel))
        only: list[str] | None = [row.address] if row.address and not personal else None
        if (personal or not row.address) and row.retry_only:
            only = json.loads(row.retry_only)
        progress = PhaseRecorder(self, row.id)
        results = self._send(email, row, only, progress, channel if personal else None, [row])
        self._record(row, results, progress.phase, personal)

    def _claim(self, row_id: int) -> bool:
        """Only one round can move a row from pending to sending. On PostgreSQL the previous
        row's outcome, if not yet recorded, is committed with this claim (`_claim_after`):
        one round trip per message less, and the outcome's commit comes as soon as it would
        alone — nothing is done between the previous reply and this claim. That commit is
        flushed (the outcome needs it); a claim alone goes through `claims`."""
        if self.unrecorded is None:
            claim = partial(self.execute, _CLAIM, row_id, on=self.claims, started=self.clock())
            return bool(self.write(claim, "la prise en charge"))
        done, outcome = self.unrecorded
        values = {f"done_{name}": value for name, value in outcome.items()}
        paired = partial(
            self.execute,
            _claim_after(frozenset(outcome)),
            row_id,
            started=self.clock(),
            done_id=done.id,
            **values,
        )
        claimed = self.write(paired, "l'enregistrement du résultat et la prise en charge")
        self.unrecorded = None
        self._count(done, outcome)
        return bool(claimed)

    def record_left_outcome(self, *, quietly: bool = False) -> None:
        """The outcome still waiting for a claim, committed alone: before the round reads or
        writes anything else, and at its end. ``quietly``: the round is already failing; a
        database error here is logged, the round's own error is the one raised."""
        if self.unrecorded is None:
            return
        row, values = self.unrecorded
        self.unrecorded = None
        try:
            self._write_outcome(row, values)
        except Exception:
            if not quietly:
                raise
            log.exception("outcome of outbox row %s not recorded (in doubt)", row.id)

    def _send(
        self,
        email: OutgoingEmail,
        row: Any,
        only: list[str] | None,
        progress: Progress,
        channel: str | None,
        rows: list[Any],
    ) -> list[DeliveryResult]:
        try:
            return self.deliverer.deliver(
                email, row.tag, only=only, progress=progress, channel=channel
            )
        except DatabaseBusy:
            raise  # not sent (see PhaseRecorder): the row is resumed once the lock is gone
        except Exception as exc:  # a bug, not a delivery failure: keep the row, retry later
            log.exception("delivery of outbox rows %s raised", [r.id for r in rows])
            error = f"erreur interne pendant l'envoi ({type(exc).__name__}), voir le journal"
            return [temporary(row.address or row.tag, error)]

    def _record(
        self, row: Any, results: list[DeliveryResult], phase: DeliveryPhase, personal: bool
    ) -> None:
        values = _settle(row, results, self.policy, self.clock(), self.correlation_id, personal)
        values["delivery_phase"] = phase.value
        self.record_left_outcome()  # a group's earlier rows
        if self.pairs_outcomes:
            self.unrecorded = (row, values)  # committed with the next claim (see _claim)
        else:
            self._write_outcome(row, values)

    def _write_outcome(self, row: Any, values: dict[str, Any]) -> None:
        self.write(
            lambda: self.execute(_outcome(frozenset(values)), row.id, **values),
            "l'enregistrement du résultat",
        )
        self._count(row, values)

    def deliver_group(self, rows: list[Any], channel: str | None) -> None:
        """The rows of one person's period (:func:`period_groups`) as one e-mail: each row is
        claimed, and the same outcome recorded on each, so every message goes once, together."""
        ids = [r.id for r in rows]
        self.record_left_outcome()  # before the group's own reads and writes
        stale = self.write(partial(_drop_stale, self.conn, ids, self.report), "la vérification")
        files = _attachments(self.conn, ids)
        claimed = [r for r in rows if r.id not in stale and self._claim(r.id)]
        self.report.skipped += len(rows) - len(stale) - len(claimed)
        if not claimed:
            return
        first = claimed[0]
        email = _grouped_email(claimed, files, list_unsubscribe(self.conn, first, self.settings))
        personal = bool(self.deliverer.personal_channel(channel))
        only = None if personal else [first.address]
        progress = _GroupPhase([PhaseRecorder(self, r.id) for r in claimed])
        results = self._send(email, first, only, progress, channel if personal else None, claimed)
        for row in claimed:
            self._record(row, results, progress.phase, personal)

    def _refuse(self, row: Any, error: str) -> None:
        """A row this round claimed, failed without being sent (it cannot be built)."""
        self.conn.execute(
            sa.update(M)
            .where(M.c.id == row.id, M.c.claim_token == self.token)
            .values(status=FAILED.value, last_error=error, claim_token=None, send_started_at=None)
        )
        self.report.failed += 1
        self.report.failures.append(Failure(row.id, row.kind, row.recipient or row.tag, error))

    def _count(self, row: Any, values: dict[str, Any]) -> None:
        status = values["status"]
        if status == SENT.value:
            self.report.sent += 1
            if self.on_sent is not None:
                self.on_sent(row.id)
        elif status == PENDING.value:
            self.report.retry += 1
        elif status == FAILED.value:
            self.report.failed += 1
            self.report.failures.append(
                Failure(row.id, row.kind, row.recipient or row.tag, values["last_error"])
            )
        else:
            self.report.dropped += 1


def open_deliverer(settings: Settings) -> Deliverer:
    """The Deliverer of a round: apprise configuration from TIFLOW_NOTIFY_CONFIG, or .eml files
    in ``settings.outbox_dir`` when it is empty. Use it as a context manager."""
    return Deliverer(settings.notify_config, outbox=settings.outbox_dir, sender_name=SENDER_NAME)


# ---------------------------------------------------------------------------------------------
# Operator helpers


def requeue(uow: UnitOfWork, ids: Collection[int], *, now: datetime | None = None) -> int:
    """Put failed or dropped rows back in the queue (after the coordinator checked them)."""
    result = uow.session.execute(
        sa.update(M)
        .where(M.c.id.in_(sorted(ids)), M.c.status.in_([FAILED.value, DROPPED.value]))
        .values(
            status=PENDING.value,
            next_attempt_at=now or utcnow(),
            attempts=0,
            drop_reason=None,
            retry_only=None,
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def requeue_once(uow: UnitOfWork, message_id: int, *, now: datetime | None = None) -> Any:
    """The operator's « relancer »: a failed (or in-doubt) message back in the queue, once.

    Same key, so the same Message-ID. French errors for an unknown message, one that is not
    failed, or one already put back by hand (a second time would be a loop, not a check)."""
    now = now or utcnow()
    row = uow.session.execute(sa.select(M).where(M.c.id == message_id)).one_or_none()
    if row is None:
        raise NotFound(f"Aucun message n° {message_id} dans la boîte d'envoi.")
    if row.status != FAILED.value:
        raise TiflowError(
            f"Le message n° {message_id} est « {OutboxStatus(row.status).label} » : seul un"
            " message en échec (ou incertain) peut être remis en file."
        )
    if row.requeued_at is not None:
        raise TiflowError(
            f"Le message n° {message_id} a déjà été remis en file à la main le"
            f" {format_datetime(_aware(row.requeued_at) or now)} : il ne l'est qu'une fois."
            " Vérifiez l'adresse ou le serveur avant tout nouvel envoi."
        )
    uow.session.execute(
        sa.update(M)
        .where(M.c.id == message_id, M.c.status == FAILED.value)
        .values(
            status=PENDING.value,
            next_attempt_at=now,
            attempts=0,
            drop_reason=None,
            requeued_at=now,
            last_error=f"Remis en file à la main le {format_datetime(now)} (précédemment :"
            f" {row.last_error or 'échec'})"[:4000],
        )
    )
    return row


IN_DOUBT_FILTER = "incertain"


def list_messages(
    session: sa.orm.Session,
    *,
    person: str | None = None,
    action_ids: Collection[int] | None = None,
    kind: str | None = None,
    status: str | None = None,
    limit: int = 200,
) -> list[Any]:
    """Outbox rows for the operator, newest first: per person (name or address, any part),
    per action (what the message is about), per kind, per status (``incertain`` too)."""
    query = sa.select(M).order_by(M.c.id.desc()).limit(limit)
    if person:
        like = f"%{person.strip().lower()}%"
        query = query.where(sa.or_(sa.func.lower(M.c.recipient).like(like), M.c.address.like(like)))
    if kind:
        query = query.where(M.c.kind == kind)
    if status == IN_DOUBT_FILTER:
        query = query.where(M.c.status == FAILED.value, M.c.drop_reason == "in_doubt")
    elif status:
        query = query.where(M.c.status == status)
    if action_ids is not None:
        query = query.where(M.c.id.in_(_messages_about(sorted(action_ids))))
    return list(session.execute(query).all())


def _messages_about(action_ids: list[int]) -> sa.Select[Any]:
    """Ids of the messages with an item about one of these actions (directly, or through a
    milestone or a funding line of theirs)."""
    ms = Milestone.__table__.c  # type: ignore[attr-defined]
    fs = Funding.__table__.c  # type: ignore[attr-defined]
    return sa.select(I.c.message_id).where(
        sa.or_(
            sa.and_(I.c.ref_kind.in_([ACTION_END, NUDGE]), I.c.ref_id.in_(action_ids)),
            sa.and_(
                I.c.ref_kind == MILESTONE,
                I.c.ref_id.in_(sa.select(ms.id).where(ms.action_id.in_(action_ids))),
            ),
            sa.and_(
                I.c.ref_kind.in_(FUNDING_KINDS),
                I.c.ref_id.in_(sa.select(fs.id).where(fs.action_id.in_(action_ids))),
            ),
        )
    )


def status_counts(uow: UnitOfWork, kinds: Collection[str] | None = None) -> dict[str, int]:
    """Rows per status (all kinds, or ``kinds``), for reports and artifacts."""
    query = sa.select(M.c.status, sa.func.count()).group_by(M.c.status)
    if kinds is not None:
        query = query.where(M.c.kind.in_(sorted(kinds)))
    return {str(status): int(n) for status, n in uow.session.execute(query)}
