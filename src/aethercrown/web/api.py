"""The dashboard pages. A browser signs in once with an API key (login form, or an investor share
link ``/investor?key=…``); the key is kept in an HttpOnly, SameSite=Strict cookie and checked on
every page exactly like a Bearer key (expiry, revocation, rate limit). The executive page needs
``tenant:read``, the investor page ``investor``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request, Response
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from aethercrown.analytics.schemas import MONTH_PATTERN
from aethercrown.core.auth import TenantPrincipal, authenticate_secret
from aethercrown.core.errors import NotFound, ProblemError
from aethercrown.db.session import DbSession
from aethercrown.investor import report
from aethercrown.investor import service as investor
from aethercrown.web import service

COOKIE = "aethercrown_key"
COOKIE_MAX_AGE = 8 * 3600
HERE = Path(__file__).parent
STATIC = HERE / "static"
PAGES = {"/dashboard": "tenant:read", "/investor": "investor"}

router = APIRouter(tags=["web"], include_in_schema=False)
_env = Environment(
    loader=FileSystemLoader(str(HERE / "templates")),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.globals.update(fmt_number=report.number, fmt_percent=report.percent)


def _render(template: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(_env.get_template(template).render(**context))


async def _page_principal(
    request: Request, response: Response, session: Session, scope: str
) -> TenantPrincipal | None:
    """The principal of the page's cookie key, or None (sign in again) if it is missing,
    invalid, lacks the scope, or is an operator key (pages show one tenant's figures)."""
    return await _principal_for(request, response, session, request.cookies.get(COOKIE), scope)


async def _principal_for(
    request: Request, response: Response, session: Session, secret: str | None, scope: str
) -> TenantPrincipal | None:
    if not secret or len(secret) > 200:
        return None
    try:
        principal = await authenticate_secret(request, response, session, secret)
    except ProblemError as exc:
        if exc.status == 429:
            raise
        return None
    if principal.tenant_id is None or not principal.has(scope):
        return None
    return TenantPrincipal(
        key_id=principal.key_id,
        scopes=principal.scopes,
        tenant_id=principal.tenant_id,
        is_operator=False,
    )


def _to_login(next_path: str) -> RedirectResponse:
    return RedirectResponse(f"/dashboard/login?next={next_path}", status_code=303)


def _set_cookie(response: Response, request: Request, secret: str) -> None:
    response.set_cookie(
        COOKIE,
        secret,
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


@router.get("/dashboard/login")
def login_page(
    next: Annotated[str, Query(pattern="^/(dashboard|investor)$")] = "/dashboard",
    error: Annotated[str | None, Query(max_length=10)] = None,
) -> HTMLResponse:
    message = "That key is not valid for this page." if error else None
    return _render("login.html.j2", next=next, error=message, signed_in=False)


@router.post("/dashboard/login")
async def login(request: Request, session: DbSession) -> Response:
    body = await request.body()
    form = parse_qs(body.decode("utf-8", "replace")[:4096])
    secret = (form.get("key") or [""])[0].strip()
    target = (form.get("next") or ["/dashboard"])[0]
    if target not in PAGES:
        target = "/dashboard"
    redirect = RedirectResponse(target, status_code=303)
    if await _principal_for(request, Response(), session, secret, PAGES[target]) is None:
        return RedirectResponse(f"/dashboard/login?next={target}&error=1", status_code=303)
    _set_cookie(redirect, request, secret)
    return redirect


@router.post("/dashboard/logout")
def logout() -> RedirectResponse:
    response = RedirectResponse("/dashboard/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/dashboard")
async def executive_dashboard(request: Request, response: Response, session: DbSession) -> Response:
    principal = await _page_principal(request, response, session, "tenant:read")
    if principal is None:
        return _to_login("/dashboard")
    # The figures are computed synchronously (database and numpy): off the event loop.
    page = await run_in_threadpool(service.executive_page, session, principal.tenant_id)
    return _render("executive.html.j2", signed_in=True, **page)


@router.get("/investor")
async def investor_dashboard(
    request: Request,
    response: Response,
    session: DbSession,
    key: Annotated[str | None, Query(max_length=200, description="Share-link key")] = None,
) -> Response:
    if key is not None:
        # A share link: keep the key in the cookie and drop it from the address bar and history.
        redirect = RedirectResponse("/investor", status_code=303)
        _set_cookie(redirect, request, key)
        return redirect
    principal = await _page_principal(request, response, session, "investor")
    if principal is None:
        return _to_login("/investor")
    page = await run_in_threadpool(service.investor_page, session, principal.tenant_id)
    return _render("investor.html.j2", signed_in=True, **page)


@router.get("/investor/report")
async def investor_report(
    request: Request,
    response: Response,
    session: DbSession,
    month: Annotated[str | None, Query(pattern=MONTH_PATTERN)] = None,
    format: Annotated[str, Query(pattern="^(html|pdf)$")] = "html",
) -> Response:
    principal = await _page_principal(request, response, session, "investor")
    if principal is None:
        return _to_login("/investor")
    if month is not None:
        investor.validate_month(month)
    body = await run_in_threadpool(investor.monthly_report, session, principal.tenant_id, month)
    if format == "pdf":
        pdf = await run_in_threadpool(report.render_pdf, body)
        return Response(pdf, media_type="application/pdf")
    return HTMLResponse(await run_in_threadpool(report.render_html, body))


# Files under /web/static/ (anything else there is not served): the dashboard's script and
# vendored uPlot, and the API docs pages' vendored Swagger UI and Redoc (see vendor/README.md).
STATIC_FILES = {
    "dashboard.js": "text/javascript",
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


@router.get("/")
def front_page() -> RedirectResponse:
    """The front door is the dashboard, which asks to sign in first."""
    return RedirectResponse("/dashboard", status_code=307)


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
