"""The outbox: every message is stored before anything is sent, then delivered in rounds.

Two calls make the whole API::

    with UnitOfWork(engine) as uow:                       # 1. in the caller's transaction
        enqueue(uow, [NewMessage(key="budget:2025:grand-est-touraine", kind="budget",
                                 tag="coordinator", to=[Recipient.of(person)], subject=...,
                                 text=text, html=html, attachments=[xlsx])])
        uow.commit()                                      # the message exists, or nothing does
    with open_deliverer(load_settings()) as deliverer:    # 2. one delivery round
        report = deliver_pending(engine, deliverer)

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
* **Never twice, and the one residual risk.** A round claims each row just before sending it
  (``pending -> sending``, a conditional UPDATE committed on its own: two rounds running at once
  never both get it) and records the outcome right after, in its own small commit. A crash
  *between* the SMTP server's "250 OK" and that commit (a window of about a millisecond per
  message: kill -9, power loss) leaves that one row ``sending``; nobody can know whether it
  arrived. After ``in_doubt_after`` the next round marks it ``failed`` with an explicit error
  and does **not** resend it (``resend_in_doubt=True`` resends instead, preferring a possible
  duplicate to a possible loss). Either way the Message-ID is derived from the key and the
  recipient, so a copy sent twice carries the same Message-ID and mail clients that
  de-duplicate treat it as one. Python exceptions (a failing hook, a database error) happen
  outside that window: rows not yet claimed stay ``pending`` and the next round sends them
  exactly once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection, Engine

from models.deadlines import current_fingerprints, matches
from models.outbox import OutboxAttachment, OutboxItem, OutboxMessage, OutboxStatus
from models.settings import Settings
from models.tables import Person
from models.uow import UnitOfWork
from models.vocabulary import Role
from notifications.config import check_tag
from notifications.message import (
    Attachment,
    InvalidAddress,
    Mailbox,
    OutgoingEmail,
    clean_subject,
    parse_mailbox,
)
from notifications.smtp import DeliveryResult, temporary
from notifications.transports import Deliverer

log = logging.getLogger(__name__)

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
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------------
# Enqueue


@dataclass(frozen=True)
class Recipient:
    """One person to write to: ``mailbox`` is ``addr`` or ``Display Name <addr>``."""

    mailbox: str
    person_id: int | None = None

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
        rows.setdefault("", dict(base, person_id=None, address="", recipient=""))
    return list(rows.values())


def _insert_ignoring_duplicates(dialect: str) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    inserts: dict[str, Callable[..., Any]] = {
        "postgresql": postgresql.insert,
        "sqlite": sqlite.insert,
    }
    if dialect not in inserts:  # pragma: no cover - tiflow supports SQLite and PostgreSQL
        raise NotImplementedError(f"outbox: unsupported database {dialect}")
    return (
        inserts[dialect](M)
        .on_conflict_do_nothing(index_elements=["key", "address"])
        .returning(M.c.id, M.c.key, M.c.address)
    )


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
    rows = [row for _, message_rows in by_message for row in message_rows]
    if not rows:
        return result
    session = uow.session
    stmt = _insert_ignoring_duplicates(session.get_bind().dialect.name)
    ids: dict[tuple[str, str], int] = {}
    for start in range(0, len(rows), 1000):
        for inserted in session.execute(stmt, rows[start : start + 1000]):
            ids[(inserted.key, inserted.address)] = inserted.id
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
        session.execute(sa.insert(I), items)
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
    resend_in_doubt: bool = False
    chunk_size: int = 500

    def backoff(self, attempts: int) -> timedelta:
        """Delay before attempt ``attempts + 1``: 15 min, 30 min, 1 h... capped."""
        return min(self.retry_after * (2 ** max(attempts - 1, 0)), self.max_backoff)


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
        default=False,
        title="Renvoyer les messages incertains",
        description="Un envoi interrompu brutalement (arrêt de la machine pendant la remise) a"
        " peut-être abouti. Par défaut il n'est pas renvoyé (pas de doublon) mais signalé en"
        " échec ; cochez pour préférer un doublon possible à une perte possible.",
    )

    def policy(self) -> DeliveryPolicy:
        return DeliveryPolicy(
            max_attempts=self.max_attempts,
            retry_after=timedelta(minutes=self.retry_after_minutes),
            max_backoff=timedelta(hours=self.max_backoff_hours),
            resend_in_doubt=self.resend_in_doubt,
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
    in_doubt: int = 0  # interrupted while sending in an earlier round
    skipped: int = 0  # claimed by another round running at the same time
    elapsed: float = 0.0
    failures: list[Failure] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return self.sent + self.retry + self.failed

    def summary(self) -> str:
        rate = f", {self.sent / self.elapsed:.0f} messages/s" if self.elapsed and self.sent else ""
        return (
            f"{self.sent} envoyé(s), {self.retry} à réessayer, {self.failed} en échec,"
            f" {self.dropped} abandonné(s), {self.in_doubt} incertain(s)"
            f" en {self.elapsed:.1f} s{rate}"
        )


def _outgoing_email(row: Any, attachments: Sequence[Attachment]) -> OutgoingEmail:
    return OutgoingEmail(
        to=[row.recipient] if row.address else [],
        subject=row.subject,
        text=row.text_body,
        html=row.html_body,
        attachments=attachments,
        reply_to=row.reply_to,
        key=message_key(row.kind, row.key),
    )


def _settle(
    row: Any,
    results: list[DeliveryResult],
    policy: DeliveryPolicy,
    now: datetime,
    correlation_id: str | None,
) -> dict[str, Any]:
    """Column values after one attempt, from the per-recipient/per-channel results."""
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
    if temp and attempts < policy.max_attempts:
        retry_only = json.dumps(sorted(r.recipient for r in temp)) if not row.address else None
        return values | {
            "status": PENDING.value,
            "next_attempt_at": now + policy.backoff(attempts),
            "last_error": f"Échec temporaire (tentative {attempts}), nouvel essai prévu : {errors}",
            "retry_only": retry_only if ok else row.retry_only,
        }
    prefix = f"Abandon après {attempts} tentatives" if temp else "Refus définitif du destinataire"
    return values | {"status": FAILED.value, "last_error": f"{prefix} : {errors}"}


def _recover_in_doubt(
    conn: Connection, policy: DeliveryPolicy, now: datetime, report: DeliveryReport
) -> None:
    """Rows left ``sending`` by a round that died mid-send: failed (default) or resent."""
    stuck = sa.and_(M.c.status == SENDING.value, M.c.send_started_at < now - policy.in_doubt_after)
    if policy.resend_in_doubt:
        values = {
            "status": PENDING.value,
            "next_attempt_at": now,
            "last_error": "Envoi interrompu lors d'une tournée précédente : renvoyé (même"
            " Message-ID, un doublon éventuel est reconnaissable).",
        }
    else:
        values = {
            "status": FAILED.value,
            "drop_reason": "in_doubt",
            "last_error": "Envoi interrompu pendant la remise (arrêt brutal) : le message a peut-"
            "être été reçu. Il n'est pas renvoyé automatiquement, pour éviter un doublon ;"
            " vérifiez auprès du destinataire, puis remettez-le en file si besoin.",
        }
    report.in_doubt += conn.execute(
        sa.update(M).where(stuck).values(claim_token=None, send_started_at=None, **values)
    ).rowcount


def _drop_stale(conn: Connection, ids: list[int], report: DeliveryReport) -> set[int]:
    """Drop the pending rows whose facts changed since they were enqueued."""
    items = conn.execute(
        sa.select(I.c.message_id, I.c.item_key, I.c.ref_kind, I.c.ref_id, I.c.fingerprint).where(
            I.c.message_id.in_(ids)
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
                f" en file ({len(keys)} élément(s) périmé(s), dont {keys[0]}).",
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
) -> DeliveryReport:
    """One delivery round: send every due ``pending`` row (or those of ``kinds``/``ids``).

    ``deliverer`` must be open (``with open_deliverer(...) as d``): one per round, its SMTP
    connection reused for every message. ``now`` fixes the clock (tests, catch-up runs).
    ``on_sent(id)`` is called after each sent row is committed (progress, tests)."""
    policy = policy or DeliveryPolicy()
    clock: Callable[[], datetime] = (lambda: now) if now is not None else utcnow
    report = DeliveryReport()
    started = time.perf_counter()
    token = uuid.uuid4().hex
    scope: list[sa.ColumnElement[bool]] = []
    if kinds is not None:
        scope.append(M.c.kind.in_(sorted(kinds)))
    if ids is not None:
        scope.append(M.c.id.in_(sorted(ids)))
    # AUTOCOMMIT: every statement below is its own transaction, durable when it returns
    # (one round trip on PostgreSQL instead of BEGIN/UPDATE/COMMIT). Each claim and each
    # outcome is a single UPDATE, so nothing here needs a wider transaction.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        _recover_in_doubt(conn, policy, clock(), report)
        last_id = 0
        while True:
            rows = conn.execute(
                sa.select(M)
                .where(
                    M.c.status == PENDING.value,
                    M.c.next_attempt_at <= clock(),
                    M.c.id > last_id,
                    *scope,
                )
                .order_by(M.c.id)
                .limit(policy.chunk_size)
            ).all()
            if not rows:
                break
            last_id = rows[-1].id
            stale = _drop_stale(conn, [r.id for r in rows], report)
            live = [r for r in rows if r.id not in stale]
            files: dict[int, list[Attachment]] = defaultdict(list)
            if live:
                for att in conn.execute(
                    sa.select(A.c.message_id, A.c.filename, A.c.content_type, A.c.data)
                    .where(A.c.message_id.in_([r.id for r in live]))
                    .order_by(A.c.id)
                ):
                    files[att.message_id].append(
                        Attachment(att.filename, att.content_type, bytes(att.data))
                    )
            for row in live:
                _deliver_one(
                    conn,
                    deliverer,
                    row,
                    files[row.id],
                    token,
                    policy,
                    clock,
                    report,
                    correlation_id,
                    on_sent,
                )
    report.elapsed = time.perf_counter() - started
    log.info("outbox round: %s", report.summary())
    return report


# Built once: per message, SQLAlchemy then only binds values (statement construction cost
# ~0.15 ms each, a measurable share of a round).
_CLAIM = (
    sa.update(M)
    .where(M.c.id == sa.bindparam("row_id"), M.c.status == PENDING.value)
    .values(
        status=SENDING.value,
        claim_token=sa.bindparam("token"),
        send_started_at=sa.bindparam("started"),
    )
)


@lru_cache(maxsize=32)
def _outcome(columns: frozenset[str]) -> sa.Update:
    """UPDATE of an attempt's outcome, for rows this round claimed (one per set of columns)."""
    return (
        sa.update(M)
        .where(M.c.id == sa.bindparam("row_id"), M.c.claim_token == sa.bindparam("token"))
        .values({name: sa.bindparam(name, type_=M.c[name].type) for name in sorted(columns)})
    )


