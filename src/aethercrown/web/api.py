"""The web console. A browser signs in once with an API key (the login form, or an investor's
share link ``/investor?key=…``); the key is checked like a Bearer key and the browser then
holds only a random session id (HttpOnly, SameSite=Lax cookie; see ``web.sessions``). Every
page follows the key's scopes: ``tenant:read`` opens the console, ``investor`` the investor
pages. Form POSTs (sign-in, sign-out, experiments) must come from this site (Origin check)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as FastApiPath
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from aethercrown.analytics import service as analytics
from aethercrown.analytics.schemas import MONTH_PATTERN
from aethercrown.clock import utcnow
from aethercrown.connectors import stripe_service
from aethercrown.core.auth import authenticate_secret
from aethercrown.core.errors import InvalidInput, NotFound, ProblemError, field_error
from aethercrown.core.money import money
from aethercrown.core.numbers import percent, plain
from aethercrown.db.session import DbSession, write_transaction
from aethercrown.experiments import schemas as experiment_schemas
from aethercrown.experiments import service as experiments
from aethercrown.investor import report
from aethercrown.investor import service as investor
from aethercrown.web import filters as console_filters
from aethercrown.web import pages, sessions
from aethercrown.web.sessions import COOKIE, ConsoleUser

HERE = Path(__file__).parent
STATIC = HERE / "static"
LOGIN = "/console/login"
# Where another module's console page hangs in the navigation once its route exists.
ONBOARDING_PATH = "/console/onboarding"
CONNECTORS_PATH = "/console/connectors"


@dataclass(frozen=True, slots=True)
class ConsolePage:
    key: str
    path: str
    label: str
    scope: str
    template: str
    build: Callable[..., dict[str, Any]] | None
    filtered: bool = True


CONSOLE_PAGES = (
    ConsolePage(
        "overview", "/console", "Overview", "tenant:read", "overview.html.j2", pages.overview
    ),
    ConsolePage(
        "churn", "/console/churn", "Churn", "tenant:read", "churn.html.j2", pages.churn_page
    ),
    ConsolePage(
        "budget",
        "/console/budget",
        "Budget",
        "tenant:read",
        "budget.html.j2",
        pages.budget_page,
        False,
    ),
    ConsolePage(
        "experiments",
        "/console/experiments",
        "Experiments",
        "tenant:read",
        "experiments.html.j2",
        pages.experiments_page,
        False,
    ),
    ConsolePage(
        "usage", "/console/usage", "Usage", "tenant:read", "usage.html.j2", pages.usage_page, False
    ),
    ConsolePage(
        "content",
        "/console/content",
        "Content",
        "tenant:read",
        "content.html.j2",
        pages.content_page,
        False,
    ),
    ConsolePage(
        "onboarding",
        ONBOARDING_PATH,
        "Onboarding",
        "tenant:read",
        "onboarding.html.j2",
        pages.onboarding_page,
        False,
    ),
    ConsolePage(
        "connectors",
        CONNECTORS_PATH,
        "Connectors",
        "tenant:read",
        "connectors.html.j2",
        pages.connectors_page,
        False,
    ),
    ConsolePage(
        "operations",
        "/console/operations",
        "Operations",
        "tenant:read",
        "operations.html.j2",
        pages.operations_page,
        False,
    ),
    ConsolePage(
        "alerts",
        "/console/alerts",
        "Alerts",
        "tenant:read",
        "alerts.html.j2",
        pages.alerts_page,
        False,
    ),
    ConsolePage(
        "investor",
        "/console/investor",
        "Investor",
        "investor",
        "investor.html.j2",
        pages.investor_page,
        False,
    ),
    ConsolePage(
        "public",
        "/console/public",
        "Public metrics",
        "investor",
        "public.html.j2",
        pages.public_page,
        False,
    ),
)
BY_PATH = {p.path: p for p in CONSOLE_PAGES}
# Drill-downs: pages behind a figure, reached from it rather than from the navigation.
CHURN_SCORES = ConsolePage(
    "churn-scores",
    "/console/churn/scores",
    "Churn scores",
    "tenant:read",
    "churn_scores.html.j2",
    pages.churn_scores,
    False,
)
CHURN_CAMPAIGNS = ConsolePage(
    "churn-campaigns",
    "/console/churn/campaigns",
    "Retention campaigns",
    "tenant:read",
    "churn_campaigns.html.j2",
    pages.churn_campaigns,
    False,
)
RENEWALS = ConsolePage(
    "renewals",
    "/console/usage/renewals",
    "Renewals",
    "tenant:read",
    "renewals.html.j2",
    pages.renewals,
    False,
)

NOTICES = {
    "signin": "Sign in to open the console.",
    "expired": "Your session ended (signed out, expired, or its key was revoked); sign in again.",
    "invalid": "That is not a valid API key: it is unknown, revoked or expired.",
    "operator": "Operator keys act for every tenant; sign in with one tenant's key.",
    "signedout": "Signed out.",
    "stripe-retry": "Put back in the mapping queue: the mapping job maps them within a minute.",
    "stripe-discard": "Discarded: kept stored, never mapped.",
    "stripe-none": "No dead event matched: nothing changed.",
}

router = APIRouter(tags=["web"], include_in_schema=False)
_env = Environment(
    loader=FileSystemLoader(str(HERE / "templates")),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.globals.update(
    fmt_number=report.number, fmt_percent=report.percent, fmt=plain, percent=percent, money=money
)


def _render(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(_env.get_template(template).render(**context), status_code=status)


def _has_route(request: Request, path: str) -> bool:
    return any(getattr(route, "path", None) == path for route in request.app.routes)


def navigation(request: Request, user: ConsoleUser, query: str) -> list[dict[str, Any]]:
    """The pages this user's key may open, each keeping the current filters; an entry whose
    route is not installed (onboarding, until its module lands) is left out."""
    out = []
    for page in CONSOLE_PAGES:
        if not user.has(page.scope):
            continue
        if page.build is None and not _has_route(request, page.path):
            continue
        out.append(
            {
                "label": page.label,
                "href": page.path + query,
                "current": request.url.path == page.path,
            }
        )
    return out


def first_page(user: ConsoleUser) -> str:
    for page in CONSOLE_PAGES:
        if page.build is not None and user.has(page.scope):
            return page.path
    return LOGIN


def _to_login(next_path: str, reason: str) -> RedirectResponse:
    return RedirectResponse(
        f"{LOGIN}?next={quote(next_path, safe='/')}&reason={reason}", status_code=303
    )


def _check_origin(request: Request) -> None:
    sessions.require_same_origin(request, "the console itself")


def _safe_next(target: str | None) -> str:
    """Only a console page of this site (never another host) is a place to return to."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/console"
    path = target.split("?", 1)[0]
    return target if path in BY_PATH or path.startswith("/console/") else "/console"


