"""The e-mail that brings a budget snapshot's workbook to the coordinators.

Who gets it:

* a territory's consolidation goes to that territory's coordinators (role *chargé de
  mission*), one outbox row each; a territory without a coordinator falls back to the
  ``coordinator`` tag's own configured addresses and channels, like the reminders do;
* a consolidation of **all** territories goes once to the ``coordinator`` tag's configured
  addresses and channels (the national animation), not to every territory's coordinators: its
  workbook holds every territory's actions (megabytes at national scale), the outbox stores an
  attachment once per recipient row, and a territory's coordinator needs their own figures,
  which a run for their territory gives them.

Idempotency: the outbox key is ``budget:<year>:<scope>:v<version>``, so enqueuing the same
snapshot twice sends it once; re-running the consolidation makes a new version, hence a new
message (with the change since the previous version in its body).
"""

from __future__ import annotations

from decimal import Decimal

from sqlmodel import col, select

from flows.usecases.budget.calendar import PARIS
from flows.usecases.budget.consolidation import ALL_TERRITORIES, MEASURES
from flows.usecases.budget.reports import (
    XLSX_CONTENT_TYPE,
    budget_workbook,
    over_granted_left_out,
)
from flows.usecases.budget.snapshots import Snapshot
from models.money import ZERO, format_eur
from models.tables import Person, PersonRole
from models.uow import UnitOfWork
from models.vocabulary import Role
from notifications import fr
from notifications.message import Attachment
from notifications.outbox import EnqueueResult, NewMessage, Recipient, enqueue
from notifications.templates import ReplyTo, render

BUDGET = "budget"  # outbox kind
TAG = "coordinator"


def message_key(snapshot: Snapshot) -> str:
    return f"{BUDGET}:{snapshot.year}:{snapshot.scope}:v{snapshot.version}"


def recipients(uow: UnitOfWork, snapshot: Snapshot) -> list[Person]:
    """The coordinators of the snapshot's territory (none for an all-territories snapshot)."""
    territory_id = snapshot.figures.territory_id
    if snapshot.scope == ALL_TERRITORIES or territory_id is None:
        return []
    return list(
        uow.session.exec(
            select(Person)
            .join(PersonRole, col(PersonRole.person_id) == col(Person.id))
            .where(Person.territory_id == territory_id, PersonRole.role == Role.COORDINATOR)
            .order_by(col(Person.full_name))
        ).all()
    )


def _amount(label: str, amount: Decimal | None) -> str:
    """A gap is signed with a true minus sign (``−60 000,00 €``); the others are amounts."""
    if amount is None:
        return "—"
    return fr.signed_eur(amount) if label.startswith("Écart") else format_eur(amount)


def _percent(ratio: Decimal | None) -> str:
    if ratio is None:
        return "—"
    return f"{ratio * 100:.1f}".replace(".", ",").removesuffix(",0") + "\u00a0%"


def budget_message(
    snapshot: Snapshot, people: list[Person], workbook: tuple[bytes, str] | None = None
) -> NewMessage:
    """The French e-mail with the workbook attached (one row per person, or the tag's own
    configured addresses when `people` is empty). `workbook` is (bytes, file name), e.g. the
    report file already written; by default it is rendered from the snapshot."""
    c, g = snapshot.figures, snapshot.figures.governance
    total = c.total()
    shown, left_out = c.over_granted_shown()
    more = over_granted_left_out(left_out)
    previous = snapshot.previous
    before = previous.figures.total() if previous else None
    rows = []
    for measure, label in MEASURES:
        value = getattr(total, measure)
        row = {"label": label, "amount": format_eur(value), "delta": ""}
        if before is not None:
            delta = value - getattr(before, measure)
            row["delta"] = fr.signed_eur(delta) if delta != ZERO else "inchangé"
        rows.append(row)
    data, filename = workbook or budget_workbook(snapshot)
    national = snapshot.scope == ALL_TERRITORIES
    names = [p.full_name for p in people]
    greeting = f"Bonjour {', '.join(names)}," if names else "Bonjour,"
    # a territory's coordinators reply to each other (the first one by name receives it)
    reply = ReplyTo(people[0].full_name, people[0].email) if people else None
    text, html = render(
        "budget",
        reply_to=reply,
        territory="" if national else c.scope_label,
        greeting=greeting,
        year=c.year,
        scope=c.scope_label,
        national=national,
        version=snapshot.version,
        previous_version=previous.version if previous else None,
        consolidated=fr.format_datetime(snapshot.created_at.astimezone(PARIS)),
        as_of=fr.format_date(c.as_of),
        totals=rows,
        validated=[
            {"label": label, "amount": _amount(label, amount)}
            for label, amount in c.against_validated()
        ],
        over_granted=[
            *(f"{line.key} « {line.label} » : {line.note}" for line in shown),
            *([more] if more else []),
        ],
        actions=g.action_count,
        firm=g.firm_count,
        firm_share=_percent(g.firm_share),
        late=g.late_count,
        filename=filename,
        run_id=snapshot.flow_run_id or "",
        empty=c.is_empty,
    )
    return NewMessage(
        key=message_key(snapshot),
        kind=BUDGET,
        tag=TAG,
        to=[Recipient.of(p) for p in people],
        subject=f"Budget {c.year} consolidé — {c.scope_label} (version {snapshot.version})",
        text=text,
        html=html,
        attachments=[Attachment(filename, XLSX_CONTENT_TYPE, data)],
        reply_to=reply.header if reply else None,
        territory_id=c.territory_id,
        channels=not people,
    )


def enqueue_budget_mail(
    uow: UnitOfWork,
    snapshot: Snapshot,
    *,
    workbook: tuple[bytes, str] | None = None,
    correlation_id: str | None = None,
) -> EnqueueResult:
    """Store the e-mail in the outbox, in the caller's unit of work (the caller commits).
    The same snapshot enqueued again is a no-op."""
    return enqueue(
        uow,
        [budget_message(snapshot, recipients(uow, snapshot), workbook)],
        correlation_id=correlation_id,
    )