def _deliver_one(
    conn: Connection,
    deliverer: Deliverer,
    row: Any,
    attachments: list[Attachment],
    token: str,
    policy: DeliveryPolicy,
    clock: Callable[[], datetime],
    report: DeliveryReport,
    correlation_id: str | None,
    on_sent: Callable[[int], None] | None,
) -> None:
    try:
        email = _outgoing_email(row, attachments)
    except (ValueError, TypeError) as exc:  # e.g. an address edited by hand in the table
        error = f"Message invalide, non envoyé : {exc}"
        conn.execute(
            sa.update(M)
            .where(M.c.id == row.id, M.c.status == PENDING.value)
            .values(status=FAILED.value, last_error=error)
        )
        report.failed += 1
        report.failures.append(Failure(row.id, row.kind, row.recipient or row.tag, error))
        return
    # Claim: only one round can move this row from pending to sending.
    claimed = conn.execute(_CLAIM, {"row_id": row.id, "token": token, "started": clock()}).rowcount
    if not claimed:
        report.skipped += 1
        return
    only: list[str] | None = [row.address] if row.address else None
    if not row.address and row.retry_only:
        only = json.loads(row.retry_only)
    try:
        results = deliverer.deliver(email, row.tag, only=only)
    except Exception as exc:  # a bug, not a delivery failure: keep the row, retry later
        log.exception("delivery of outbox row %s raised", row.id)
        results = [temporary(row.address or row.tag, f"{type(exc).__name__}: {exc}")]
    values = _settle(row, results, policy, clock(), correlation_id)
    conn.execute(_outcome(frozenset(values)), {**values, "row_id": row.id, "token": token})
    status = values["status"]
    if status == SENT.value:
        report.sent += 1
        if on_sent is not None:
            on_sent(row.id)
    elif status == PENDING.value:
        report.retry += 1
    elif status == FAILED.value:
        report.failed += 1
        report.failures.append(
            Failure(row.id, row.kind, row.recipient or row.tag, values["last_error"])
        )
    else:
        report.dropped += 1


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


def status_counts(uow: UnitOfWork, kinds: Collection[str] | None = None) -> dict[str, int]:
    """Rows per status (all kinds, or ``kinds``), for reports and artifacts."""
    query = sa.select(M.c.status, sa.func.count()).group_by(M.c.status)
    if kinds is not None:
        query = query.where(M.c.kind.in_(sorted(kinds)))
    return {str(status): int(n) for status, n in uow.session.execute(query)}