async def _sign_in(
    request: Request, session: Session, secret: str, target: str
) -> RedirectResponse:
    """Check the key, start a session and send the browser to ``target`` (or to the first
    page the key may open)."""
    if not secret or len(secret) > 200:
        return _to_login(target, "invalid")
    try:
        principal = await authenticate_secret(request, Response(), session, secret)
    except ProblemError as exc:
        if exc.status == 429:
            raise
        return _to_login(target, "invalid")
    if principal.tenant_id is None:
        return _to_login(target, "operator")
    user = ConsoleUser(principal.key_id, principal.tenant_id, principal.scopes)
    page = BY_PATH.get(target.split("?", 1)[0])
    if page is not None and not user.has(page.scope):
        target = first_page(user)
    session_id = sessions.start(session, principal.key_id, principal.tenant_id)
    redirect = RedirectResponse(target, status_code=303)
    sessions.set_cookie(redirect, request, session_id)
    return redirect


def _user(request: Request, session: Session) -> ConsoleUser | None:
    return sessions.resolve(session, request.cookies.get(COOKIE))


def _guard(request: Request, session: Session, scope: str) -> ConsoleUser | RedirectResponse:
    """The signed-in user if the key may open this page; else where to send the browser: the
    sign-in page with the reason, or the first page the key may open."""
    user = _user(request, session)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if user is None:
        reason = "expired" if request.cookies.get(COOKIE) else "signin"
        return _to_login(here, reason)
    if not user.has(scope):
        return RedirectResponse(first_page(user), status_code=303)
    return user


