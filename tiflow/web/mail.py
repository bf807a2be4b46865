"""« Envois »: the coordinator's sent mail — every message of the territory with its
recipient, kind, action, status, attempts and last error; filters by person, action, kind and
status; the message as it was stored (and sent); « Renvoyer » a failed or pending one through
the outbox, once (`flows.usecases.resend`), then one delivery round for it after the answer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from fastapi import BackgroundTasks, FastAPI
from fastapi.responses import HTMLResponse, Response

from flows.usecases.bus import NOTICE_KINDS, unit_of_work
from flows.usecases.resend import resend_message
from models.deadlines import ACTION_END, COPIL, FUNDING_KINDS, MILESTONE, NUDGE
from models.errors import NotFound, TiflowError
from models.outbox import DeliveryPhase, OutboxAttachment, OutboxItem, OutboxMessage, OutboxStatus
from models.tables import ActionSheet, CopilMeeting, Funding, Milestone, Territory
from notifications.kinds import KINDS, kind_short
from notifications.outbox import IN_DOUBT_FILTER, list_messages
from tiflow.web.access import NOT_FOUND, Refusal
from tiflow.web.app import Context, Guarded, add_route, page, redirect
from tiflow.web.copil_admin import DIGEST_CSP
from tiflow.web.signin import deliver_now

M = OutboxMessage.__table__.c  # type: ignore[attr-defined]
LIMIT = 200
# The kinds' French names, as `tiflow envois` shows them (notifications/kinds.py).
KIND_NAMES = {kind: kind_short(kind) for kind in KINDS}
STATUSES = [(s.value, s.label) for s in OutboxStatus] + [(IN_DOUBT_FILTER, "incertain")]


def register(router: FastAPI) -> None:
    add_route(router, "/t/{territory}/envois", mail_list, name="mail_list")
    add_route(router, "/t/{territory}/envois/{message_id}", message, name="mail_message")
    add_route(
        router,
        "/t/{territory}/envois/{message_id}/renvoyer",
        resend,
        name="mail_resend",
        methods=["POST"],
    )


def mail_list(
    ctx: Guarded, personne: str = "", action: str = "", type: str = "", etat: str = ""
) -> HTMLResponse:
    assert ctx.territory is not None and ctx.territory.id is not None
    with unit_of_work(ctx.engine) as uow:
        query = sa.select(M).where(M.territory_id == ctx.territory.id)
        if personne.strip():
            like = f"%{personne.strip().lower()}%"
            query = query.where(sa.or_(sa.func.lower(M.recipient).like(like), M.address.like(like)))
        if type in KIND_NAMES:
            query = query.where(M.kind == type)
        if etat == IN_DOUBT_FILTER:
            query = query.where(M.status == OutboxStatus.FAILED.value, M.drop_reason == "in_doubt")
        elif etat in OutboxStatus._value2member_map_:
            query = query.where(M.status == etat)
        if action.strip():
            query = query.where(M.id.in_(_about_action(uow.session, ctx.territory, action)))
        rows = list(uow.session.execute(query.order_by(M.id.desc()).limit(LIMIT)))
        actions = _actions_of(uow.session, [r.id for r in rows], rows)
    return page(
        ctx,
        "mail_list.html",
        rows=[_row(r, actions.get(r.id, "")) for r in rows],
        filters={"personne": personne, "action": action, "type": type, "etat": etat},
        kinds=sorted(KIND_NAMES.items(), key=lambda k: k[1]),
        statuses=STATUSES,
        limit=LIMIT,
    )


def _about_action(session: Any, territory: Territory, number: str) -> list[int]:
    """Messages about the action: through what they are about (reminders, alerts: the
    outbox's own `list_messages`) or by their key (decision notices:
    `<kind>:<territory>:<number>:…`)."""
    number = number.strip().upper()
    ids = list(
        session.execute(
            sa.select(ActionSheet.id).where(  # type: ignore[call-overload]
                ActionSheet.territory_id == territory.id, ActionSheet.number == number
            )
        ).scalars()
    )
    found = {r.id for r in list_messages(session, action_ids=ids, limit=5000)} if ids else set()
    found |= set(
        session.execute(
            sa.select(M.id).where(
                M.kind.in_(NOTICE_KINDS), M.key.like(f"%:{territory.code}:{number}:%")
            )
        ).scalars()
    )
    return sorted(found)


def _actions_of(session: Any, ids: Sequence[int], rows: Sequence[Any]) -> dict[int, str]:
    """Per message, the action(s) it is about (numbers), or its COPIL."""
    about: dict[int, set[str]] = defaultdict(set)
    for row in rows:
        if row.kind in NOTICE_KINDS and len(parts := row.key.split(":")) > 2:
            about[row.id].add(parts[2])
    if ids:
        i = OutboxItem.__table__.c  # type: ignore[attr-defined]
        items = list(session.execute(sa.select(i).where(i.message_id.in_(list(ids)))))
        for item in items:
            if (label := _ref_label(session, item.ref_kind, item.ref_id)) is not None:
                about[item.message_id].add(label)
    return {k: ", ".join(sorted(v)) for k, v in about.items()}


def _ref_label(session: Any, kind: str, ref_id: int) -> str | None:
    if kind in (ACTION_END, NUDGE):
        action = session.get(ActionSheet, ref_id)
    elif kind == MILESTONE:
        milestone = session.get(Milestone, ref_id)
        action = session.get(ActionSheet, milestone.action_id) if milestone else None
    elif kind in FUNDING_KINDS:
        funding = session.get(Funding, ref_id)
        action = session.get(ActionSheet, funding.action_id) if funding else None
    elif kind == COPIL:
        copil = session.get(CopilMeeting, ref_id)
        return f"COPIL n° {copil.id}" if copil else None
    else:
        return None
    return action.number if action else None


def _state(row: Any) -> str:
    if row.status == OutboxStatus.FAILED.value and row.drop_reason == "in_doubt":
        return "incertain (peut-être reçu)"
    label = OutboxStatus(row.status).label
    if row.status == OutboxStatus.SENDING.value and row.delivery_phase:
        label += f" ({DeliveryPhase(row.delivery_phase).label})"
    return label


def _row(row: Any, action: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": KIND_NAMES.get(row.kind, row.kind),
        "to": row.recipient or f"canaux « {row.tag} »",
        "subject": row.subject,
        "action": action,
        "status": OutboxStatus(row.status),
        "state": _state(row),
        "attempts": row.attempts,
        "sent_at": row.sent_at,
        "next_attempt_at": row.next_attempt_at,
        "created_at": row.created_at,
        "error": row.last_error or "",
        "resendable": _resendable(row),
    }


def _resendable(row: Any) -> bool:
    return row.requeued_at is None and row.status in (
        OutboxStatus.FAILED.value,
        OutboxStatus.PENDING.value,
    )


def message(ctx: Guarded, version: str = "") -> Response:
    """One message as stored and sent: headers, text, attachments; `?version=html`: its HTML
    part alone (with only its inline styles)."""
    return _message_page(ctx, version)


def _message_page(
    ctx: Context, version: str = "", status: int = 200, problem: str = ""
) -> Response:
    assert ctx.territory is not None
    message_id = _id(ctx.request.path_params["message_id"])
    with unit_of_work(ctx.engine) as uow:
        row = uow.session.execute(
            sa.select(M).where(M.id == message_id, M.territory_id == ctx.territory.id)
        ).one_or_none()
        if row is None:
            raise Refusal(404, NOT_FOUND)
        a = OutboxAttachment.__table__.c  # type: ignore[attr-defined]
        files = list(
            uow.session.execute(
                sa.select(a.filename, a.content_type, sa.func.length(a.data)).where(
                    a.message_id == message_id
                )
            )
        )
        action = _actions_of(uow.session, [row.id], [row]).get(row.id, "")
    if version == "html":
        response = HTMLResponse(row.html_body or "<p>Ce message n'a pas de version HTML.</p>")
        response.headers["Content-Security-Policy"] = DIGEST_CSP
        return response
    return page(
        ctx,
        "mail_message.html",
        status=status,
        m=row,
        info=_row(row, action),
        files=files,
        problem=problem,
        resent=ctx.request.query_params.get("renvoi", ""),
    )


def _id(value: str) -> int:
    if not str(value).isdigit():
        raise Refusal(404, NOT_FOUND)
    return int(value)


def resend(ctx: Guarded, tasks: BackgroundTasks) -> Response:
    assert ctx.territory is not None and ctx.territory.id is not None
    message_id = _id(ctx.request.path_params["message_id"])
    try:
        with unit_of_work(ctx.engine) as uow:
            done = resend_message(uow, ctx.territory.id, message_id)
            uow.commit()
    except NotFound:
        raise Refusal(404, NOT_FOUND) from None
    except TiflowError as error:
        return _message_page(ctx, status=409, problem=str(error))
    if not done.already:
        tasks.add_task(deliver_now, ctx.engine, ctx.web, [message_id])
    target = f"/t/{ctx.territory.code}/envois/{message_id}"
    return redirect(ctx, target + ("?renvoi=deja" if done.already else "?renvoi=1"))
