"""Routing by preference: when (or whether) an outbox row goes out, given its person's choice.

Called by :func:`notifications.outbox.enqueue` on every row it is about to insert, and by
:func:`reschedule` when a person changes a preference (in that change's transaction). Both
only ever touch ``pending`` rows with a conditional UPDATE or before the insert, so the
outbox's exactly-once holds: a row a delivery round already claimed goes out as it was, a row
still pending goes out once, at its new time. The rules themselves are pure functions in
:mod:`models.preferences`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from models.deadlines import COPIL, NUDGE
from models.outbox import OutboxItem, OutboxMessage, OutboxStatus
from models.preferences import (
    EMAIL,
    IMMEDIATELY,
    KIND_CATEGORY,
    Category,
    Choice,
    Frequency,
    PersonPreference,
    category_of,
    earliest_send,
    obligation_reason,
    unsubscribe_token,
)
from models.settings import Settings, load_settings

M = OutboxMessage.__table__  # type: ignore[attr-defined]
I = OutboxItem.__table__  # type: ignore[attr-defined]  # noqa: E741
P = PersonPreference.__table__  # type: ignore[attr-defined]

OPTED_OUT = "opted_out"  # drop_reason of a row its person chose never to receive

Choices = dict[tuple[int, Category], Choice]


def load_choices(session: Session, person_ids: Iterable[int]) -> Choices:
    """Every stored choice of these people (a person without one gets IMMEDIATELY)."""
    found: Choices = {}
    ordered = sorted(set(person_ids))
    for start in range(0, len(ordered), 2000):
        for row in session.execute(
            sa.select(P).where(P.c.person_id.in_(ordered[start : start + 2000]))
        ):
            choice = Choice(row.frequency, row.weekday, row.hour, row.channel)
            found[(row.person_id, Category(row.category))] = choice
    return found


def categories_of(kind: str, ref_kinds: Collection[str]) -> set[Category]:
    """The categories whose choice a message follows: a reminder holding deadlines and
    nudges follows both (it goes at the earlier of the two)."""
    if kind == "reminder" and ref_kinds:
        found = set()
        if NUDGE in ref_kinds:
            found.add(Category.NUDGES)
        if any(k != NUDGE for k in ref_kinds):
            found.add(Category.DEADLINES)
        return found
    category = category_of(kind)
    return {category} if category is not None else set()


def choices_for(choices: Choices, person_id: int, categories: set[Category]) -> list[Choice]:
    return [choices.get((person_id, c), IMMEDIATELY) for c in sorted(categories)]


def opted_out_text(categories: set[Category]) -> str:
    names = " et ".join(sorted(c.label for c in categories))
    return f"Non envoyé : la personne a choisi de ne pas recevoir les {names} (préférence)."


@dataclass(frozen=True)
class _Digests:
    """The (address, COPIL) pairs that already have a live digest: a digest for a pair not in
    it is the meeting's first for that member, its convocation (an obligation)."""

    pairs: set[tuple[str, int]]

    @classmethod
    def load(cls, session: Session, copil_ids: set[int], before: int | None = None) -> _Digests:
        if not copil_ids:
            return cls(set())
        query = (
            sa.select(M.c.address, I.c.ref_id)
            .join(M, M.c.id == I.c.message_id)
            .where(
                M.c.kind == "digest",
                M.c.status != OutboxStatus.DROPPED.value,
                I.c.ref_kind == COPIL,
                I.c.ref_id.in_(sorted(copil_ids)),
            )
        )
        if before is not None:
            query = query.where(M.c.id < before)
        return cls({(row.address, row.ref_id) for row in session.execute(query)})


