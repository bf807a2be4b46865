"""The FastAPI application: the guard every route goes through, pages, errors, headers."""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl, quote

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Send
from starlette.types import Scope as Scope_

from models.db import engine_for
from models.tables import ActionSheet, CopilMeeting, Territory
from models.vocabulary import Role
from notifications.fr import deadline_phrase, format_date, typeset_html
from notifications.templates import FRENCH_FILTERS
from tiflow.web import security, uploads
from tiflow.web.access import NOT_FOUND, ROUTES, Principal, Refusal, Rule, Scope, check
from tiflow.web.config import WebSettings
from tiflow.web.sessions import principal_of, utcnow

HERE = Path(__file__).parent
T = TypeVar("T", bound=SQLModel)
SESSION_COOKIE = "tiflow_session"
VISITOR_COOKIE = "tiflow_visiteur"  # anonymous visitors' CSRF holder (sign-in forms)
FORM_MAX_BYTES = 64 * 1024
HTTP_MESSAGES = {
    404: NOT_FOUND,
    405: "Cette page ne s'ouvre pas ainsi : passez par le formulaire de la page.",
}


class SignInNeeded(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


@dataclass
class Context:
    """What the guard established for this request, handed to the page."""

    request: Request
    web: WebSettings
    engine: Engine
    rule: Rule
    principal: Principal | None
    csrf: str
    form: dict[str, str]
    territory: Territory | None = None
    action: ActionSheet | None = None
    copil: CopilMeeting | None = None
    roles: frozenset[Role] = frozenset()
    # To set on the response: name → (value, max-age in seconds; None: until the browser closes)
    cookies: dict[str, tuple[str, int | None]] = field(default_factory=dict)

    def may(self, route: str, pilot_id: int | None = None) -> bool:
        """Whether a link or form to `route` should be shown (the server checks on use)."""
        if self.principal is None or self.territory is None or self.territory.id is None:
            return False
        try:
            check(ROUTES[route], self.principal, self.territory.id, pilot_id)
        except Refusal:
            return False
        return True


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form body (plain HTML forms need nothing more than the standard library;
    no multipart dependency); the first value of each field."""
    if request.method != "POST":
        return {}
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        signed_in = bool(request.cookies.get(SESSION_COOKIE))
        return await uploads.read_multipart(request, signed_in)  # a file: its own size limit
    body = await request.body()
    if len(body) > FORM_MAX_BYTES:
        raise Refusal(413, "Formulaire trop volumineux.")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        raise Refusal(400, "Formulaire illisible.") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


def guard(request: Request, form: Annotated[dict[str, str], Depends(read_form)]) -> Context:
    """Runs before every route: session, CSRF, then the route's rule from `ROUTES`.

    One connection for all of it (the session with its people and roles, then what the path
    names): a page's request pays one checkout here, not one per read. On PostgreSQL in
    autocommit: these are single-statement reads (and the once-a-minute touch, committed at
    once), so no transaction to open and roll back, two round trips fewer for every page;
    the page's own reads and writes run in its unit of work's transaction, as before."""
    route = request.scope.get("route")
    rule = ROUTES.get(getattr(route, "name", ""))
    if rule is None:  # default deny: a route missing from the table opens to nobody
        raise Refusal(403, "Page non déclarée.")
    web: WebSettings = request.app.state.web
    engine: Engine = request.app.state.engine
    now = utcnow()
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            # SQLite opens no transaction for reads anyway, and setting its isolation level
            # back on check-in (a PRAGMA) expires every statement the connection had prepared.
            conn.execution_options(isolation_level="AUTOCOMMIT")
        principal = principal_of(conn, web, request.cookies.get(SESSION_COOKIE), now)
        cookies: dict[str, tuple[str, int | None]] = {}
        holder = principal.session_token if principal else request.cookies.get(VISITOR_COOKIE)
        if rule.write and not security.csrf_valid(web.secret_key, holder, form.get("csrf")):
            raise Refusal(
                403, "Jeton de sécurité absent ou périmé : rechargez la page et recommencez."
            )
        if holder is None:
            holder = secrets.token_urlsafe(24)
            cookies[VISITOR_COOKIE] = (holder, None)
        ctx = Context(
            request, web, engine, rule, principal, security.csrf_token(web.secret_key, holder), form
        )
        ctx.cookies = cookies
        if rule.scope is Scope.PUBLIC:
            return ctx
        if principal is None:
            if request.method == "GET":
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                raise SignInNeeded(target)
            raise Refusal(403, "Session expirée : reconnectez-vous.")
        _resolve(conn, ctx, request.path_params)
    if ctx.territory is not None:
        assert ctx.territory.id is not None
        pilot = ctx.action.pilot_id if ctx.action else None
        ctx.roles = check(rule, principal, ctx.territory.id, pilot)
    return ctx


_T, _A, _C = (
    Territory.__table__,  # type: ignore[attr-defined]
    ActionSheet.__table__,  # type: ignore[attr-defined]
    CopilMeeting.__table__,  # type: ignore[attr-defined]
)
# What a path names, read as plain rows (statements built once): the page gets plain objects
# that no session expires.
_TERRITORY_BY_CODE = sa.select(_T).where(_T.c.code == sa.bindparam("code"))
_TERRITORY_BY_ID = sa.select(_T).where(_T.c.id == sa.bindparam("id"))
_ACTION_BY_ID = sa.select(_A).where(_A.c.id == sa.bindparam("id"))
_ACTION_BY_NUMBER = sa.select(_A).where(
    _A.c.territory_id == sa.bindparam("territory_id"), _A.c.number == sa.bindparam("number")
)
_COPIL_BY_ID = sa.select(_C).where(_C.c.id == sa.bindparam("id"))


def _one(conn: Connection, model: type[T], statement: sa.Select[Any], **values: Any) -> T:
    """The row as a plain `model` object, or 404."""
    row = conn.execute(statement, values).first()
    if row is None:
        raise Refusal(404, NOT_FOUND)
    return model(**row._mapping)


def _resolve(conn: Connection, ctx: Context, params: dict[str, Any]) -> None:
    """Load the territory, action or COPIL the path names (404 for what does not exist)."""
    if ctx.rule.scope is Scope.ACTION_ID:
        ctx.action = _one(conn, ActionSheet, _ACTION_BY_ID, id=_int(params["action_id"]))
        ctx.territory = _one(conn, Territory, _TERRITORY_BY_ID, id=ctx.action.territory_id)
        return
    if "territory" in params:
        ctx.territory = _one(conn, Territory, _TERRITORY_BY_CODE, code=params["territory"])
    if ctx.rule.scope is Scope.ACTION:
        assert ctx.territory is not None
        ctx.action = _one(
            conn,
            ActionSheet,
            _ACTION_BY_NUMBER,
            territory_id=ctx.territory.id,
            number=params["number"],
        )
    elif ctx.rule.scope is Scope.COPIL:
        copil = _one(conn, CopilMeeting, _COPIL_BY_ID, id=_int(params["copil_id"]))
        if ctx.territory is None or copil.territory_id != ctx.territory.id:
            raise Refusal(404, NOT_FOUND)
        ctx.copil = copil


def _int(value: str) -> int:
    if not str(value).isdigit():
        raise Refusal(404, NOT_FOUND)
    return int(value)


Guarded = Annotated[Context, Depends(guard)]


def add_route(
    router: FastAPI,
    path: str,
    endpoint: Callable[..., Any],
    *,
    name: str,
    methods: list[str] | None = None,
) -> None:
    """A page: its `name` is its key in `access.ROUTES` (checked by the guard)."""
    router.add_api_route(
        path, _with_guard(endpoint), name=name, methods=methods or ["GET"], response_model=None
    )


def _with_guard(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """The page with the guard called at its start, in the same worker thread.

    As a dependency of its own, the (blocking) guard took a turn in FastAPI's thread pool and
    the page another: two hand-overs between the event loop and a worker for every request.
    Here one. The guard still runs before any of the page's code; the page's other parameters
    are all strings with defaults or path segments (nothing to refuse before the guard)."""
    signature = inspect.signature(endpoint, eval_str=True)
    names = [n for n, p in signature.parameters.items() if p.annotation == Guarded]
    if not names or inspect.iscoroutinefunction(endpoint):
        return endpoint
    (ctx_name,) = names
    guard_parameters = [
        inspect.Parameter("guard_request", _KEYWORD, annotation=Request),
        inspect.Parameter("guard_form", _KEYWORD, annotation=_Form),
    ]
    others = [p.replace(kind=_KEYWORD) for n, p in signature.parameters.items() if n != ctx_name]

    def guarded(guard_request: Request, guard_form: dict[str, str], **values: Any) -> Any:
        return endpoint(**{ctx_name: guard(guard_request, guard_form)}, **values)

    guarded.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*guard_parameters, *others]
    )
    guarded.__name__ = getattr(endpoint, "__name__", "page")
    return guarded


_KEYWORD = inspect.Parameter.KEYWORD_ONLY
_Form = Annotated[dict[str, str], Depends(read_form)]


# ---------------------------------------------------------------------------------------------
# Rendering


@cache
def templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # Compiled once per process: no stat() of each template (and of the templates it
        # extends or includes) on every page. A changed template needs a restart.
        auto_reload=False,
    )
    env.filters.update(FRENCH_FILTERS)
    env.filters.update(_CACHED_FILTERS)
    return env


def _first_upper(text: str) -> str:
    """The text with its first letter in capitals, the rest as it is (a deadline's « jalon … »
    opening a line); ``capitalize`` would lower the rest."""
    return text[:1].upper() + text[1:]


# Pure formatters a page calls per cell with few distinct values (the plan: a date, a
# deadline phrase and a deadline's name per deadline, the same ones over and over): each
# computed once per process.
_CACHED_FILTERS = {
    "first_upper": lru_cache(maxsize=4096)(_first_upper),
    "date_fr": lru_cache(maxsize=4096)(format_date),
    "deadline": lru_cache(maxsize=4096)(deadline_phrase),
}


def render_page(template: str, **values: Any) -> str:
    """A page's HTML, typeset as the e-mails are (no-break spaces inside « » and before : ; ?
    !): on its text nodes only — tags and their attributes (form values, URLs), scripts,
    styles, ``pre``/``code`` and ``textarea`` contents are left as they are."""
    return typeset_html(templates().get_template(template).render(**values))


def page(ctx: Context, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    html = render_page(template, ctx=ctx, **values)
    response = HTMLResponse(html, status_code=status)
    set_cookies(ctx, response)
    return response


def set_cookies(ctx: Context, response: Response) -> None:
    """Every cookie of tiflow: HttpOnly, SameSite=Lax, Secure when served over HTTPS."""
    for name, (value, max_age) in ctx.cookies.items():
        response.set_cookie(
            name,
            value,
            httponly=True,
            samesite="lax",
            secure=is_https(ctx.request, ctx.web),
            path="/",
            max_age=max_age,
        )


def is_https(request: Request, web: WebSettings) -> bool:
    return request.url.scheme == "https" or web.https


def redirect(ctx: Context, url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    set_cookies(ctx, response)
    return response


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    html = render_page("error.html", status=status, message=message)
    return HTMLResponse(html, status_code=status)


# ---------------------------------------------------------------------------------------------
# The application

SECURITY_HEADERS = (
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
NO_STORE = (b"cache-control", b"no-store")


class SecurityHeaders:
    """Every answer's security headers (and no-store, but for static files), unless the route
    set its own. A plain ASGI middleware, not ``@app.middleware("http")``: Starlette's
    BaseHTTPMiddleware runs each request in a task group and copies the body through a
    stream, a cost on every page for what is only a few headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope_, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")
        wanted: tuple[tuple[bytes, bytes], ...] = (
            SECURITY_HEADERS if static else (*SECURITY_HEADERS, NO_STORE)
        )

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in wanted if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(web: WebSettings, engine: Engine | None = None) -> FastAPI:
    from tiflow.web import copil, pilot, signin
    from tiflow.web import preferences as preference_pages

    app = FastAPI(
        title="tiflow", docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False
    )
    app.state.web = web
    app.state.engine = engine or engine_for(web.settings.database_url)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/health", name="health")
    def health() -> dict[str, str]:
        return {"statut": "ok"}

    for module in (signin, pilot, copil):
        module.register(app)
    from tiflow.web import imports

    imports.register(app)
    from tiflow.web import budget

    budget.register(app)
    from tiflow.web import runs

    runs.register(app)
    from tiflow.web import dashboard, editing  # the plan at a glance; editing the plan

    dashboard.register(app)
    editing.register(app)
    from tiflow.web import copil_admin, mail

    for module in (copil_admin, mail):
        module.register(app)
    preference_pages.register(app)

    @app.exception_handler(Refusal)
    def refused(request: Request, exc: Refusal) -> HTMLResponse:
        return error_page(request, exc.status, exc.message)

    @app.exception_handler(SignInNeeded)
    def sign_in_needed(request: Request, exc: SignInNeeded) -> RedirectResponse:
        return RedirectResponse(f"/connexion?suite={quote(exc.next_path)}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        """Starlette's own errors (unknown path, wrong method…), in French."""
        message = HTTP_MESSAGES.get(exc.status_code, "La demande n'a pas pu aboutir.")
        return error_page(request, exc.status_code, message)

    @app.exception_handler(RequestValidationError)
    def bad_request(request: Request, exc: RequestValidationError) -> HTMLResponse:
        return error_page(request, 400, "Adresse de page mal formée.")

    app.add_middleware(SecurityHeaders)
    return app
