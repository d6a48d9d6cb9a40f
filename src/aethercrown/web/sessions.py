"""Console sign-in sessions: a key signs in once and the browser then holds only a random
session id (HttpOnly, SameSite=Lax cookie); the database keeps its SHA-256 and expiry. Each
page checks the session and the key behind it (revoked or expired keys end their sessions).
Never commits."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit

from fastapi import Request, Response
from sqlalchemy.orm import Session

from aethercrown.clock import utcnow
from aethercrown.core.auth import effective_scopes
from aethercrown.core.errors import ProblemError
from aethercrown.db.tenant_scope import across_tenants, scope_to_tenant
from aethercrown.web import repository

COOKIE = "aethercrown_session"
LIFETIME = timedelta(hours=8)


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    key_id: uuid.UUID
    tenant_id: uuid.UUID
    scopes: frozenset[str]

    def has(self, scope: str) -> bool:
        return scope in self.scopes


def set_cookie(
    response: Response,
    request: Request,
    session_id: str,
    *,
    name: str = COOKIE,
    path: str = "/",
    samesite: Literal["lax", "strict"] = "lax",
) -> None:
    """Hand the browser a session id: for the session's lifetime, out of scripts' reach, and
    sent only over HTTPS when the page came over HTTPS (the console and the customer portal)."""
    response.set_cookie(
        name,
        session_id,
        max_age=int(LIFETIME.total_seconds()),
        httponly=True,
        samesite=samesite,
        secure=request.url.scheme == "https",
        path=path,
    )


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start(session: Session, key_id: uuid.UUID, tenant_id: uuid.UUID) -> str:
    """A new session for the key; answers the id the browser keeps (stored only hashed)."""
    now = utcnow()
    with across_tenants(session):  # housekeeping of every tenant's expired sessions
        repository.remove_expired(session, now)
    scope_to_tenant(session, tenant_id)
    session_id = secrets.token_urlsafe(32)
    repository.add(session, _hash(session_id), key_id, tenant_id, now, now + LIFETIME)
    return session_id


def resolve(session: Session, session_id: str | None) -> ConsoleUser | None:
    """The signed-in user of a session id, or None if it is unknown, expired, or its key is
    revoked or expired."""
    if not session_id or len(session_id) > 100:
        return None
    with across_tenants(session):  # the session's tenant is what this finds out
        row = repository.find(session, _hash(session_id))
    now = utcnow()
    if row is None or row.expires_at <= now or row.key_kind != "api_key":
        return None
    # The page's reads in this unit of work see the signed-in tenant's rows only.
    scope_to_tenant(session, row.tenant_id)
    if row.key_revoked_at is not None and row.key_revoked_at <= now:
        return None
    if row.key_expires_at is not None and row.key_expires_at <= now:
        return None
    return ConsoleUser(row.key_id, row.tenant_id, effective_scopes(row.key_scopes))


def end(session: Session, session_id: str | None) -> None:
    if session_id and len(session_id) <= 100:
        with across_tenants(session):
            repository.remove(session, _hash(session_id))


def same_origin(origin: str | None, referer: str | None, own: str) -> bool:
    """CSRF defence for a form POST: the browser's Origin (or, failing that, Referer) must be
    this site's own scheme://host[:port]. A POST naming neither is refused."""
    claimed = origin if origin and origin != "null" else None
    if claimed is None and referer:
        parts = urlsplit(referer)
        claimed = f"{parts.scheme}://{parts.netloc}"
    return claimed is not None and claimed.rstrip("/") == own.rstrip("/")


def require_same_origin(request: Request, sent_from: str) -> None:
    """403 problem+json unless the form POST came from this site (``same_origin``);
    ``sent_from`` names the pages it must come from, for the answer's detail."""
    own = f"{request.url.scheme}://{request.url.netloc}"
    if not same_origin(request.headers.get("origin"), request.headers.get("referer"), own):
        raise ProblemError(
            403, "cross-site-request", "Forbidden", f"This form must be sent from {sent_from}"
        )
