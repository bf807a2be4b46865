"""Sign-in without passwords: an e-mail address, a link through the outbox, a session.

Whatever the address, the answer is the same page (no way to learn who is known); the link
is e-mailed by a delivery round that runs after the answer has gone, so timing tells nothing
either. Links are signed, single-use and expire (20 minutes by default); sign-in requests are
limited per address and per client.
"""

from __future__ import annotations

import logging

from fastapi import BackgroundTasks, FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.engine import Engine

from flows.usecases.bus import unit_of_work
from notifications.outbox import (
    NewMessage,
    Recipient,
    deliver_pending,
    enqueue,
    mailbox_of,
    open_deliverer,
)
from notifications.templates import render
from tiflow.web.app import SESSION_COOKIE, Context, Guarded, add_route, page, redirect
from tiflow.web.config import WebSettings
from tiflow.web.sessions import (
    LinkRequest,
    TooManyRequests,
    create_link,
    end_session,
    link_is_usable,
    normalise_email,
    open_session,
    record_request,
    safe_next,
    spend_link,
    utcnow,
)

log = logging.getLogger(__name__)

SIGN_IN_KIND = "sign_in"
# A tag of its own: only the e-mail service tagged `signin` carries links, never a chat
# channel that happens to share the pilots' tag.
SIGN_IN_TAG = "signin"


def sign_in_message(web: WebSettings, link: LinkRequest) -> NewMessage:
    minutes = int(web.link_lifetime.total_seconds() // 60)
    text, html = render("sign_in", territory="", name=link.name, url=link.url, minutes=minutes)
    return NewMessage(
        key=f"{SIGN_IN_KIND}:{link.link_id}",
        kind=SIGN_IN_KIND,
        tag=SIGN_IN_TAG,
        to=[Recipient(mailbox_of(link.name, link.email))],
        subject="Votre lien de connexion à tiflow",
        text=text,
        html=html,
    )


def deliver_now(engine: Engine, web: WebSettings, ids: list[int]) -> None:
    """One delivery round for these rows (after the answer); a failure stays in the outbox,
    retried by the next round of any flow."""
    try:
        with open_deliverer(web.settings) as deliverer:
            deliver_pending(engine, deliverer, ids=ids)
    except Exception:  # the row stays pending: the outbox's own rounds will send it
        log.exception("sign-in link delivery round failed")


def register(router: FastAPI) -> None:
    add_route(router, "/", home, name="home", methods=["GET"])
    add_route(router, "/connexion", sign_in_form, name="sign_in_form", methods=["GET"])
    add_route(router, "/connexion", sign_in_request, name="sign_in_request", methods=["POST"])
    add_route(router, "/connexion/lien", sign_in_link, name="sign_in_link", methods=["GET"])
    add_route(router, "/connexion/lien", sign_in_confirm, name="sign_in_confirm", methods=["POST"])
    add_route(router, "/deconnexion", sign_out, name="sign_out", methods=["POST"])


def home(ctx: Guarded) -> HTMLResponse:
    from tiflow.web.views import territories_of

    assert ctx.principal is not None
    with unit_of_work(ctx.engine) as uow:
        return page(ctx, "home.html", places=territories_of(uow, ctx.principal))


def sign_in_form(ctx: Guarded, suite: str = "/") -> HTMLResponse:
    return page(ctx, "sign_in.html", next_path=safe_next(suite), email="", error="")


def sign_in_request(ctx: Guarded, tasks: BackgroundTasks) -> HTMLResponse:
    email = normalise_email(ctx.form.get("email", ""))
    next_path = safe_next(ctx.form.get("suite"))
    if "@" not in email or len(email) < 3:
        return page(
            ctx,
            "sign_in.html",
            status=422,
            next_path=next_path,
            email=email,
            error="Adresse e-mail : saisissez une adresse complète, par exemple"
            " prenom.nom@exemple.fr.",
        )
    client = ctx.request.client.host if ctx.request.client else "inconnu"
    now = utcnow()
    with unit_of_work(ctx.engine) as uow:
        try:
            record_request(uow, ctx.web, email, client, now)
        except TooManyRequests:
            return page(ctx, "sign_in_wait.html", status=429)
        link = create_link(uow, ctx.web, email, next_path, now)
        created = enqueue(uow, [sign_in_message(ctx.web, link)]).created if link else []
        uow.commit()
    if created:
        tasks.add_task(deliver_now, ctx.engine, ctx.web, created)
    return page(ctx, "sign_in_sent.html", email=email)


def sign_in_link(ctx: Guarded, jeton: str = "") -> HTMLResponse:
    """The link only shows a button: mail scanners that open links do not spend it."""
    usable = link_is_usable(ctx.engine, ctx.web, jeton, utcnow())
    return page(ctx, "sign_in_link.html", status=200 if usable else 410, token=jeton, ok=usable)


def sign_in_confirm(ctx: Guarded) -> HTMLResponse | RedirectResponse:
    now = utcnow()
    spent = spend_link(ctx.engine, ctx.web, ctx.form.get("jeton"), now)
    if spent is None:
        return page(ctx, "sign_in_link.html", status=410, token="", ok=False)
    email, next_path = spent
    cookie = open_session(ctx.engine, ctx.web, email, now)
    ctx.cookies[SESSION_COOKIE] = (cookie, int(ctx.web.session_absolute.total_seconds()))
    return redirect(ctx, next_path)


def sign_out(ctx: Guarded) -> RedirectResponse:
    assert ctx.principal is not None
    end_session(ctx.engine, ctx.principal.session_token, utcnow())
    ctx.cookies[SESSION_COOKIE] = ("", 0)
    return redirect(ctx, "/connexion?deconnecte=1")


__all__ = ["Context", "register"]
