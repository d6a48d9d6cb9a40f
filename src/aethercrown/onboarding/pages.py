"""Server-rendered pages: the onboarding report (tenant staff: the dashboard's signed-in key, or
a Bearer key) and the customer portal (the customer's own portal key, signed in once and kept in
an HttpOnly cookie of its own). Templates: web/templates/onboarding*.html.j2."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from aethercrown.core.auth import PORTAL_SCOPE, Principal, authenticate_secret
from aethercrown.core.errors import ProblemError
from aethercrown.db.session import DbSession
from aethercrown.metering import service as metering
from aethercrown.onboarding import service
from aethercrown.pricing import service as pricing

# The dashboard's sign-in cookie (web.api) for staff; the portal's own for customers.
STAFF_COOKIE = "aethercrown_key"
PORTAL_COOKIE = "aethercrown_portal_key"
COOKIE_MAX_AGE = 8 * 3600
TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"

router = APIRouter(tags=["web"], include_in_schema=False)
_env = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _render(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(_env.get_template(template).render(**context), status_code=status_code)


def _secret(request: Request, cookie: str) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.cookies.get(cookie)


async def _principal(
    request: Request, response: Response, session: Session, cookie: str, scope: str
) -> Principal | None:
    secret = _secret(request, cookie)
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
    return principal


def _signed_out(what: str, login: str) -> HTMLResponse:
    return _render("onboarding_signin.html.j2", 401, what=what, login=login)


@router.get("/onboarding")
async def onboarding_list_page(
    request: Request, response: Response, session: DbSession
) -> Response:
    principal = await _principal(request, response, session, STAFF_COOKIE, "tenant:read")
    if principal is None or principal.tenant_id is None:
        return _signed_out("the onboarding pages", "/dashboard/login")
    rows = await run_in_threadpool(service.list_onboardings, session, principal.tenant_id)
    return _render("onboarding_list.html.j2", onboardings=rows)


@router.get("/onboarding/{onboarding_id}")
async def onboarding_report_page(
    request: Request, response: Response, session: DbSession, onboarding_id: str
) -> Response:
    principal = await _principal(request, response, session, STAFF_COOKIE, "tenant:read")
    if principal is None or principal.tenant_id is None:
        return _signed_out("the onboarding pages", "/dashboard/login")
    try:
        ident = uuid.UUID(onboarding_id)
        body = await run_in_threadpool(service.report, session, principal.tenant_id, ident)
    except (ValueError, ProblemError):
        return _render("onboarding_missing.html.j2", 404, ident=onboarding_id[:100])
    return _render("onboarding_report.html.j2", report=body)


def _portal_page(session: Session, tenant_id: uuid.UUID, key_id: uuid.UUID) -> dict[str, Any]:
    onboarding = service.portal_onboarding(session, tenant_id, key_id)
    customer = onboarding.customer_external_id
    usage = metering.usage_report(session, tenant_id, customer)
    alerts, _ = metering.list_alerts(session, tenant_id, customer, None, 20, None)
    try:
        invoice: Any = pricing.invoice_preview(session, tenant_id, customer)
    except ProblemError:
        invoice = None
    return {
        "customer": customer,
        "usage": usage,
        "alerts": alerts,
        "sla": service.sla_status(session, tenant_id, onboarding),
        "invoice": invoice,
    }


@router.get("/portal")
async def portal_page(
    request: Request,
    response: Response,
    session: DbSession,
    error: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    principal = await _principal(request, response, session, PORTAL_COOKIE, PORTAL_SCOPE)
    if principal is None or principal.tenant_id is None:
        return _render("onboarding_portal_login.html.j2", 200, error=bool(error))
    try:
        page = await run_in_threadpool(_portal_page, session, principal.tenant_id, principal.key_id)
    except ProblemError:
        return _render("onboarding_portal_login.html.j2", 200, error=True)
    return _render("onboarding_portal.html.j2", **page)


@router.post("/portal/login")
async def portal_login(request: Request, session: DbSession) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace")[:4096])
    secret = (form.get("key") or [""])[0].strip()
    probe = Response()
    principal = None
    if secret and len(secret) <= 200:
        try:
            principal = await authenticate_secret(request, probe, session, secret)
        except ProblemError as exc:
            if exc.status == 429:
                raise
    if principal is None or not principal.has(PORTAL_SCOPE):
        return RedirectResponse("/portal?error=1", status_code=303)
    redirect = RedirectResponse("/portal", status_code=303)
    redirect.set_cookie(
        PORTAL_COOKIE,
        secret,
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/portal",
    )
    return redirect
