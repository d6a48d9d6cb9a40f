"""The dashboard pages. A browser signs in once with an API key (login form, or an investor share
link ``/investor?key=…``); the key is kept in an HttpOnly, SameSite=Strict cookie and checked on
every page exactly like a Bearer key (expiry, revocation, rate limit). The executive page needs
``tenant:read``, the investor page ``investor``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from aethercrown.analytics.schemas import MONTH_PATTERN
from aethercrown.core.auth import TenantPrincipal, authenticate_secret
from aethercrown.core.errors import ProblemError
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


def _static(name: str, media_type: str) -> FileResponse:
    return FileResponse(
        STATIC / name, media_type=media_type, headers={"Cache-Control": "public, max-age=3600"}
    )


@router.get("/web/static/uPlot.iife.min.js")
def uplot_js() -> FileResponse:
    return _static("uPlot.iife.min.js", "text/javascript")


@router.get("/web/static/uPlot.min.css")
def uplot_css() -> FileResponse:
    return _static("uPlot.min.css", "text/css")


@router.get("/web/static/dashboard.js")
def dashboard_js() -> FileResponse:
    return _static("dashboard.js", "text/javascript")
