"""The digest COPIL members get before each meeting (default: 10 and 3 days before).

For each scheduled COPIL whose digest day has come, :func:`compute_digests` gathers, for its
territory: the agenda (actions proposed or deferred, awaiting a decision, with the budget they
ask), what changed since the previous COPIL (state changes, new funding, the budget against the
one the previous COPIL validated), actions late or at risk, funding still missing and the
year's budget so far. :func:`render_digest` turns it into one e-mail per member with the COPIL
as an ``.ics`` invitation (Europe/Paris) and the agenda as a CSV for French Excel.

Recipients: the meeting's ``copil_member`` rows, or else the territory's people with the role
``copil_member``. Idempotency key: ``digest:<copil>:<date>:J-<n>`` per recipient; the message
carries the COPIL's date and status as its fingerprint, so a digest for a meeting moved or
cancelled before it went out is dropped, never sent.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar

import icalendar
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from flows.usecases.budget.consolidation import View, consolidate_with
from flows.usecases.bus import unit_of_work
from flows.usecases.reminders import unknown_territories
from models import figures
from models.calendar_feed import copil_sequence, copil_uid
from models.deadlines import (
    COPIL,
    PARIS,
    copil_fingerprint,
    is_late,
    load_snapshot,
    paris_date,
)
from models.lifecycle import AWAITING_DECISION, COMMITTED, State
from models.money import ZERO
from models.safe_text import neutralise_formula
from models.tables import (
    ActionChange,
    ActionSheet,
    BudgetLine,
    CopilAgendaItem,
    CopilDecision,
    CopilMeeting,
    CopilMember,
    FollowUpNote,
    Funding,
    Indicator,
    Milestone,
    Organisation,
    Person,
    PersonRole,
    Territory,
    TransitionRecord,
)
from models.uow import UnitOfWork
from models.vocabulary import Axis, CopilStatus, Role
from notifications import fr
from notifications.message import Attachment, InvalidAddress, parse_mailbox
from notifications.outbox import (
    DeliveryPolicy,
    DeliveryReport,
    EnqueueResult,
    ItemRef,
    NewMessage,
    Recipient,
    deliver_pending,
    enqueue,
    utcnow,
)
from notifications.templates import ReplyTo, render
from notifications.transports import Deliverer

_T = TypeVar("_T", CopilMeeting, Territory, Person)

DIGEST = "digest"  # outbox kind
LIST_MAX = 40  # rows per section in the e-mail; the CSV has them all

B = BudgetLine.__table__.c  # type: ignore[attr-defined]
F = Funding.__table__.c  # type: ignore[attr-defined]
A = ActionSheet.__table__.c  # type: ignore[attr-defined]


@dataclass(frozen=True)
class _Statements:
    """The statements every digest reads (and the COPIL's page on each request), with bound
    parameters: ``tid`` (territory), ``copil``, ``held_at``, ``since``."""

    members: Any
    territory_members: Any
    coordinator: Any
    actions: sa.Select[Any]
    pilots: sa.Select[Any]
    planned: sa.Select[Any]
    funded: sa.Select[Any]
    agenda: Any
    previous: Any
    changes: sa.Select[Any]
    changes_since: sa.Select[Any]
    committed: sa.Select[Any]


def _sums_statement(columns: Sequence[Any], table: Any) -> sa.Select[Any]:
    """Sums of `columns` per action and year, the territory's actions (one grouped query)."""
    return (
        sa.select(table.action_id, table.year, *(sa.func.sum(c) for c in columns))
        .join(ActionSheet, A.id == table.action_id)
        .where(A.territory_id == sa.bindparam("tid"))
        .group_by(table.action_id, table.year)
    )


@cache
def _statements() -> _Statements:
    """Built once per process: a page or a digest pays for binding its parameters, not for
    building and keying the same statements again."""
    tid: sa.BindParameter[Any] = sa.bindparam("tid")
    copil: sa.BindParameter[Any] = sa.bindparam("copil")
    held_at: sa.BindParameter[Any] = sa.bindparam("held_at")
    p = Person.__table__.c  # type: ignore[attr-defined]
    t = TransitionRecord.__table__.c  # type: ignore[attr-defined]
    changes = (
        sa.select(t.at, t.action_id, t.from_state, t.to_state)
        .join(ActionSheet, A.id == t.action_id)
        .where(A.territory_id == tid)
        .order_by(t.at, t.id)
    )
    return _Statements(
        members=select(Person)
        .join(CopilMember, col(CopilMember.person_id) == col(Person.id))
        .where(col(CopilMember.copil_id) == copil)
        .order_by(col(Person.full_name)),
        territory_members=select(Person)
        .join(PersonRole, col(PersonRole.person_id) == col(Person.id))
        .where(col(Person.territory_id) == tid, col(PersonRole.role) == Role.COPIL_MEMBER)
        .order_by(col(Person.full_name)),
        coordinator=select(Person)
        .join(PersonRole, col(PersonRole.person_id) == col(Person.id))
        .where(col(Person.territory_id) == tid, col(PersonRole.role) == Role.COORDINATOR)
        .order_by(col(Person.full_name))
        .limit(1),
        actions=sa.select(
            A.id,
            A.number,
            A.title,
            A.axis,
            A.state,
            A.pilot_id,
            A.firm_commitment,
            A.start_date,
        ).where(A.territory_id == tid),
        pilots=sa.select(p.id, p.full_name).where(p.territory_id == tid),
        planned=_sums_statement((B.amount,), B),
        funded=_sums_statement((F.requested, F.granted), F),
        agenda=select(CopilAgendaItem.action_id)
        .where(col(CopilAgendaItem.copil_id) == copil)
        .order_by(col(CopilAgendaItem.position), col(CopilAgendaItem.action_id)),
        previous=select(CopilMeeting)
        .where(
            col(CopilMeeting.territory_id) == tid,
            col(CopilMeeting.held_at) < held_at,
            col(CopilMeeting.status) != CopilStatus.CANCELLED,
        )
        .order_by(col(CopilMeeting.held_at).desc())
        .limit(1),
        changes=changes,
        changes_since=changes.where(t.at > sa.bindparam("since")),
        committed=sa.select(A.id, A.number, A.title, A.state, A.start_date).where(
            A.territory_id == tid, A.state.in_([s.value for s in COMMITTED])
        ),
    )


class DigestSettings(BaseModel):
    """Réglages de la synthèse envoyée aux membres du COPIL avant chaque réunion."""

    model_config = ConfigDict(title="Réglages de la synthèse COPIL", frozen=True)

    offsets_days: list[int] = Field(
        default=[10, 3],
        title="Envois avant le COPIL (jours)",
        description="La synthèse part … jours avant chaque COPIL prévu (10 et 3 par défaut).",
    )
    catch_up_days: int = Field(
        default=2,
        ge=0,
        le=14,
        title="Rattrapage (jours)",
        description="Une synthèse dont le jour est passé de moins de … jours sans envoi (flux"
        " arrêté) part au passage suivant.",
    )
    duration_minutes: int = Field(
        default=180,
        ge=15,
        le=600,
        title="Durée de la réunion (minutes)",
        description="Pour l'invitation de calendrier.",
    )
    at_risk_days: int = Field(
        default=30,
        ge=1,
        le=180,
        title="Échéances proches (jours)",
        description="Une échéance dans les … jours, sans note de suivi récente, rend l'action"
        " « à risque ».",
    )
    silence_weeks: int = Field(
        default=6,
        ge=1,
        le=52,
        title="Note de suivi récente (semaines)",
        description="Une échéance proche d'une action sans note de suivi depuis plus de …"
        " semaines est signalée « à risque ».",
    )
    channels: bool = Field(
        default=False,
        title="Aussi sur les autres canaux",
        description="Publier aussi la synthèse (texte) sur les canaux non e-mail de"
        " l'étiquette « copil » (Slack, Teams…).",
    )
    territories: list[str] = Field(
        default_factory=list, title="Territoires (codes)", description="Vide : tous."
    )

    @field_validator("offsets_days")
    @classmethod
    def _offsets(cls, value: list[int]) -> list[int]:
        if not value or any(v < 0 or v > 90 for v in value):
            raise ValueError("les envois se comptent en jours avant le COPIL, de 0 à 90")
        return sorted(set(value), reverse=True)


@dataclass
class Digest:
    copil: CopilMeeting
    territory: Territory
    label: str  # J-10
    day: date  # the digest's day
    as_of: date
    members: list[Person]
    organizer: Person | None
    agenda: list[dict[str, Any]] = field(default_factory=list)
    previous: CopilMeeting | None = None
    changes: list[dict[str, str]] = field(default_factory=list)
    new_funding: list[dict[str, str]] = field(default_factory=list)
    budget_delta: dict[str, str] | None = None
    late: list[dict[str, str]] = field(default_factory=list)
    at_risk: list[dict[str, str]] = field(default_factory=list)
    missing: list[dict[str, str]] = field(default_factory=list)
    missing_total: Decimal = ZERO
    committed_any: bool = False  # an action validated or further: "covered" can be said
    conditions: list[dict[str, str]] = field(default_factory=list)  # earlier COPILs' own
    follow_up: list[dict[str, Any]] = field(default_factory=list)  # pilots' words, per action
    year: dict[str, Any] = field(default_factory=dict)
    # A later digest (J-3) after an earlier one (J-10): its label and day, and what changed
    # since it went out; nothing changed: the digest is not sent (`unchanged`).
    earlier: tuple[str, date] | None = None
    since_earlier: list[str] = field(default_factory=list)
    # Only what the COPIL's web page shows (`SUMMARY_PARTS`): never rendered or sent.
    summary: bool = False

    @property
    def unchanged(self) -> bool:
        return self.earlier is not None and not self.since_earlier

    dossier: tuple[str, bytes] | None = None  # the COPIL dossier (PDF), on the last digest

    @property
    def key(self) -> str:
        return f"{DIGEST}:{self.copil.id}:{paris_date(self.copil.held_at).isoformat()}:{self.label}"


def digest_day(
    held: date, as_of: date, window_start: date, offsets: Sequence[int]
) -> tuple[date, str] | None:
    """The latest digest day of a COPIL held on ``held`` within ``[window_start, as_of]``."""
    if held < as_of:
        return None
    best: tuple[date, str] | None = None
    for offset in offsets:
        day = held - timedelta(days=offset)
        if window_start <= day <= as_of and (best is None or day > best[0]):
            best = (day, f"J-{offset}")
    return best


# ---------------------------------------------------------------------------------------------
# Compute


def compute_digests(
    session: Session,
    as_of: date,
    settings: DigestSettings | None = None,
    *,
    copil_ids: Sequence[int] | None = None,
) -> list[Digest]:
    """The digests due on ``as_of`` (and not yet enqueued for every member)."""
    settings = settings or DigestSettings()
    window_start = as_of - timedelta(days=settings.catch_up_days)
    query = select(CopilMeeting).where(col(CopilMeeting.status) == CopilStatus.SCHEDULED)
    if copil_ids:
        query = query.where(col(CopilMeeting.id).in_(list(copil_ids)))
    territories = {t.id: t for t in session.execute(select(Territory)).scalars()}
    wanted = {t.id for t in territories.values() if t.code in settings.territories}
    unknown = sorted(set(settings.territories) - {t.code for t in territories.values()})
    if unknown:
        raise unknown_territories(unknown)
    digests: list[Digest] = []
    for copil in session.execute(query.order_by(col(CopilMeeting.held_at))).scalars():
        if settings.territories and copil.territory_id not in wanted:
            continue
        found = digest_day(paris_date(copil.held_at), as_of, window_start, settings.offsets_days)
        if found is None:
            continue
        territory = territories[copil.territory_id]
        members = _members(session, copil)
        if not members:
            continue
        organizer = _coordinator(session, copil.territory_id)
        # Plain copies: a digest outlives the read-only unit of work that loaded it.
        digest = Digest(
            copil=_copy(copil),
            territory=_copy(territory),
            label=found[1],
            day=found[0],
            as_of=as_of,
            members=[_copy(p) for p in members],
            organizer=_copy(organizer) if organizer else None,
        )
        if _already_sent(session, digest):
            continue
        _fill(session, digest, settings)
        last = found[1] == f"J-{min(settings.offsets_days)}"  # the last one before: J-3
        if last and not digest.unchanged:  # an unchanged J-3 is not sent: no dossier to build
            digest.dossier = _dossier(session, digest)
        digests.append(digest)
    return digests


def _dossier(session: Session, digest: Digest) -> tuple[str, bytes]:
    from flows.usecases.dossier import dossier_filename, dossier_pdf  # it reads the digest

    return dossier_filename(digest), dossier_pdf(session, digest)


SUMMARY_PARTS = ("agenda", "changes", "late", "at_risk", "missing")


def preview_digest(
    session: Session,
    copil_id: int,
    as_of: date,
    settings: DigestSettings | None = None,
    *,
    summary: bool = False,
) -> Digest | None:
    """The digest of one scheduled COPIL as it would be written on ``as_of`` (whatever its
    sending days and whether it went out): what the web application shows as a page.

    ``summary``: only its `SUMMARY_PARTS` (the COPIL's page), the same as in the whole digest;
    the rest (new funding, budget change, the year's figures, conditions, follow-up, what
    changed since an earlier digest) is not read."""
    copil = session.get(CopilMeeting, copil_id)
    if copil is None or copil.status != CopilStatus.SCHEDULED:
        return None
    territory = session.get_one(Territory, copil.territory_id)
    organizer = _coordinator(session, copil.territory_id)
    digest = Digest(
        copil=_copy(copil),
        territory=_copy(territory),
        label="aperçu",
        day=as_of,
        as_of=as_of,
        members=[_copy(p) for p in _members(session, copil)],
        organizer=_copy(organizer) if organizer else None,
        summary=summary,
    )
    _fill(session, digest, settings or DigestSettings())
    return digest


def _copy(row: _T) -> _T:
    return type(row)(**row.model_dump())


def _members(session: Session, copil: CopilMeeting) -> list[Person]:
    q = _statements()
    members = list(session.execute(q.members, {"copil": copil.id}).scalars())
    if members:
        return members
    return list(session.execute(q.territory_members, {"tid": copil.territory_id}).scalars())


def _coordinator(session: Session, territory_id: int) -> Person | None:
    return session.execute(_statements().coordinator, {"tid": territory_id}).scalar_one_or_none()


def _already_sent(session: Session, digest: Digest) -> bool:
    """Every member already has this digest (sent or queued): nothing to render."""
    from models.outbox import OutboxMessage

    m = OutboxMessage.__table__.c  # type: ignore[attr-defined]
    have = set(session.execute(sa.select(m.address).where(m.key == digest.key)).scalars())
    return all(p.email.strip().lower() in have for p in digest.members)


def _sums_by_action_year(
    session: Session, statement: sa.Select[Any], territory_id: int
) -> dict[tuple[int, int], list[Decimal]]:
    """The sums of a `_sums_statement` per action and year, for one territory."""
    rows = session.execute(statement, {"tid": territory_id})
    return {(row[0], row[1]): [v or ZERO for v in row[2:]] for row in rows}


def _per_action(
    sums: dict[tuple[int, int], list[Decimal]], index: int, year: int | None = None
) -> dict[int, Decimal]:
    """One of the sums per action: all years, or one year (only actions with rows)."""
    found: dict[int, Decimal] = {}
    for (action_id, y), values in sums.items():
        if year is None or y == year:
            found[action_id] = found.get(action_id, ZERO) + values[index]
    return found


def _left_to_fund(
    planned: dict[tuple[int, int], list[Decimal]], funded: dict[tuple[int, int], list[Decimal]]
) -> dict[int, Decimal]:
    """*Reste à financer* per action, all years: each year's own (models.figures)."""
    left: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for key in set(planned) | set(funded):
        plan = planned[key][0] if key in planned else ZERO
        granted = funded[key][1] if key in funded else ZERO
        left[key[0]] += figures.left_to_fund(plan, granted)
    return dict(left)


@dataclass
class _Facts:
    """What the parts of a digest read: the territory's actions and their money."""

    tid: int
    year: int
    actions: dict[Any, Any]
    pilots: dict[Any, str]
    budget: dict[Any, Decimal]
    budget_year: dict[Any, Decimal]
    requested: dict[Any, Decimal]
    granted: dict[Any, Decimal]
    planned_by_year: dict[tuple[int, int], list[Decimal]]
    left_to_fund: dict[int, Decimal]


def _fill(session: Session, digest: Digest, settings: DigestSettings) -> None:
    facts = _facts(session, digest)
    _fill_agenda(session, digest, facts)
    previous = _previous_copil(session, digest)
    since = previous.held_at if previous else None
    _fill_changes(session, digest, facts, since)
    left = facts.left_to_fund
    late, at_risk = late_and_at_risk(session, facts.tid, digest.as_of, settings, left)
    digest.late.extend(late)
    digest.at_risk.extend(at_risk)
    _fill_missing(digest, facts, left)
    if digest.summary:
        return
    _fill_new_funding(session, digest, facts, since)
    _fill_budget_delta(session, digest, facts, previous)
    digest.year = _year_figures(session, digest.territory, facts.year, digest.as_of)
    digest.conditions = _conditions(session, digest.copil, facts.actions)
    digest.follow_up = _follow_up(session, facts.actions, since, digest.as_of)
    earlier = _earlier_digest(session, digest)
    if earlier is not None:
        digest.earlier = (earlier[0], paris_date(earlier[1]))
        digest.since_earlier = changes_since(session, facts.actions, earlier[1], digest.as_of)


def _facts(session: Session, digest: Digest) -> _Facts:
    copil, tid = digest.copil, digest.territory.id
    assert tid is not None
    year = copil.budget_year or paris_date(copil.held_at).year
    q, scope = _statements(), {"tid": tid}
    actions = {row.id: row for row in session.execute(q.actions, scope)}
    pilots = {p.id: p.full_name for p in session.execute(q.pilots, scope)}
    planned = _sums_by_action_year(session, q.planned, tid)
    funded = _sums_by_action_year(session, q.funded, tid)
    return _Facts(
        tid,
        year,
        actions,
        pilots,
        budget=_per_action(planned, 0),
        budget_year=_per_action(planned, 0, year),
        requested=_per_action(funded, 0),
        granted=_per_action(funded, 1),
        planned_by_year=planned,
        left_to_fund=_left_to_fund(planned, funded),
    )


def _earlier_digest(session: Session, digest: Digest) -> tuple[str, datetime] | None:
    """The latest earlier digest of this COPIL, for this date, that was not dropped: its
    label (J-10) and when it was enqueued."""
    from models.outbox import OutboxMessage, OutboxStatus

    m = OutboxMessage.__table__.c  # type: ignore[attr-defined]
    prefix = digest.key.rsplit(":", 1)[0] + ":"
    row = session.execute(
        sa.select(m.key, sa.func.min(m.created_at).label("at"))
        .where(
            m.key.like(prefix + "J-%"),
            m.key != digest.key,
            m.status != OutboxStatus.DROPPED.value,
        )
        .group_by(m.key)
        .order_by(sa.func.min(m.created_at).desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    at = row.at if row.at.tzinfo is not None else row.at.replace(tzinfo=UTC)
    return row.key.rsplit(":", 1)[1], at


def changes_since(
    session: Session, actions: dict[Any, Any], since: datetime, as_of: date
) -> list[str]:
    """What changed on the territory's actions after ``since`` and up to the day ``as_of``
    (Paris): state changes and decisions, progress reports, follow-up notes, funding figures —
    one French line each, by action."""
    until = datetime.combine(as_of + timedelta(days=1), datetime.min.time(), PARIS)
    t = TransitionRecord.__table__.c  # type: ignore[attr-defined]
    c = ActionChange.__table__.c  # type: ignore[attr-defined]
    n = FollowUpNote.__table__.c  # type: ignore[attr-defined]
    o = Organisation.__table__.c  # type: ignore[attr-defined]
    ids = sorted(actions)
    found: list[tuple[str, str]] = []

    def add(action_id: int, text: str) -> None:
        action = actions[action_id]
        found.append((action.number, f"{action.number} {fr.quoted(action.title)}{text}"))

    for row in session.execute(
        sa.select(t.action_id, t.from_state, t.to_state)
        .where(t.action_id.in_(ids), t.at > since, t.at < until)
        .order_by(t.at, t.id)
    ):
        add(row.action_id, f" : {State(row.from_state).label} → {State(row.to_state).label}")
    for row in session.execute(
        sa.select(c.action_id, c.summary)
        .where(c.action_id.in_(ids), c.at > since, c.at < until)
        .order_by(c.at, c.id)
    ):
        add(row.action_id, f" : {row.summary}")
    for row in session.execute(
        sa.select(n.action_id, n.written_on, n.text)
        .where(n.action_id.in_(ids), n.written_on > paris_date(since), n.written_on <= as_of)
        .order_by(n.written_on, n.id)
    ):
        add(row.action_id, f", note du {fr.format_date(row.written_on)} : {row.text}")
    labels = [figures.Figure.REQUESTED, figures.Figure.GRANTED, figures.Figure.PAID]
    for row in session.execute(
        sa.select(F.action_id, F.year, F.requested, F.granted, F.paid, o.name, o.short_name)
        .join(Organisation, o.id == F.funder_id)
        .where(F.action_id.in_(ids), F.updated_at > since, F.updated_at < until)
        .order_by(F.updated_at, F.id)
    ):
        amounts = zip(labels, (row.requested, row.granted, row.paid), strict=True)
        figures_text = ", ".join(f"{f.label.lower()} {fr.format_eur(v)}" for f, v in amounts)
        add(
            row.action_id,
            f", financement {row.short_name or row.name} ({row.year}) : {figures_text}",
        )
    return [line for _, line in sorted(found, key=lambda item: item[0])]


def _fill_agenda(session: Session, digest: Digest, facts: _Facts) -> None:
    copil, actions, pilots = digest.copil, facts.actions, facts.pilots
    budget, requested, granted = facts.budget, facts.requested, facts.granted
    # Agenda: the meeting's own agenda first (in its order), then every other action awaiting
    # a decision.
    listed = [row.action_id for row in session.execute(_statements().agenda, {"copil": copil.id})]
    awaiting = sorted(
        (a for a in actions.values() if State(a.state) in AWAITING_DECISION and a.id not in listed),
        key=lambda a: a.number,
    )
    for action_id in [*listed, *(a.id for a in awaiting)]:
        a = actions[action_id]
        digest.agenda.append(
            {
                "number": a.number,
                "title": a.title,
                "axis": Axis(a.axis).label,
                "pilot": pilots.get(a.pilot_id, "—") if a.pilot_id else "—",
                "state": State(a.state).label,
                "firm": "oui" if a.firm_commitment else "non",
                "budget": budget.get(a.id, ZERO),
                "requested": requested.get(a.id, ZERO),
                "granted": granted.get(a.id, ZERO),
            }
        )


def _previous_copil(session: Session, digest: Digest) -> CopilMeeting | None:
    copil, tid = digest.copil, digest.territory.id
    # Since the previous COPIL of the territory (held, or at least not cancelled).
    previous = session.execute(
        _statements().previous, {"tid": tid, "held_at": copil.held_at}
    ).scalar_one_or_none()
    digest.previous = _copy(previous) if previous is not None else None
    return previous


def _fill_changes(session: Session, digest: Digest, facts: _Facts, since: datetime | None) -> None:
    q, actions = _statements(), facts.actions
    changes = q.changes if since is None else q.changes_since
    for row in session.execute(changes, {"tid": facts.tid, "since": since}):
        a = actions[row.action_id]
        digest.changes.append(
            {
                "date": fr.format_date(paris_date(row.at)),
                "number": a.number,
                "title": a.title,
                "from": State(row.from_state).label,
                "to": State(row.to_state).label,
            }
        )


def _fill_new_funding(
    session: Session, digest: Digest, facts: _Facts, since: datetime | None
) -> None:
    tid, actions = facts.tid, facts.actions
    o = Organisation.__table__.c  # type: ignore[attr-defined]
    funding = (
        sa.select(F.action_id, F.granted, F.decision_date, F.updated_at, o.short_name, o.name)
        .join(ActionSheet, A.id == F.action_id)
        .join(Organisation, o.id == F.funder_id)
        .where(A.territory_id == tid, F.granted > 0)
        .order_by(F.decision_date, F.id)
    )
    for row in session.execute(funding):
        decided = row.decision_date or paris_date(row.updated_at)
        if since is not None and decided < paris_date(since):
            continue
        a = actions[row.action_id]
        digest.new_funding.append(
            {
                "number": a.number,
                "title": a.title,
                "funder": row.short_name or row.name,
                "granted": fr.format_eur(row.granted),
                "date": fr.format_date(decided),
            }
        )


def _fill_budget_delta(
    session: Session, digest: Digest, facts: _Facts, previous: CopilMeeting | None
) -> None:
    """The change of the committed budget since the previous COPIL validated one."""
    year, actions, budget_year = facts.year, facts.actions, facts.budget_year
    committed_year = sum(
        (v for k, v in budget_year.items() if State(actions[k].state) in COMMITTED), ZERO
    )
    if previous is not None and previous.validated_budget is not None:
        prev_year = previous.budget_year or paris_date(previous.held_at).year
        now_planned = (
            committed_year
            if prev_year == year
            else sum(
                (
                    v
                    for k, v in _per_action(facts.planned_by_year, 0, prev_year).items()
                    if State(actions[k].state) in COMMITTED
                ),
                ZERO,
            )
        )
        delta = now_planned - previous.validated_budget
        digest.budget_delta = {
            "year": str(prev_year),
            "validated": fr.format_eur(previous.validated_budget),
            "now": fr.format_eur(now_planned),
            "delta": fr.signed_eur(delta),
        }


def late_and_at_risk(
    session: Session,
    territory_id: int,
    as_of: date,
    settings: DigestSettings | None = None,
    left_to_fund: dict[int, Decimal] | None = None,
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The one reading of « en retard » and « à risque » (the digest's, the dashboard's).

    Late: a deadline past its day (`models.deadlines.is_late`, the reminders' deadlines). At
    risk: a deadline within `at_risk_days` of an action whose pilot wrote no note for
    `silence_weeks`, or a committed open action short of funding whose start has come.
    Each line has number, title, what, due, phrase (and reason when at risk)."""
    settings = settings or DigestSettings()
    late: list[dict[str, str]] = []
    at_risk: list[dict[str, str]] = []
    snapshot = load_snapshot(session, territory_ids={territory_id})
    silent_since = {s.action.id: s for s in snapshot.silences}
    horizon = as_of + timedelta(days=settings.at_risk_days)
    quiet_limit = as_of - timedelta(weeks=settings.silence_weeks)
    for d in sorted(snapshot.deadlines, key=lambda d: (d.due, d.action.number)):
        line = {
            "number": d.action.number,
            "title": d.action.title,
            "what": d.what,
            "due": fr.format_date(d.due),
            "phrase": fr.deadline_phrase(d.due, as_of),
        }
        if is_late(d.due, as_of):
            late.append(line)
        elif d.due <= horizon:
            silence = silent_since.get(d.action.id)
            if silence is not None and silence.since <= quiet_limit:
                line["reason"] = f"pas de note de suivi depuis le {fr.format_date(silence.since)}"
                at_risk.append(line)
    left = (
        left_to_fund if left_to_fund is not None else _left_to_fund_by_action(session, territory_id)
    )
    committed = session.execute(_statements().committed, {"tid": territory_id})
    for a in sorted(committed, key=lambda a: a.number):
        gap, state = left.get(a.id, ZERO), State(a.state)
        risk = _funding_risk(state, a.start_date, as_of) if gap > 0 and state.is_open else None
        if risk is not None:
            at_risk.append(
                {
                    "number": a.number,
                    "title": a.title,
                    **risk,
                    "reason": f"financement incomplet : il manque {fr.format_eur(gap)}",
                }
            )
    return late, at_risk


def _fill_missing(digest: Digest, facts: _Facts, left: dict[int, Decimal]) -> None:
    actions, budget, granted = facts.actions, facts.budget, facts.granted
    for a in sorted(actions.values(), key=lambda a: a.number):
        state = State(a.state)
        if state not in COMMITTED or not state.is_open:  # proposals are on the agenda instead
            continue
        digest.committed_any = True
        gap = left.get(a.id, ZERO)
        if gap > 0:
            digest.missing_total += gap
            digest.missing.append(
                {
                    "number": a.number,
                    "title": a.title,
                    "state": state.label,
                    "budget": fr.format_eur(budget.get(a.id, ZERO)),
                    "granted": fr.format_eur(granted.get(a.id, ZERO)),
                    "missing": fr.format_eur(gap),
                }
            )


def _conditions(
    session: Session, copil: CopilMeeting, actions: dict[int, Any]
) -> list[dict[str, str]]:
    """The conditions earlier COPILs attached to their decisions, for actions still open;
    those naming this COPIL's month (« Bilan d'étape au COPIL d'octobre ») come first,
    marked to be examined now."""
    d = CopilDecision.__table__.c  # type: ignore[attr-defined]
    c = CopilMeeting.__table__.c  # type: ignore[attr-defined]
    month = fr.month_name(paris_date(copil.held_at))
    rows = session.execute(
        sa.select(d.action_id, d.conditions, c.held_at)
        .join(CopilMeeting, c.id == d.copil_id)
        .where(c.territory_id == copil.territory_id, c.held_at < copil.held_at, d.conditions != "")
        .order_by(c.held_at, d.id)
    )
    found = []
    for row in rows:
        action = actions.get(row.action_id)
        if action is None or not State(action.state).is_open:
            continue
        found.append(
            {
                "number": action.number,
                "title": action.title,
                "conditions": row.conditions,
                "copil": fr.format_date(paris_date(row.held_at)),
                "now": "oui" if month in row.conditions.lower() else "",
            }
        )
    return sorted(found, key=lambda row: (not row["now"], row["number"]))


def _follow_up(
    session: Session, actions: dict[int, Any], since: datetime | None, as_of: date
) -> list[dict[str, Any]]:
    """Per action: the pilots' notes since the previous COPIL, its indicators against their
    targets, its milestones done and missed — what the members ask the pilots about."""
    n = FollowUpNote.__table__.c  # type: ignore[attr-defined]
    i = Indicator.__table__.c  # type: ignore[attr-defined]
    m = Milestone.__table__.c  # type: ignore[attr-defined]
    ids = sorted(actions)
    first = paris_date(since) if since is not None else date.min
    per_action: dict[int, dict[str, list[str]]] = defaultdict(
        lambda: {"notes": [], "indicators": [], "done": [], "missed": []}
    )
    for row in session.execute(
        sa.select(n.action_id, n.written_on, n.text)
        .where(n.action_id.in_(ids), n.written_on > first, n.written_on <= as_of)
        .order_by(n.written_on, n.id)
    ):
        per_action[row.action_id]["notes"].append(f"{fr.format_date(row.written_on)} : {row.text}")
    for row in session.execute(
        sa.select(m.action_id, m.title, m.due_date, m.done_on).where(m.action_id.in_(ids))
    ):
        if row.done_on is not None and first < row.done_on <= as_of:
            per_action[row.action_id]["done"].append(f"{row.title} ({fr.format_date(row.done_on)})")
        elif row.done_on is None and row.due_date < as_of:
            per_action[row.action_id]["missed"].append(
                f"{row.title} (prévu le {fr.format_date(row.due_date)})"
            )
    for row in session.execute(
        sa.select(i.action_id, i.name, i.unit, i.target, i.actual).where(
            i.action_id.in_([a for a in per_action]), i.actual.is_not(None)
        )
    ):
        unit = f" {row.unit}" if row.unit else ""
        per_action[row.action_id]["indicators"].append(
            f"{row.name} : {fr.format_quantity(row.actual)} pour un objectif de"
            f" {fr.format_quantity(row.target)}{unit}"
        )
    return [
        {"number": actions[a].number, "title": actions[a].title, **per_action[a]}
        for a in sorted(per_action, key=lambda a: actions[a].number)
    ]


def _funding_risk(state: State, start: date | None, as_of: date) -> dict[str, str] | None:
    """Why an action short of funding is at risk, by its state: a validated action whose start
    has come cannot start; one in progress runs on money not granted yet."""
    if start is None or start > as_of:
        return None
    if state is State.VALIDATED:
        what = "démarrage prévu"
    elif state is State.IN_PROGRESS:
        what = "en cours depuis"
    else:
        return None
    return {"what": what, "due": fr.format_date(start), "phrase": fr.relative_days(start, as_of)}


def _left_to_fund_by_action(session: Session, territory_id: int) -> dict[int, Decimal]:
    """*Reste à financer* per action, all years: each year's own (models.figures)."""
    q = _statements()
    return _left_to_fund(
        _sums_by_action_year(session, q.planned, territory_id),
        _sums_by_action_year(session, q.funded, territory_id),
    )


def _year_figures(session: Session, territory: Territory, year: int, as_of: date) -> dict[str, Any]:
    """The year's figures exactly as the budget consolidation defines them (same scope,
    same labels as the budget e-mail and the workbook)."""
    c = consolidate_with(session, year, territory, as_of)
    total = c.total()
    actions = c.view(View.ACTION)

    def planned_of(states: Sequence[State]) -> Decimal:
        return sum((line.figures.planned for line in actions if line.state in states), ZERO)

    F_ = figures.Figure
    rows: list[tuple[str, Decimal | None]] = [
        (f"{F_.PLANNED.label} (actions du plan)", total.planned),
        ("  dont actions validées et suivantes", planned_of(COMMITTED)),
        ("  dont actions en attente de décision", planned_of(AWAITING_DECISION)),
        *((F_(m).label, getattr(total, m)) for m in ("requested", "granted", "paid")),
        (F_.LEFT_TO_FUND.label, total.left_to_fund),
        (F_.LEFT_TO_PAY.label, total.left_to_pay),
        *c.against_validated(),
    ]
    return {
        "year": str(year),
        "rows": [
            {"label": label, "amount": fr.format_eur(v) if v is not None else "aucun"}
            for label, v in rows
        ],
    }


# ---------------------------------------------------------------------------------------------
# Attachments


def _excel_amount(value: Decimal) -> str:
    """``12500,00``: a number French Excel reads as such (no thousands separator)."""
    return f"{value:.2f}".replace(".", ",")


def agenda_csv(digest: Digest) -> bytes:
    """The agenda for French Excel: ``;`` separator, decimal comma, UTF-8 with BOM, CRLF."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(
        [
            "N°",
            "Intitulé",
            "Axe",
            "Pilote",
            "État",
            "Engagement ferme",
            "Budget demandé (€)",
            "Financements demandés (€)",
            "Financements accordés (€)",
        ]
    )
    for row in digest.agenda:
        writer.writerow(
            [
                neutralise_formula(row["number"]),
                neutralise_formula(row["title"]),
                row["axis"],
                neutralise_formula(row["pilot"]),
                row["state"],
                row["firm"],
                _excel_amount(row["budget"]),
                _excel_amount(row["requested"]),
                _excel_amount(row["granted"]),
            ]
        )
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def invitation(digest: Digest, settings: DigestSettings, *, now: datetime | None = None) -> bytes:
    """The COPIL as an iCalendar invitation (METHOD:REQUEST), times in Europe/Paris.

    The UID is stable per meeting, and SEQUENCE grows with time, so a later digest (J-3, or
    after the meeting moved) updates the event in calendars instead of adding a second one."""
    now = now or utcnow()
    copil, territory = digest.copil, digest.territory
    start = copil.held_at.astimezone(PARIS)
    cal = icalendar.Calendar()
    cal.add("prodid", "-//tiflow//COPIL Territoire d'industrie//FR")
    cal.add("version", "2.0")
    cal.add("method", "REQUEST")
    event = icalendar.Event()
    assert copil.id is not None
    event.add("uid", copil_uid(copil.id, territory.code))  # the calendar feeds' UID too
    event.add("sequence", copil_sequence(now))
    event.add("dtstamp", now.astimezone(UTC))
    event.add("dtstart", start)
    event.add("dtend", start + timedelta(minutes=settings.duration_minutes))
    event.add("summary", f"COPIL Territoire d'industrie {territory.name}")
    if copil.place:
        event.add("location", copil.place)
    count = fr.plural(len(digest.agenda), "action", "actions")
    lines = [f"Ordre du jour ({count} à décider) :"]
    lines += [f"- {row['number']} {row['title']}" for row in digest.agenda]
    event.add("description", "\n".join(lines))
    if digest.organizer is not None:
        organizer = icalendar.vCalAddress(f"mailto:{digest.organizer.email.strip()}")
        organizer.params["cn"] = digest.organizer.full_name
        event.add("organizer", organizer)
    for person in digest.members:
        attendee = icalendar.vCalAddress(f"mailto:{person.email.strip()}")
        attendee.params.update(
            {
                "cn": person.full_name,
                "role": "REQ-PARTICIPANT",
                "partstat": "NEEDS-ACTION",
                "rsvp": "TRUE",
            }
        )
        event.add("attendee", attendee, encode=False)
    cal.add_component(event)
    # VTIMEZONE for Europe/Paris, limited to the years around the meeting (compact).
    cal.add_missing_timezones(
        first_date=date(start.year - 1, 1, 1), last_date=date(start.year + 2, 1, 1)
    )
    return bytes(cal.to_ical())


# ---------------------------------------------------------------------------------------------
# Render


def _money_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        dict(
            r,
            budget=fr.format_eur(r["budget"]),
            requested=fr.format_eur(r["requested"]),
            granted=fr.format_eur(r["granted"]),
        )
        for r in rows
    ]


def _cut(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """At most LIST_MAX rows in the e-mail, and how many more (the CSV has them all)."""
    return {"rows": rows[:LIST_MAX], "more": max(len(rows) - LIST_MAX, 0)}


def _digest_body(digest: Digest, reply: ReplyTo | None) -> tuple[str, str]:
    """The digest's text and HTML parts."""
    copil = digest.copil
    agenda_total = sum((r["budget"] for r in digest.agenda), ZERO)
    return render(
        "copil_digest",
        reply_to=reply,
        territory=digest.territory.name,
        when=fr.format_datetime(copil.held_at),
        place=copil.place,
        phrase=fr.relative_days(paris_date(copil.held_at), digest.as_of),
        agenda=_cut(_money_rows(digest.agenda)),
        agenda_total=fr.format_eur(agenda_total),
        previous=fr.format_date(paris_date(digest.previous.held_at)) if digest.previous else "",
        changes=_cut(digest.changes),
        new_funding=_cut(digest.new_funding),
        budget_delta=digest.budget_delta,
        late=_cut(digest.late),
        at_risk=_cut(digest.at_risk),
        missing=_cut(digest.missing),
        missing_total=fr.format_eur(digest.missing_total),
        committed_any=digest.committed_any,
        conditions=digest.conditions,
        follow_up=_cut(digest.follow_up),
        year=digest.year,
        earlier=(digest.earlier[0], fr.format_date(digest.earlier[1])) if digest.earlier else None,
        since_earlier=_cut([{"line": line} for line in digest.since_earlier]),
    )


def render_digest(
    digest: Digest, settings: DigestSettings, *, now: datetime | None = None
) -> NewMessage:
    if digest.summary:
        raise ValueError("a summary digest (the COPIL page's) is not a digest to send")
    copil = digest.copil
    held = paris_date(copil.held_at)
    when = fr.format_datetime(copil.held_at)
    organizer = digest.organizer
    reply = ReplyTo(organizer.full_name, organizer.email) if organizer else None
    text, html = _digest_body(digest, reply)
    attachments = [
        Attachment.invitation(invitation(digest, settings, now=now), "invitation-copil.ics"),
        Attachment(
            f"ordre-du-jour-copil-{held.isoformat()}.csv",
            "text/csv; charset=utf-8",
            agenda_csv(digest),
        ),
    ]
    if digest.dossier is not None:
        attachments.append(Attachment(digest.dossier[0], "application/pdf", digest.dossier[1]))
    reply_to = None
    if reply is not None:
        try:
            reply_to = str(parse_mailbox(reply.header))
        except (InvalidAddress, ValueError):
            reply_to = None
    return NewMessage(
        key=digest.key,
        kind=DIGEST,
        tag="copil",
        to=[Recipient.of(p) for p in digest.members],
        subject=f"COPIL du {when} : ordre du jour et synthèse ({digest.territory.name})",
        text=text,
        html=html,
        attachments=attachments,
        reply_to=reply_to,
        territory_id=digest.territory.id,
        items=[
            ItemRef(
                key=f"{COPIL}:{copil.id}:{digest.label}",
                ref_kind=COPIL,
                ref_id=copil.id or 0,
                fingerprint=copil_fingerprint(copil.held_at, str(copil.status)),
                remind_on=digest.day,
            )
        ],
        channels=settings.channels,
    )


# ---------------------------------------------------------------------------------------------
# Enqueue, and the whole run without Prefect


def enqueue_digests(
    uow: UnitOfWork,
    digests: Sequence[Digest],
    settings: DigestSettings | None = None,
    *,
    correlation_id: str | None = None,
    now: datetime | None = None,
) -> EnqueueResult:
    """Render each digest and store one message per member (the caller commits)."""
    settings = settings or DigestSettings()
    messages = [render_digest(d, settings, now=now) for d in digests if not d.unchanged]
    return enqueue(uow, messages, correlation_id=correlation_id, now=now)


def send_digests(
    engine: Engine,
    deliverer: Deliverer,
    *,
    as_of: date | None = None,
    settings: DigestSettings | None = None,
    policy: DeliveryPolicy | None = None,
    now: datetime | None = None,
    correlation_id: str | None = None,
) -> tuple[list[Digest], EnqueueResult, DeliveryReport]:
    """Compute, enqueue and deliver the digests of ``as_of`` (default: today in Paris)."""
    now = now or utcnow()
    day = as_of or paris_date(now)
    with unit_of_work(engine) as uow:
        digests = compute_digests(uow.session, day, settings)
    with unit_of_work(engine) as uow:
        result = enqueue_digests(uow, digests, settings, correlation_id=correlation_id, now=now)
        uow.commit()
    report = deliver_pending(
        engine, deliverer, policy=policy, now=now, correlation_id=correlation_id
    )
    return digests, result, report
