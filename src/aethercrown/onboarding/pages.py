"""Server-rendered pages of the onboarding domain: the customer portal (the customer's own
portal key signs in once; the browser then holds only a random server-side session id, like the
console's, in an HttpOnly cookie scoped to /portal; sign-in and sign-out are form POSTs checked
by Origin). Tenant staff read
onboardings in the console (``/console/onboarding``), signed in with the console's server-side
session like every console page; the first pages' addresses ``/onboarding`` and
``/onboarding/{id}`` only send the browser there. Templates: web/templates/onboarding*.html.j2."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

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
from aethercrown.web import sessions

# The portal's own cookie: a session id scoped to /portal, never the key. The session is the
# console's kind; a portal key's session opens no console page (none asks for its scope).
PORTAL_COOKIE = "aethercrown_portal_session"
CONSOLE_ONBOARDING = "/console/onboarding"
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


async def _portal_principal(
    request: Request, response: Response, session: Session
) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(tenant, key) of the customer's portal key: from a Bearer header, or from the portal's
    session cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        user = sessions.resolve(session, request.cookies.get(PORTAL_COOKIE))
        if user is None or not user.has(PORTAL_SCOPE):
            return None
        return user.tenant_id, user.key_id
    principal = await _portal_key(request, response, session, token.strip())
    if principal is None or principal.tenant_id is None:
        return None
    return principal.tenant_id, principal.key_id


async def _portal_key(
    request: Request, response: Response, session: Session, secret: str
) -> Principal | None:
    """The principal of a portal key, or None for anything else (a wrong, revoked or staff key);
    a rate limit still answers 429."""
    if not secret or len(secret) > 200:
        return None
    try:
        principal = await authenticate_secret(request, response, session, secret)
    except ProblemError as exc:
        if exc.status == 429:
            raise
        return None
    return principal if principal.has(PORTAL_SCOPE) else None


# The first staff pages' addresses (bookmarks, links in old mails): the console's pages, which
# ask for the console's sign-in. Nothing here reads a credential.
@router.get("/onboarding")
def onboarding_list_page() -> RedirectResponse:
    return RedirectResponse(CONSOLE_ONBOARDING, status_code=307)


@router.get("/onboarding/{onboarding_id}")
def onboarding_report_page(onboarding_id: str) -> RedirectResponse:
    return RedirectResponse(
        f"{CONSOLE_ONBOARDING}/{quote(onboarding_id[:100], safe='')}", status_code=307
    )


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
    signed_in = await _portal_principal(request, response, session)
    if signed_in is None:
        return _render("onboarding_portal_login.html.j2", 200, error=bool(error))
    try:
        page = await run_in_threadpool(_portal_page, session, *signed_in)
    except ProblemError:
        return _render("onboarding_portal_login.html.j2", 200, error=True)
    return _render("onboarding_portal.html.j2", **page)


@router.post("/portal/login")
async def portal_login(request: Request, session: DbSession) -> Response:
    sessions.require_same_origin(request, "the portal itself")
    form = parse_qs((await request.body()).decode("utf-8", "replace")[:4096])
    secret = (form.get("key") or [""])[0].strip()
    principal = await _portal_key(request, Response(), session, secret)
    if principal is None or principal.tenant_id is None:
        return RedirectResponse("/portal?error=1", status_code=303)
    session_id = sessions.start(session, principal.key_id, principal.tenant_id)
    redirect = RedirectResponse("/portal", status_code=303)
    sessions.set_cookie(
        redirect, request, session_id, name=PORTAL_COOKIE, path="/portal", samesite="strict"
    )
    return redirect


@router.post("/portal/logout")
def portal_logout(request: Request, session: DbSession) -> RedirectResponse:
    sessions.require_same_origin(request, "the portal itself")
    sessions.end(session, request.cookies.get(PORTAL_COOKIE))
    redirect = RedirectResponse("/portal", status_code=303)
    redirect.delete_cookie(PORTAL_COOKIE, path="/portal")
    return redirect