def _filters(request: Request) -> console_filters.Filters:
    q = request.query_params
    return console_filters.parse(
        utcnow(),
        q.get("range"),
        q.get("from") or None,
        q.get("to") or None,
        q.get("plan") or None,
        q.get("segment") or None,
    )


def _plans(session: Session, tenant_id: uuid.UUID) -> list[str]:
    return analytics.plan_names(session, tenant_id)


async def _page(request: Request, session: Session, page: ConsolePage, **extra: Any) -> Response:
    guard = _guard(request, session, page.scope)
    if isinstance(guard, RedirectResponse):
        return guard
    user = guard
    chosen = _filters(request)
    assert page.build is not None
    body = await run_in_threadpool(page.build, session, user.tenant_id, chosen, **extra)
    plans = await run_in_threadpool(_plans, session, user.tenant_id) if page.filtered else []
    return _render(
        page.template,
        signed_in=True,
        nav=navigation(request, user, chosen.query),
        path=request.url.path,
        filters=chosen,
        show_filters=page.filtered,
        presets=console_filters.PRESETS,
        plans=plans,
        segments=console_filters.SEGMENTS,
        notice=request.query_params.get("notice") and NOTICES.get(request.query_params["notice"]),
        back=chosen.link("/console"),
        # Addresses a user pastes elsewhere (Stripe's webhook URL, the SDK's host) as this
        # request reached the server.
        origin=str(request.base_url).rstrip("/"),
        **body,
    )


# ---------------------------------------------------------------------------------------------
# Signing in and out


