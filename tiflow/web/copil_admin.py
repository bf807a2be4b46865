"""The coordinator's COPIL, from agenda to record: schedule it, see its agenda and its digest
exactly as it will be sent (and when: J-10, J-3), download its dossier (PDF), record every
decision in one form, then read the record of decisions.

Each write is one call of the use case the COPIL flows run (`flows.usecases.copil`:
`schedule_copil`, `hold_copil`): same checks, same history rows, same notices enqueued in the
decisions' own transaction. A refusal gets the use case's French message naming the decision
(« Décision n° 2 (FA-10) : … ») and nothing is written.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import replace
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from fastapi import BackgroundTasks, FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from flows.usecases.bus import send_consequences, unit_of_work
from flows.usecases.copil import DecisionInput, copil_info, hold_copil, schedule_copil
from flows.usecases.digest import DigestSettings, preview_digest, render_digest
from flows.usecases.dossier import PDF_MIME, copil_dossier
from models.deadlines import paris_date
from models.errors import ConcurrencyConflict, InvalidInput, NotFound
from models.events import DomainEvent
from models.lifecycle import AWAITING_DECISION, COPIL_OUTCOMES
from models.money import parse_number
from models.outbox import OutboxMessage, OutboxStatus
from models.settings import Settings
from models.tables import Person, PersonRole, TransitionRecord
from models.vocabulary import CopilStatus, Role
from notifications import fr
from tiflow.spreadsheet.cells import CellError, parse_date
from tiflow.web.access import Refusal
from tiflow.web.app import Context, Guarded, add_route, page, redirect
from tiflow.web.pilot import today
from tiflow.web.views import decisions_of

log = logging.getLogger(__name__)
TIME_RE = re.compile(r"^\s*(\d{1,2})\s*(?:[:hH]\s*(\d{2})?)?\s*$")
OUTCOMES = {state.value: state for state in COPIL_OUTCOMES}
# The e-mail's own HTML, shown alone: its inline styles, nothing else.
DIGEST_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"


def register(router: FastAPI) -> None:
    base = "/t/{territory}/copil/{copil_id}"
    add_route(router, "/t/{territory}/planifier-copil", new_copil, name="copil_new")
    add_route(
        router, "/t/{territory}/planifier-copil", schedule, name="copil_schedule", methods=["POST"]
    )
    add_route(router, f"{base}/preparation", prepare, name="copil_prepare")
    add_route(router, f"{base}/synthese.html", digest_html, name="copil_digest_html")
    add_route(router, f"{base}/dossier.pdf", dossier, name="copil_dossier")
    add_route(router, f"{base}/decisions", decisions_form, name="copil_decisions_form")
    add_route(router, f"{base}/decisions", decide, name="copil_decisions", methods=["POST"])
    add_route(router, f"{base}/releve", record, name="copil_record")


# ---------------------------------------------------------------------------------------------
# Schedule


def new_copil(ctx: Guarded) -> HTMLResponse:
    return _schedule_page(ctx)


def _schedule_page(
    ctx: Context, status: int = 200, problems: list[str] | None = None
) -> HTMLResponse:
    assert ctx.territory is not None
    with unit_of_work(ctx.engine) as uow:
        assert ctx.territory.id is not None
        people = uow.repo.people(ctx.territory.id)
        members = set(
            uow.session.exec(
                select(PersonRole.person_id).where(PersonRole.role == Role.COPIL_MEMBER)
            ).all()
        )
        posted = ctx.request.method == "POST"
        checked = {
            p.id for p in people if (ctx.form.get(f"membre-{p.id}") if posted else p.id in members)
        }
        return page(
            ctx,
            "copil_new.html",
            status=status,
            people=people,
            members=members,
            checked=checked,
            values=ctx.form,
            problems=problems or [],
        )


def schedule(ctx: Guarded) -> HTMLResponse | RedirectResponse:
    assert ctx.territory is not None and ctx.principal is not None
    try:
        held_at = _held_at(ctx.form.get("date", ""), ctx.form.get("heure", ""))
        emails = _member_emails(ctx)
        with unit_of_work(ctx.engine) as uow:
            info = schedule_copil(
                uow,
                ctx.territory.code,
                held_at=held_at,
                place=ctx.form.get("lieu", ""),
                member_emails=emails,
                recorded_by=ctx.principal.name,
                correlation_id=_correlation_id(),
            )
            uow.commit()
    except InvalidInput as error:
        return _schedule_page(ctx, 422, list(error.problems))
    return redirect(ctx, f"/t/{ctx.territory.code}/copil/{info.copil_id}/preparation?planifie=1")


def _held_at(day: str, hour: str) -> datetime:
    problems = []
    when: date | None = None
    try:
        when = parse_date(day)
    except CellError as error:
        problems.append(f"Date : {error}.")
    found = TIME_RE.match(hour or "9:30")
    at: time | None = None
    if found and int(found.group(1)) < 24 and int(found.group(2) or 0) < 60:
        at = time(int(found.group(1)), int(found.group(2) or 0))
    else:
        problems.append(f"Heure : « {hour} » n'est pas une heure (par exemple 9:30 ou 14 h).")
    if when is not None and when < today():
        problems.append(f"Date : le {when:%d/%m/%Y} est passé ; un COPIL se planifie à venir.")
    if problems or when is None or at is None:
        raise InvalidInput(problems)
    return datetime.combine(when, at)  # Paris time (the use case reads it so)


def _member_emails(ctx: Context) -> list[str]:
    ids = [int(k.split("-", 1)[1]) for k in ctx.form if re.fullmatch(r"membre-\d+", k)]
    if not ids:
        return []
    assert ctx.territory is not None
    with unit_of_work(ctx.engine) as uow:
        return list(
            uow.session.exec(
                select(Person.email).where(
                    col(Person.id).in_(ids), Person.territory_id == ctx.territory.id
                )
            ).all()
        )


def _correlation_id() -> str:
    return f"tiflow-web-{uuid.uuid4().hex[:12]}"


# ---------------------------------------------------------------------------------------------
# Prepare: agenda, digest preview and its sending days


def prepare(ctx: Guarded) -> HTMLResponse:
    assert ctx.copil is not None and ctx.copil.id is not None
    settings = DigestSettings()
    with unit_of_work(ctx.engine) as uow:
        info = copil_info(uow, ctx.copil.id)
        digest = preview_digest(uow.session, ctx.copil.id, today(), settings)
        message = render_digest(digest, settings) if digest else None
        days = _sending_days(uow.session, digest, settings) if digest else []
    return page(
        ctx,
        "copil_prepare.html",
        info=info,
        meeting=ctx.copil,
        digest=digest,
        message=message,
        days=days,
        scheduled=ctx.request.query_params.get("planifie") == "1",
    )


def _sending_days(session: Any, digest: Any, settings: DigestSettings) -> list[dict[str, Any]]:
    """Each digest's day (J-10, J-3) and where it stands in the outbox."""
    held = paris_date(digest.copil.held_at)
    now = today()
    m = OutboxMessage.__table__.c  # type: ignore[attr-defined]
    days = []
    for offset in settings.offsets_days:
        label = f"J-{offset}"
        key = replace(digest, label=label).key  # the digest's own key for that day
        counts = dict(
            session.execute(
                sa.select(m.status, sa.func.count()).where(m.key == key).group_by(m.status)
            ).all()
        )
        sent = counts.get(OutboxStatus.SENT.value, 0)
        waiting = counts.get(OutboxStatus.PENDING.value, 0)
        day = date.fromordinal(held.toordinal() - offset)
        if sent or waiting:
            state = f"{fr.plural(sent, 'envoyée', 'envoyées')}, {waiting} en file"
        elif day >= now:
            state = "à venir" if day > now else "aujourd'hui"
        else:
            state = "jour passé, non envoyée"
        last = offset == min(settings.offsets_days)
        days.append({"label": label, "day": day, "state": state, "pdf": last})
    return days


