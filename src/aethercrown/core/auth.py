"""Bearer-key authentication, scopes and the typed dependencies routes declare.

Scopes nest: ``admin`` (the operator) may do anything; ``tenant:write`` implies ``tenant:read``,
which implies ``investor``. An operator key acting on tenant data names the tenant in the
``X-Tenant`` header (its id or slug).
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy.orm import Session

from aethercrown.clock import utcnow
from aethercrown.core.errors import ProblemError
from aethercrown.core.key_repository import key_for_authentication
from aethercrown.core.keycache import CachedKey, KeyCache
from aethercrown.core.ratelimit import RateLimiter
from aethercrown.core.tenant_repository import find_tenant, tenant_id_by_slug
from aethercrown.db.prepared import ReadUnit
from aethercrown.db.session import SessionFactory, read_transaction, request_scope
from aethercrown.db.tenant_scope import across_tenants

SCOPES = ("admin", "tenant:write", "tenant:read", "investor")
_IMPLIED: dict[str, frozenset[str]] = {
    "admin": frozenset(SCOPES),
    "tenant:write": frozenset({"tenant:write", "tenant:read", "investor"}),
    "tenant:read": frozenset({"tenant:read", "investor"}),
    "investor": frozenset({"investor"}),
    # A customer's portal key (onboarding issues it): that one customer's own figures only;
    # it implies no tenant scope, so every tenant route refuses it.
    "customer:read": frozenset({"customer:read"}),
}
PORTAL_SCOPE = "customer:read"
KEY_PREFIXES = {"admin": "aca_", "api_key": "ack_", "webhook_secret": "whsec_", "external": "acx_"}
# last_used_at is kept to this resolution, and written by the batched flusher, not the request.
LAST_USED_RESOLUTION = timedelta(seconds=60)
ADMIN_REQUESTS_PER_MINUTE = 100_000


def generate_secret(kind: str) -> str:
    """A type prefix plus 256 random bits (URL-safe base64)."""
    return KEY_PREFIXES[kind] + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def display_prefix(secret: str) -> str:
    return secret[:12]


def effective_scopes(scopes: list[str] | tuple[str, ...] | frozenset[str]) -> frozenset[str]:
    out: set[str] = set()
    for scope in scopes:
        out |= _IMPLIED.get(scope, frozenset())
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: uuid.UUID
    scopes: frozenset[str]
    # The tenant the request acts for: the key's own, or the X-Tenant an operator named.
    tenant_id: uuid.UUID | None
    is_operator: bool

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}"

    def has(self, scope: str) -> bool:
        return scope in self.scopes


@dataclass(frozen=True, slots=True)
class TenantPrincipal(Principal):
    tenant_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class KeyUse:
    """What every request with a key derives from its cache entry alike, built once per entry
    (``CachedKey.use``): the principal (frozen, so shared safely), the rate limiter's key, and
    the row scope of a tenant key's units of work (its tenant id as text)."""

    principal: Principal
    limiter_key: str
    tenant_scope: str | None

    @classmethod
    def of(cls, key: CachedKey) -> KeyUse:
        principal = Principal(
            key_id=key.key_id,
            scopes=key.scopes,
            tenant_id=key.tenant_id,
            is_operator=key.tenant_id is None,
        )
        scope = None if key.tenant_id is None else str(key.tenant_id)
        return cls(principal, str(key.key_id), scope)


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(
        401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"}
    )


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise _unauthorized("Missing Authorization: Bearer <key> header")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("Authorization header must be 'Bearer <key>'")
    return token


async def authenticate(request: Request, response: Response) -> Principal:
    """Runs on the event loop: a cached key costs no query, an uncached one a single indexed
    lookup in a short session of its own (cheaper than a thread hop)."""
    return await authenticate_secret(request, response, None, _bearer(request))


def _load_key(session: Session, key_hash: str, cache: KeyCache[CachedKey]) -> CachedKey | None:
    generation = cache.generation
    # Taken before the query: the entry's lifetime counts from the oldest state it may hold.
    loaded_at = time.monotonic()
    with across_tenants(session):  # the key's tenant is what this finds out
        row = key_for_authentication(session, key_hash)
    if row is None:
        return None
    key = CachedKey(
        key_id=row.id,
        tenant_id=row.tenant_id,
        kind=row.kind,
        scopes=effective_scopes(row.scopes),
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        per_minute=row.requests_per_minute,
        last_used_at=row.last_used_at,
        loaded_at=loaded_at,
    )
    cache.put(key_hash, key, generation)
    return key


async def authenticate_secret(
    request: Request, response: Response, session: Session | None, token: str
) -> Principal:
    """Authenticate a key however it arrived (the Bearer header, or a dashboard page's cookie).
    Without ``session``, a key missing from the cache is looked up in a session of its own."""
    principal, headers = await check_secret(request, session, token)
    response.headers.update(headers)
    return principal


async def check_secret(
    request: Request, session: Session | None, token: str
) -> tuple[Principal, dict[str, str]]:
    """``authenticate_secret`` without a response: the principal, and the rate limit's headers
    for the answer (``core.readroute`` builds its response itself)."""
    use, headers = await _check_key(request, session, token)
    return use.principal, headers