def route_rows(session: Session, batches: Sequence[tuple[Any, list[dict[str, Any]]]]) -> None:
    """Set each new row's ``next_attempt_at`` by its person's choice, or drop it (never).

    ``batches``: (NewMessage, its rows) as :func:`notifications.outbox.enqueue` built them."""
    people = {
        row["person_id"]
        for message, rows in batches
        if categories_of(message.kind, {i.ref_kind for i in message.items})
        for row in rows
        if row.get("person_id") is not None
    }
    if not people:
        return
    choices = load_choices(session, people)
    copils = {i.ref_id for m, _ in batches if m.kind == "digest" for i in m.items}
    digests = _Digests.load(session, copils)
    for message, rows in batches:
        categories = categories_of(message.kind, {i.ref_kind for i in message.items})
        meetings = [i.ref_id for i in message.items if i.ref_kind == COPIL]
        for row in rows:
            person = row.get("person_id")
            if person is None or row["status"] != OutboxStatus.PENDING.value:
                continue
            first = message.kind == "digest" and any(
                (row["address"], copil) not in digests.pairs for copil in meetings
            )
            obligation = obligation_reason(message.kind, first_of_meeting=first)
            picked = choices_for(choices, person, categories)
            at = earliest_send(picked, _aware(row["next_attempt_at"]), obligation)
            if at is None:
                row.update(
                    status=OutboxStatus.DROPPED.value,
                    drop_reason=OPTED_OUT,
                    last_error=opted_out_text(categories),
                )
            else:
                row["next_attempt_at"] = at


def reschedule(session: Session, person_id: int, category: Category) -> tuple[int, int]:
    """After ``person_id`` changed their choice for ``category``: move each of their pending
    rows that follows it to the time the new choice gives (counted from when the row was
    queued), or drop it (never). Returns (moved, dropped). Conditional on ``pending``: a row
    a round is sending keeps going, once."""
    rows = list(
        session.execute(
            sa.select(M.c.id, M.c.kind, M.c.address, M.c.created_at).where(
                M.c.person_id == person_id, M.c.status == OutboxStatus.PENDING.value
            )
        )
    )
    if not rows:
        return 0, 0
    ref_kinds: dict[int, set[str]] = defaultdict(set)
    meetings: dict[int, set[int]] = defaultdict(set)
    for item in session.execute(
        sa.select(I.c.message_id, I.c.ref_kind, I.c.ref_id).where(
            I.c.message_id.in_([r.id for r in rows])
        )
    ):
        ref_kinds[item.message_id].add(item.ref_kind)
        if item.ref_kind == COPIL:
            meetings[item.message_id].add(item.ref_id)
    choices = load_choices(session, [person_id])
    moved = dropped = 0
    for row in rows:
        categories = categories_of(row.kind, ref_kinds[row.id])
        if category not in categories:
            continue
        first = row.kind == "digest" and any(
            (row.address, c) not in _Digests.load(session, {c}, before=row.id).pairs
            for c in meetings[row.id]
        )
        obligation = obligation_reason(row.kind, first_of_meeting=first)
        picked = choices_for(choices, person_id, categories)
        at = earliest_send(picked, _aware(row.created_at), obligation)
        pending = sa.update(M).where(M.c.id == row.id, M.c.status == OutboxStatus.PENDING.value)
        if at is None:
            values: dict[str, Any] = {
                "status": OutboxStatus.DROPPED.value,
                "drop_reason": OPTED_OUT,
                "last_error": opted_out_text(categories),
            }
            dropped += session.execute(pending.values(**values)).rowcount  # type: ignore[attr-defined]
        else:
            moved += session.execute(pending.values(next_attempt_at=at)).rowcount  # type: ignore[attr-defined]
    return moved, dropped


def chosen_channels(conn: Connection, rows: Sequence[Any]) -> dict[int, str]:
    """Row id → the ``canal-…`` channel its person chose for the row's category, for the
    rows of one delivery round's chunk whose person chose one (e-mail rows are absent).

    Read when the row goes out, so the current choice counts. One query for the chunk (none
    when nobody in it chose a channel), one more for the reminders' items. A convocation goes
    by e-mail: its invitation (.ics) only travels that way."""
    people = {r.person_id for r in rows if r.person_id is not None and r.address}
    if not people:
        return {}
    chosen = {
        (row.person_id, Category(row.category)): row.channel
        for row in conn.execute(
            sa.select(P.c.person_id, P.c.category, P.c.channel).where(
                P.c.person_id.in_(sorted(people)), P.c.channel != EMAIL
            )
        )
    }
    if not chosen:
        return {}
    choosers = {person for person, _ in chosen}
    rows = [r for r in rows if r.person_id in choosers and category_of(r.kind) is not None]
    ref_kinds: dict[int, set[str]] = defaultdict(set)
    reminders = [r.id for r in rows if r.kind == "reminder"]
    if reminders:
        for item in conn.execute(
            sa.select(I.c.message_id, I.c.ref_kind).where(I.c.message_id.in_(reminders))
        ):
            ref_kinds[item.message_id].add(item.ref_kind)
    found = {}
    for row in rows:
        kinds = ref_kinds[row.id]
        category = category_of(row.kind, only_nudges=bool(kinds) and kinds <= {NUDGE})
        channel = chosen.get((row.person_id, category)) if category else None
        if channel and not (row.kind == "digest" and _is_convocation(conn, row)):
            found[row.id] = channel
    return found


