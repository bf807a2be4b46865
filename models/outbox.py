"""The notification outbox: every message is stored here before anything is sent.

One row of ``outbox_message`` is one message to ONE recipient (``address``), or to the
non-e-mail channels of its tag (``address == ""``, e.g. a Slack channel tagged ``copil``).
Its idempotency key is ``(key, address)``: enqueuing the same message twice is a no-op.
``outbox_item`` records what a message is about (a milestone at J-7, a COPIL...) with the
facts it was written for (``fingerprint``), so that a message whose facts changed before it
went out is dropped instead of being sent stale. Attachments (.ics, CSV, XLSX) are stored with
the message, so a retry days later sends exactly what was enqueued.

Life of a row (``status``)::

    pending ──claim──▶ sending ──▶ sent
       ▲                  │  ├───▶ failed   (permanent refusal, too many attempts, in doubt)
       └── temporary ─────┘  └───▶ pending  (SMTP down: retried after a back-off)
    pending ──▶ dropped  (stale facts, superseded by a newer message, nobody to send to)

``delivery_phase`` says how far the last attempt got in the SMTP exchange. Only two steps are
written *before* they happen — ``claimed`` (with the claim) and ``data_sent`` (right after the
server's 354, before the content leaves) — the others with the attempt's outcome. A row left
``sending`` by a killed round is therefore in doubt only at ``data_sent`` (the server may have
accepted it); at ``claimed`` it never reached the server and is simply sent again.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models import clock
from models.types import UTCDateTime, enum_type


def _utcnow() -> datetime:
    return clock.now()


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DROPPED = "dropped"

    @property
    def label(self) -> str:
        return {
            OutboxStatus.PENDING: "en attente",
            OutboxStatus.SENDING: "en cours d'envoi",
            OutboxStatus.SENT: "envoyé",
            OutboxStatus.FAILED: "échec",
            OutboxStatus.DROPPED: "abandonné",
        }[self]


class DeliveryPhase(StrEnum):
    """How far an attempt got (see the module docstring for which steps are durable)."""

    CLAIMED = "claimed"
    CONNECTED = "connected"
    ACCEPTED = "accepted"  # MAIL FROM and RCPT TO accepted
    DATA_SENT = "data_sent"  # the content left, no reply read yet
    REPLIED = "replied"  # the server's final reply to DATA was read

    @property
    def label(self) -> str:
        return {
            DeliveryPhase.CLAIMED: "pris en charge",
            DeliveryPhase.CONNECTED: "connecté au serveur",
            DeliveryPhase.ACCEPTED: "destinataire accepté",
            DeliveryPhase.DATA_SENT: "contenu transmis, sans réponse",
            DeliveryPhase.REPLIED: "réponse du serveur reçue",
        }[self]

    @property
    def rank(self) -> int:
        return _PHASE_RANKS[self]  # read a few times per message sent: not a list each time


_PHASE_RANKS = {phase: rank for rank, phase in enumerate(DeliveryPhase)}


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox_message"
    __table_args__ = (
        sa.UniqueConstraint("key", "address", name="uq_outbox_message_key_address"),
        # The delivery round's query: pending rows whose next attempt is due.
        sa.Index("ix_outbox_message_status_next", "status", "next_attempt_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, description="clé d'idempotence du message")
    address: str = Field(
        default="",
        max_length=254,
        description="adresse (minuscules) ; vide : canaux de l'étiquette",
    )
    recipient: str = Field(default="", max_length=400, description="destinataire tel qu'écrit")
    kind: str = Field(max_length=32, index=True, description="reminder, escalation, digest...")
    tag: str = Field(max_length=32, description="étiquette apprise : pilots, copil, coordinator")
    territory_id: int | None = Field(default=None, foreign_key="territory.id", index=True)
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    subject: str = Field(max_length=500)
    text_body: str = Field(sa_type=sa.Text)
    html_body: str | None = Field(default=None, sa_type=sa.Text)
    reply_to: str | None = Field(default=None, max_length=400)
    headers: str | None = Field(
        default=None, sa_type=sa.Text, description="en-têtes supplémentaires (JSON)"
    )
    status: OutboxStatus = Field(default=OutboxStatus.PENDING, sa_type=enum_type(OutboxStatus))
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=_utcnow, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    drop_reason: str | None = Field(default=None, max_length=32)
    superseded_by: int | None = Field(default=None, description="message qui l'a remplacé")
    channel: str | None = Field(default=None, max_length=64, description="email, eml, slack...")
    retry_only: str | None = Field(
        default=None, sa_type=sa.Text, description="canaux encore à servir (JSON)"
    )
    claim_token: str | None = Field(default=None, max_length=64)
    delivery_phase: str | None = Field(
        default=None, max_length=16, description="étape atteinte par le dernier essai"
    )
    requeued_at: datetime | None = Field(
        default=None, sa_type=UTCDateTime, description="remis en file à la main (une fois)"
    )
    send_started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=_utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    correlation_id: str | None = Field(default=None, max_length=64, index=True)
    sent_by: str | None = Field(default=None, max_length=64)


class OutboxItem(SQLModel, table=True):
    """One thing a message is about, with the facts it was written for."""

    __tablename__ = "outbox_item"
    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="outbox_message.id", index=True)
    item_key: str = Field(max_length=200, index=True)
    ref_kind: str = Field(max_length=32)
    ref_id: int
    fingerprint: str = Field(max_length=200)
    remind_on: date = Field(index=True)


class OutboxAttachment(SQLModel, table=True):
    __tablename__ = "outbox_attachment"
    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="outbox_message.id", index=True)
    filename: str = Field(max_length=100)
    content_type: str = Field(max_length=200)
    data: bytes = Field(sa_type=sa.LargeBinary)