async def _check_key(
    request: Request, session: Session | None, token: str
) -> tuple[KeyUse, dict[str, str]]:
    """``check_secret``, with the key's ``KeyUse`` for the principal."""
    key_hash = hash_secret(token)
    state = request.app.state
    cache: KeyCache[CachedKey] = state.key_cache
    key = cache.get(key_hash)
    if key is None:
        if session is not None:
            key = _load_key(session, key_hash, cache)
        else:
            with state.session_factory() as own:
                key = _load_key(own, key_hash, cache)
    if key is None:
        raise _unauthorized("Unknown API key")
    now = utcnow()
    if key.kind != "api_key":
        raise _unauthorized("This secret is not an API key")
    if key.revoked_at is not None and key.revoked_at <= now:
        raise _unauthorized("API key revoked")
    if key.expires_at is not None and key.expires_at <= now:
        raise _unauthorized("API key expired")

    use = key.use
    if use is None:
        use = key.use = KeyUse.of(key)
    limiter: RateLimiter = state.rate_limiter
    verdict = await limiter.hit(use.limiter_key, key.per_minute or ADMIN_REQUESTS_PER_MINUTE)
    # request.state's dict, without building its State wrapper (the same entries).
    request_state = request.scope.setdefault("state", {})
    if key.tenant_id is not None:
        request_state["tenant_id"] = key.tenant_id
    else:  # the unit of work's row-level-security scope (db.session.request_scope)
        request_state["operator"] = True
    headers = verdict.headers()
    if not verdict.allowed:
        request_state["rate_limited"] = True
        raise ProblemError(
            429,
            "rate-limited",
            "Too many requests",
            f"Rate limit of {verdict.limit} requests per minute exceeded; "
            f"retry after {verdict.retry_after} s",
            headers={**headers, "Retry-After": str(verdict.retry_after)},
        )

    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        state.request_counter.touch_key(key.key_id, now)
        key.last_used_at = now  # reported: the batched writer stores it
    return use, headers


Authenticated = Annotated[Principal, Depends(authenticate)]


@dataclass(frozen=True, slots=True)
class AuthenticatedRead:
    """Who asks, and a read unit of ``PreparedRead``s scoped to them (``db.prepared``)."""

    principal: Principal
    unit: ReadUnit


async def open_authenticated_read(request: Request) -> tuple[AuthenticatedRead, dict[str, str]]:
    """Authenticate the Bearer key (rate limit included) and open a ``ReadUnit`` in the scope
    it resolves to; with the rate limit's headers. The caller closes ``unit``."""
    use, headers = await _check_key(request, None, _bearer(request))
    # A tenant key's scope is its tenant (what request_scope reads from the request's state,
    # just set); an operator's may be narrowed by the request (X-Tenant), so it is asked.
    scope = use.tenant_scope if use.tenant_scope is not None else request_scope(request)
    return AuthenticatedRead(use.principal, ReadUnit(request.app.state.engine, scope)), headers


async def authenticated_read(
    request: Request, response: Response
) -> AsyncIterator[AuthenticatedRead]:
    """``authenticate`` and a ``ReadUnit`` in one dependency, for hot read routes that need
    nothing else. Declared with ``scope="function"``, so the unit closes when the route returns
    or raises, before the response is sent; its close is synchronous, so no cancellation can
    interrupt it.

    On a ``core.readroute.ReadRoute`` (the hot reads) FastAPI does not solve this dependency:
    the route does the same inline, without the solver, the generator's context managers and
    the exit stacks; anywhere else it runs as any dependency does."""
    read, headers = await open_authenticated_read(request)
    response.headers.update(headers)
    try:
        yield read
    finally:
        read.unit.close()


AuthenticatedReader = Annotated[AuthenticatedRead, Depends(authenticated_read, scope="function")]


def _resolve_operator_tenant(request: Request, session: Session) -> uuid.UUID:
    named = request.headers.get("x-tenant")
    if not named:
        raise ProblemError(
            400,
            "tenant-required",
            "Tenant required",
            "Operator keys act on tenant data only for the tenant named in the X-Tenant header",
        )
    try:
        tenant_id: uuid.UUID | None = uuid.UUID(named)
    except ValueError:
        tenant_id = tenant_id_by_slug(session, named)
    if tenant_id is None or find_tenant(session, tenant_id) is None:
        raise ProblemError(404, "not-found", "Not found", f"Tenant {named} was not found")
    request.state.tenant_id = tenant_id
    return tenant_id


def require_scope(scope: str):  # type: ignore[no-untyped-def]
    """A dependency that admits principals holding ``scope`` and acting for one tenant."""

    async def dependency(
        request: Request, principal: Authenticated, units: SessionFactory
    ) -> TenantPrincipal:
        if not principal.has(scope):
            raise ProblemError(
                403, "forbidden", "Forbidden", f"This action needs the '{scope}' scope"
            )
        tenant_id = principal.tenant_id
        if tenant_id is None:
            # A read unit of its own: authorising never takes the request's unit of work (a
            # write unit for a POST), so a route that declares none holds no transaction.
            with read_transaction(units) as session:
                tenant_id = _resolve_operator_tenant(request, session)
        return TenantPrincipal(
            key_id=principal.key_id,
            scopes=principal.scopes,
            tenant_id=tenant_id,
            is_operator=principal.is_operator,
        )

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    return dependency


async def require_admin(principal: Authenticated) -> Principal:
    if not principal.is_operator:
        raise ProblemError(403, "forbidden", "Forbidden", "This action needs the 'admin' scope")
    return principal


AdminPrincipal = Annotated[Principal, Depends(require_admin)]
TenantWriter = Annotated[TenantPrincipal, Depends(require_scope("tenant:write"))]
TenantReader = Annotated[TenantPrincipal, Depends(require_scope("tenant:read"))]
InvestorReader = Annotated[TenantPrincipal, Depends(require_scope("investor"))]