def digest_html(ctx: Guarded) -> Response:
    """The digest's HTML part exactly as the e-mail carries it (same renderer)."""
    assert ctx.copil is not None and ctx.copil.id is not None
    with unit_of_work(ctx.engine) as uow:
        digest = preview_digest(uow.session, ctx.copil.id, today())
    if digest is None:
        raise Refusal(404, "Ce COPIL n'est plus prévu : il n'a plus de synthèse à envoyer.")
    message = render_digest(digest, DigestSettings())
    response = HTMLResponse(message.html or "")
    response.headers["Content-Security-Policy"] = DIGEST_CSP
    return response


def dossier(ctx: Guarded) -> Response:
    """The COPIL dossier (PDF), built on the server as of today."""
    assert ctx.copil is not None and ctx.copil.id is not None
    assert ctx.territory is not None
    try:
        with unit_of_work(ctx.engine) as uow:
            name, data = copil_dossier(uow.session, ctx.copil.id, today())
    except NotFound as error:
        raise Refusal(404, str(error)) from None
    return Response(
        data,
        media_type=PDF_MIME,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# ---------------------------------------------------------------------------------------------
# Decisions: one form, all or nothing


def decisions_form(ctx: Guarded) -> HTMLResponse:
    return _decisions_page(ctx)


def _decisions_page(
    ctx: Context, status: int = 200, problems: list[str] | None = None
) -> HTMLResponse:
    assert ctx.copil is not None and ctx.copil.id is not None
    with unit_of_work(ctx.engine) as uow:
        info = copil_info(uow, ctx.copil.id)
    return page(
        ctx,
        "copil_decisions.html",
        status=status,
        info=info,
        meeting=ctx.copil,
        outcomes=COPIL_OUTCOMES,
        values=ctx.form,
        problems=problems or [],
        open=info.status is CopilStatus.SCHEDULED,
    )


def decide(ctx: Guarded, tasks: BackgroundTasks) -> HTMLResponse | RedirectResponse:
    assert ctx.copil is not None and ctx.copil.id is not None
    assert ctx.territory is not None and ctx.principal is not None
    correlation_id = _correlation_id()
    try:
        decisions, year, budget = _read_decisions(ctx.form)
        with unit_of_work(ctx.engine) as uow:
            hold_copil(
                uow,
                ctx.copil.id,
                decisions,
                budget_year=year,
                validated_budget=budget,
                recorded_by=ctx.principal.name,
                correlation_id=correlation_id,
            )
            uow.commit()
    except InvalidInput as error:
        return _decisions_page(ctx, 422, list(error.problems))
    except ConcurrencyConflict as error:
        return _decisions_page(ctx, 409, [str(error)])
    tasks.add_task(
        deliver_consequences, ctx.engine, ctx.web.settings, list(uow.events), correlation_id
    )
    return redirect(ctx, f"/t/{ctx.territory.code}/copil/{ctx.copil.id}/releve?enregistre=1")


def _read_decisions(
    form: dict[str, str],
) -> tuple[list[DecisionInput], int | None, Decimal | None]:
    """The form's rows (number, outcome, conditions, comment) and the budget, or every
    problem at once (InvalidInput)."""
    problems: list[str] = []
    decisions = []
    index = 1
    while (number := form.get(f"numero-{index}")) is not None:
        choice = form.get(f"decision-{index}", "")
        if choice and choice not in OUTCOMES:
            problems.append(f"Décision n° {index} ({number}) : choix « {choice} » inconnu.")
        decisions.append(
            DecisionInput(
                number,
                OUTCOMES.get(choice),
                conditions=form.get(f"conditions-{index}", ""),
                comment=form.get(f"commentaire-{index}", ""),
            )
        )
        index += 1
    year: int | None = None
    budget: Decimal | None = None
    if (text := form.get("budget", "").strip()) != "":
        try:
            budget = parse_number(text, currency=True)
        except ValueError as error:
            problems.append(f"Budget validé : {error}.")
    if (text := form.get("budget_annee", "").strip()) and budget is not None:
        if text.isdigit():
            year = int(text)
        else:
            problems.append(f"Année du budget : « {text} » n'est pas une année.")
    if problems:
        raise InvalidInput(problems)
    return decisions, year, budget


def deliver_consequences(
    engine: Engine, settings: Settings, events: list[DomainEvent], correlation_id: str
) -> None:
    """After the answer: publish the events (only to a configured Prefect server) and send
    the decisions' notices; a failure leaves them in the outbox for the next round."""
    try:
        send_consequences(engine, events, settings, correlation_id, ephemeral=False)
    except Exception:
        log.exception("delivering the COPIL's notices failed")


# ---------------------------------------------------------------------------------------------
# The record of decisions


def record(ctx: Guarded) -> HTMLResponse:
    assert ctx.copil is not None and ctx.copil.id is not None and ctx.territory is not None
    with unit_of_work(ctx.engine) as uow:
        info = copil_info(uow, ctx.copil.id)
        decisions = decisions_of(uow, ctx.copil)
        history = uow.session.exec(
            select(TransitionRecord)
            .where(TransitionRecord.copil_id == ctx.copil.id)
            .order_by(col(TransitionRecord.id))
        ).all()
        numbers = {d.action_id: a.number for d, a in decisions}
        notices = _notices(uow.session, ctx.territory.code, history, numbers)
        undecided = [i for i in info.agenda if i.state in AWAITING_DECISION]
        return page(
            ctx,
            "copil_record.html",
            info=info,
            meeting=ctx.copil,
            decisions=decisions,
            undecided=undecided if info.status is CopilStatus.HELD else [],
            history=history,
            numbers=numbers,
            notices=notices,
            saved=ctx.request.query_params.get("enregistre") == "1",
        )


def _notices(
    session: Any, code: str, history: Any, numbers: dict[int, str]
) -> list[dict[str, Any]]:
    """The notices the decisions enqueued: keyed `<kind>:<territory>:<number>:<history id>:…`
    (flows.usecases.notices)."""
    m = OutboxMessage.__table__.c  # type: ignore[attr-defined]
    patterns = [
        m.key.like(f"%:{code}:{numbers[h.action_id]}:{h.id}:%")
        for h in history
        if h.action_id in numbers
    ]
    if not patterns:
        return []
    query = sa.select(m).where(sa.or_(*patterns)).order_by(m.id)
    return [
        {
            "id": r.id,
            "subject": r.subject,
            "to": r.recipient or r.tag,
            "status": OutboxStatus(r.status).label,
        }
        for r in session.execute(query)
    ]