@router.get(LOGIN)
def login_page(
    next: Annotated[str | None, Query(max_length=500)] = None,
    reason: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    return _render(
        "login.html.j2",
        next=_safe_next(next),
        error=NOTICES.get(reason or ""),
        signed_in=False,
    )


@router.post(LOGIN)
async def login(request: Request, session: DbSession) -> Response:
    _check_origin(request)
    body = await request.body()
    form = parse_qs(body.decode("utf-8", "replace")[:4096])
    secret = (form.get("key") or [""])[0].strip()
    return await _sign_in(request, session, secret, _safe_next((form.get("next") or [""])[0]))


@router.post("/console/logout")
def logout(request: Request, session: DbSession) -> RedirectResponse:
    _check_origin(request)
    sessions.end(session, request.cookies.get(COOKIE))
    response = RedirectResponse(f"{LOGIN}?reason=signedout", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


# The first pages' addresses still work: bookmarks and share links from before the console.
@router.get("/dashboard")
def old_dashboard() -> RedirectResponse:
    return RedirectResponse("/console", status_code=307)


@router.get("/dashboard/login")
def old_login() -> RedirectResponse:
    return RedirectResponse(LOGIN, status_code=307)


@router.get("/investor")
async def investor_dashboard(
    request: Request,
    session: DbSession,
    key: Annotated[str | None, Query(max_length=200, description="Share-link key")] = None,
) -> Response:
    if key is None:
        return RedirectResponse("/console/investor", status_code=307)
    # A share link signs in (a read unit may not write the session: one write unit of its own)
    # and drops the key from the address bar and history.
    factory = request.app.state.session_factory
    with write_transaction(factory) as writer:
        return await _sign_in(request, writer, key, "/console/investor")


# ---------------------------------------------------------------------------------------------
# Pages


def _console_route(page: ConsolePage) -> None:
    async def show(request: Request, session: DbSession) -> Response:
        return await _page(request, session, page)

    show.__name__ = f"console_{page.key}"
    router.add_api_route(page.path, show, methods=["GET"], include_in_schema=False)


for _page_spec in CONSOLE_PAGES:
    if _page_spec.build is not None:
        _console_route(_page_spec)


@router.get(ONBOARDING_PATH + "/{onboarding_id}")
async def console_onboarding(request: Request, session: DbSession, onboarding_id: str) -> Response:
    try:
        ident = uuid.UUID(onboarding_id)
        return await _page(request, session, BY_PATH[ONBOARDING_PATH], onboarding_id=ident)
    except (ValueError, NotFound):
        return _render("onboarding_missing.html.j2", 404, ident=onboarding_id[:100])


@router.get("/console/customers")
async def console_customers(
    request: Request,
    session: DbSession,
    month: Annotated[str, Query(pattern=MONTH_PATTERN)],
    movement: Annotated[
        str, Query(pattern="^(paying|new|expansion|contraction|churn|reactivation)$")
    ],
) -> Response:
    page = ConsolePage(
        "customers",
        "/console/customers",
        "Customers",
        "tenant:read",
        "customers.html.j2",
        pages.customers,
    )
    return await _page(request, session, page, month=month, movement=movement)


@router.get("/console/churn/scores")
async def console_churn_scores(
    request: Request, session: DbSession, month: Annotated[str, Query(pattern=MONTH_PATTERN)]
) -> Response:
    return await _page(request, session, CHURN_SCORES, month=month)


@router.get("/console/churn/campaigns")
async def console_churn_campaigns(request: Request, session: DbSession) -> Response:
    return await _page(request, session, CHURN_CAMPAIGNS)


@router.get("/console/usage/renewals")
async def console_renewals(request: Request, session: DbSession) -> Response:
    return await _page(request, session, RENEWALS)


def _form(body: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")[:8192]).items()}


@router.post("/console/experiments")
async def console_create_experiment(request: Request, session: DbSession) -> Response:
    _check_origin(request)
    guard = _guard(request, session, "tenant:write")
    if isinstance(guard, RedirectResponse):
        return guard
    form = _form(await request.body())
    variants = [v.strip() for v in form.get("variants", "").split(",") if v.strip()]
    try:
        body = experiment_schemas.ExperimentCreate(
            name=form.get("name", "").strip(),
            hypothesis=form.get("hypothesis") or None,
            variants=[experiment_schemas.VariantIn(key=v) for v in variants],
            metrics=[experiment_schemas.MetricIn(key=form.get("metric", "conversion").strip())],
        )
    except ValueError as exc:
        raise InvalidInput(
            "The experiment form is not valid", [field_error(["form"], str(exc)[:500])]
        ) from None
    experiments.create(session, guard.tenant_id, body, f"key:{guard.key_id}")
    return RedirectResponse("/console/experiments", status_code=303)


@router.post("/console/experiments/{experiment_id}/stop")
async def console_stop_experiment(
    experiment_id: uuid.UUID, request: Request, session: DbSession
) -> Response:
    _check_origin(request)
    guard = _guard(request, session, "tenant:write")
    if isinstance(guard, RedirectResponse):
        return guard
    experiments.stop(session, guard.tenant_id, experiment_id, f"key:{guard.key_id}")
    return RedirectResponse("/console/experiments", status_code=303)


@router.post(CONNECTORS_PATH + "/stripe/events/{action}")
async def console_stripe_dead_events(
    request: Request,
    session: DbSession,
    action: Annotated[str, FastApiPath(pattern="^(retry|discard)$")],
) -> Response:
    """Retry or discard one dead Stripe event (form field ``event_id``) or every dead one
    (``all=1``), through the same service functions as the API's routes."""
    _check_origin(request)
    guard = _guard(request, session, "tenant:write")
    if isinstance(guard, RedirectResponse):
        return guard
    form = _form(await request.body())
    event_id = form.get("event_id", "").strip()
    if form.get("all") == "1" and not event_id:
        bulk = (
            stripe_service.retry_dead_events
            if action == "retry"
            else stripe_service.discard_dead_events
        )
        done = bulk(session, guard.tenant_id)["affected"]
    elif event_id and len(event_id) <= 255 and "all" not in form:
        single = (
            stripe_service.retry_dead_event
            if action == "retry"
            else stripe_service.discard_dead_event
        )
        single(session, guard.tenant_id, event_id)  # 404 or 409 (not dead): nothing changes
        done = 1
    else:
        raise InvalidInput(
            "Name one dead event or all of them",
            [field_error(["form", "event_id"], "an event id (at most 255 characters), or all=1")],
        )
    notice = f"stripe-{action}" if done else "stripe-none"
    return RedirectResponse(f"{CONNECTORS_PATH}?notice={notice}#stripe", status_code=303)


@router.get("/investor/report")
async def investor_report(
    request: Request,
    session: DbSession,
    month: Annotated[str | None, Query(pattern=MONTH_PATTERN)] = None,
    format: Annotated[str, Query(pattern="^(html|pdf)$")] = "html",
) -> Response:
    guard = _guard(request, session, "investor")
    if isinstance(guard, RedirectResponse):
        return guard
    if month is not None:
        investor.validate_month(month)
    body = await run_in_threadpool(investor.monthly_report, session, guard.tenant_id, month)
    if format == "pdf":
        pdf = await run_in_threadpool(report.render_pdf, body)
        return Response(pdf, media_type="application/pdf")
    return HTMLResponse(await run_in_threadpool(report.render_html, body))


@router.get("/")
def front_page() -> RedirectResponse:
    """The front door is the console, which asks to sign in first."""
    return RedirectResponse("/console", status_code=307)


# Files under /web/static/ (anything else there is not served): the dashboard's script and
# vendored uPlot, and the API docs pages' vendored Swagger UI and Redoc (see vendor/README.md).
STATIC_FILES = {
    "dashboard.js": "text/javascript",
    "filters.js": "text/javascript",
    "console.css": "text/css",
    "uPlot.iife.min.js": "text/javascript",
    "uPlot.min.css": "text/css",
    "vendor/swagger-ui/swagger-ui-bundle.js": "text/javascript",
    "vendor/swagger-ui/swagger-ui.css": "text/css",
    "vendor/swagger-ui/favicon-32x32.png": "image/png",
    "vendor/redoc/redoc.standalone.js": "text/javascript",
}


@router.get("/web/static/{path:path}")
def static_file(path: str) -> FileResponse:
    media_type = STATIC_FILES.get(path)
    if media_type is None:
        raise NotFound("Static file", path)
    return FileResponse(
        STATIC / path, media_type=media_type, headers={"Cache-Control": "public, max-age=3600"}
    )


# The API docs pages, as FastAPI would serve them but with their assets from STATIC_FILES (the
# app is made with docs_url=None, redoc_url=None): no page of the platform loads anything from
# outside the machine. Their third-party code is held to that too: Redoc's sidebar asks for
# Redocly's logo from cdn.redoc.ly, which this policy stops the browser from fetching (the
# image then hides itself). Inline script and style: the pages' own set-up script, and the
# styles both libraries inject; blob: workers: Redoc's search index.
DOCS_OAUTH2_REDIRECT = "/docs/oauth2-redirect"
DOCS_CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
    )
)


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    page = get_swagger_ui_html(
        openapi_url=root + str(request.app.openapi_url),
        title=f"{request.app.title} — API docs",
        swagger_js_url=f"{root}/web/static/vendor/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{root}/web/static/vendor/swagger-ui/swagger-ui.css",
        swagger_favicon_url=f"{root}/web/static/vendor/swagger-ui/favicon-32x32.png",
        oauth2_redirect_url=root + DOCS_OAUTH2_REDIRECT,
        # Swagger UI would otherwise send the spec to validator.swagger.io for a badge. Tags
        # start collapsed: with every one of the 130-odd operations expanded at once, Swagger
        # UI 5 stopped drawing after the first dozen (seen once the content module landed).
        swagger_ui_parameters={"validatorUrl": None, "docExpansion": "none"},
    )
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page


@router.get(DOCS_OAUTH2_REDIRECT)
def swagger_ui_oauth2_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    page = get_redoc_html(
        openapi_url=root + str(request.app.openapi_url),
        title=f"{request.app.title} — API reference",
        redoc_js_url=f"{root}/web/static/vendor/redoc/redoc.standalone.js",
        redoc_favicon_url=f"{root}/web/static/vendor/swagger-ui/favicon-32x32.png",
        # Its fonts come from Google; the page falls back to the system's sans-serif.
        with_google_fonts=False,
    )
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page