# Categories whose messages come one by one from their producers (a decision, a budget run):
# for a person who chose a daily or weekly sending, the delivery round puts the period's
# messages of one category in one e-mail. Reminders are grouped by the sweep itself, digests
# are one per meeting.
GROUPED = (Category.NOTICES, Category.BUDGET)
GROUPED_KINDS = sorted(k for k, c in KIND_CATEGORY.items() if c in GROUPED)


def period_groups(conn: Connection, rows: Sequence[Any], now: datetime) -> list[list[Any]]:
    """The groups of two or more due ``pending`` rows that go as one e-mail: the same person,
    address and category (notices, budget), their person having chosen a daily or weekly
    sending for it. Each group in id order; it may hold rows beyond ``rows`` (a later chunk
    of the round). One query for the chunk when nobody in it chose to group (the usual)."""
    people = {
        r.person_id
        for r in rows
        if r.person_id is not None and r.address and r.kind in GROUPED_KINDS
    }
    if not people:
        return []
    periodic = {
        (row.person_id, Category(row.category))
        for row in conn.execute(
            sa.select(P.c.person_id, P.c.category).where(
                P.c.person_id.in_(sorted(people)),
                P.c.category.in_([c.value for c in GROUPED]),
                P.c.frequency.in_([Frequency.DAILY.value, Frequency.WEEKLY.value]),
            )
        )
    }
    if not periodic:
        return []
    mates: dict[tuple[int, str, Category], list[Any]] = defaultdict(list)
    for row in conn.execute(
        sa.select(M)
        .where(
            M.c.person_id.in_(sorted({person for person, _ in periodic})),
            M.c.status == OutboxStatus.PENDING.value,
            M.c.next_attempt_at <= now,
            M.c.kind.in_(GROUPED_KINDS),
            M.c.address != "",
        )
        .order_by(M.c.id)
    ):
        category = KIND_CATEGORY[row.kind]
        if (row.person_id, category) in periodic:
            mates[(row.person_id, row.address, category)].append(row)
    return [group for group in mates.values() if len(group) > 1]


def list_unsubscribe(
    conn: Connection, row: Any, settings: Settings | None = None
) -> dict[str, str]:
    """``List-Unsubscribe`` and ``List-Unsubscribe-Post`` (RFC 8058, one click) for an outbox
    row its person may switch off; nothing for an obligation (escalation, convocation), a
    row without a person, or when tiflow web's address or secret key is not configured.
    ``settings``: read once by a delivery round (default: read now)."""
    category = category_of(row.kind)
    settings = settings or load_settings()
    if category is None or row.person_id is None or not row.address or not settings.web_secret:
        return {}
    if row.kind == "digest" and _is_convocation(conn, row):
        return {}
    token = unsubscribe_token(settings.web_secret.encode(), row.person_id, category)
    url = settings.unsubscribe_url(token)
    if url is None:
        return {}
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def _is_convocation(conn: Connection, row: Any) -> bool:
    """A digest row is its COPIL's convocation when no earlier live digest to the same
    address is about the same meeting."""
    meetings = set(
        conn.execute(
            sa.select(I.c.ref_id).where(I.c.message_id == row.id, I.c.ref_kind == COPIL)
        ).scalars()
    )
    earlier = conn.execute(
        sa.select(sa.func.count())
        .select_from(I.join(M, M.c.id == I.c.message_id))
        .where(
            M.c.kind == "digest",
            M.c.address == row.address,
            M.c.id < row.id,
            M.c.status != OutboxStatus.DROPPED.value,
            I.c.ref_kind == COPIL,
            I.c.ref_id.in_(sorted(meetings)),
        )
    ).scalar_one()
    return bool(meetings) and not earlier


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
