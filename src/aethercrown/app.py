"""The FastAPI application factory. The engine is made here, never at import time."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import anyio
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import iter_route_contexts
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import configure_mappers

from aethercrown import __version__
from aethercrown.alerts.api import router as alerts_router
from aethercrown.analytics.api import router as dashboard_router
from aethercrown.automation.api import router as automation_router
from aethercrown.automation.service import Runner, RunnerThread
from aethercrown.budget.api import router as budget_router
from aethercrown.churn.api import router as churn_router
from aethercrown.connectors.api import router as connectors_router
from aethercrown.connectors.api import tracking_router
from aethercrown.connectors.segment_service import WriteKey
from aethercrown.connectors.stripe_service import MappingKicker
from aethercrown.content.api import router as content_router
from aethercrown.core.auth import AdminPrincipal
from aethercrown.core.errors import install_error_handlers
from aethercrown.core.idempotency import IdempotencyMiddleware
from aethercrown.core.jobs import all_jobs
from aethercrown.core.keycache import (
    CachedKey,
    KeyCache,
    listen_for_invalidations,
    publish_invalidations,
)
from aethercrown.core.limits import InputLimitsMiddleware
from aethercrown.core.logging import configure_logging
from aethercrown.core.metrics import HttpMetrics, TenantRequestCounter
from aethercrown.core.middleware import RequestContextMiddleware
from aethercrown.core.openapi import install_openapi
from aethercrown.core.periodic import PeriodicThread
from aethercrown.core.ratelimit import RateLimiter
from aethercrown.core.readroute import ReadIndex, install_read_index
from aethercrown.data.api import router as data_router
from aethercrown.db import migrate
from aethercrown.db.engine import make_engine, make_session_factory, ping
from aethercrown.db.prepared import reserved_connections
from aethercrown.experiments.api import router as experiments_router
from aethercrown.experiments.api import stateless_router as experiments_stateless_router
from aethercrown.health import service as health_service
from aethercrown.health.api import router as health_router
from aethercrown.investor.api import router as investor_router
from aethercrown.metering.api import router as usage_router
from aethercrown.metering.fold import catch_up
from aethercrown.onboarding.api import portal_router as onboarding_portal_router
from aethercrown.onboarding.api import router as onboarding_router
from aethercrown.onboarding.pages import router as onboarding_pages_router
from aethercrown.pricing.api import router as revenue_router
from aethercrown.security.api import router as security_router
from aethercrown.settings import Settings, get_settings
from aethercrown.simulate.api import router as simulate_router
from aethercrown.tasks.api import router as tasks_router
from aethercrown.tenants.api import router as tenants_router
from aethercrown.tenants.api import tiers_router
from aethercrown.web.api import router as web_router
from aethercrown.webhooks.api import router as webhooks_router

log = logging.getLogger(__name__)

# Requests are matched against the routes in this order, a few microseconds a route: the
# Segment tracking routes (/v1/…, a prefix no other route shares) come first, since they take
# the highest request rate — last, finding /v1/batch cost ~1.4 ms of CPU a request (216 routes).
ROUTERS = (
    tracking_router,
    tenants_router,
    tiers_router,
    security_router,
    data_router,
    experiments_router,
    experiments_stateless_router,
    budget_router,
    tasks_router,
    automation_router,
    health_router,
    simulate_router,
    churn_router,
    dashboard_router,
    investor_router,
    web_router,
    usage_router,
    revenue_router,
    webhooks_router,
    alerts_router,
    content_router,
    onboarding_router,
    onboarding_portal_router,
    onboarding_pages_router,
    connectors_router,
)


def _automation_thread(app: FastAPI, settings: Settings) -> RunnerThread | None:
    """The one-machine set-up runs the automation runner in-process (settings.run_automation);
    more runners elsewhere are safe, since each run is claimed once in the database."""
    if not settings.run_automation:
        return None
    runner = Runner(app.state.session_factory, all_jobs(), settings=settings)
    thread = RunnerThread(runner, settings.automation_tick_seconds)
    thread.start()
    return thread


_frozen = False


def _freeze_startup_heap() -> None:
    """Move everything alive after the first startup (modules, routes, models: ~300k objects)
    out of the collector's reach. Otherwise each full collection walks them all, a 100-150 ms
    pause of the event loop every few seconds under load. Once per process: later apps (tests)
    would otherwise keep their garbage forever."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()


def _warm_start(app: FastAPI, engine: Engine) -> None:
    """Pay at start what the first request would: FastAPI builds each route's dependency tree
    and response validators the first time a request is matched against it (so the first call
    built every route listed before its own: 0.1-0.3 s), SQLAlchemy configures every mapper
    (done by the first ORM query: ~300 instrumented attributes), the job modules are imported (the
    health check lists the jobs), the migration heads are read from the scripts, anyio loads its
    asyncio backend (on the first generator dependency: tens of ms), the read routes' index is
    built (core.readroute) and the pool opens its first connection, and the health check's
    statements are compiled (run once, rolled back; compiling them was most of a first check
    once the rest was warm). uvicorn accepts
    connections only once the lifespan has started, so no request waits on this."""
    for _ in iter_route_contexts(app.router.routes):
        pass
    if isinstance(app.router.middleware_stack, ReadIndex):
        app.router.middleware_stack.entries  # noqa: B018 (built here, not by the first read)
    configure_mappers()
    all_jobs()
    migrate.expected_heads()
    anyio.get_cancelled_exc_class()
    with engine.connect() as conn:
        ping(conn)
    session = app.state.session_factory()
    try:
        health_service.compile_statements(session, app.state.settings)
    except SQLAlchemyError:
        # A database not migrated yet: the server still starts and /readyz says why.
        log.info("warm start: health statements not compiled", exc_info=True)
    finally:
        session.rollback()
        session.close()


@dataclass(frozen=True, slots=True)
class _Parts:
    """What one application instance owns: made once by ``create_app``, shared by its
    lifespan, its middleware and its operations routes."""

    settings: Settings
    engine: Engine
    counter: TenantRequestCounter
    metrics: HttpMetrics
    key_cache: KeyCache[CachedKey]
    # Segment write keys (connectors): the same bound on how long a revocation goes unseen.
    segment_key_cache: KeyCache[WriteKey]


def _lifespan(parts: _Parts) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The background work of one API process: the request-count flusher, the in-process
    automation runner, the usage folder and the key cache's invalidation listener."""
    settings, engine = parts.settings, parts.engine

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Request counts put back on a failed flush; the final flush on stop keeps the last ones.
        flusher = PeriodicThread(
            "request-count-flusher",
            settings.usage_flush_seconds,
            lambda: parts.counter.flush(engine),
            final=True,
        )
        flusher.start()
        automation = _automation_thread(app, settings)
        # Stripe webhooks are mapped a moment after they are stored, where automation runs.
        kicker = MappingKicker(app.state.session_factory) if settings.run_automation else None
        if kicker is not None:
            kicker.start()
        app.state.stripe_kicker = kicker
        folder = None
        if settings.usage_fold_seconds > 0:
            # Several API processes may each run one: folds take turns on the cursor's lock.
            factory = app.state.session_factory
            folder = PeriodicThread(
                "usage-folder", settings.usage_fold_seconds, lambda: catch_up(factory)
            )
            folder.start()
        listener = (
            asyncio.create_task(
                listen_for_invalidations(
                    settings.redis_url, parts.key_cache, parts.segment_key_cache
                )
            )
            if settings.redis_url
            else None
        )
        if settings.warm_start:
            _warm_start(app, engine)
        _freeze_startup_heap()
        try:
            yield
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
            if folder is not None:
                folder.stop()
            if automation is not None:
                automation.stop()
            if kicker is not None:
                kicker.stop()
            flusher.stop()
            engine.dispose()

    return lifespan


def _set_state(app: FastAPI, parts: _Parts) -> None:
    """What routes and dependencies find on ``request.app.state``."""
    app.state.settings = parts.settings
    app.state.engine = parts.engine
    app.state.session_factory = make_session_factory(parts.engine)
    app.state.rate_limiter = RateLimiter(parts.settings.redis_url)
    app.state.key_cache = parts.key_cache
    app.state.segment_key_cache = parts.segment_key_cache
    app.state.request_counter = parts.counter
    app.state.http_metrics = parts.metrics


def _add_middleware(app: FastAPI, parts: _Parts) -> None:
    install_error_handlers(app)
    # Added last = outermost: the context middleware sees every request, idempotent replays too.
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(InputLimitsMiddleware)  # before idempotency: a refused body is not kept
    pool = parts.engine.pool
    capacity = pool.size() + pool._max_overflow  # type: ignore[attr-defined]
    app.add_middleware(
        RequestContextMiddleware,
        metrics=parts.metrics,
        counter=parts.counter,
        max_body_bytes=parts.settings.max_body_bytes,
        # The pool's connections but those read units may keep out of it between requests
        # (db.prepared): a request in flight can then always get one.
        max_in_flight=capacity - reserved_connections(parts.engine),
    )


def _add_operations_routes(app: FastAPI, parts: _Parts) -> None:
    """Liveness, readiness and the Prometheus metrics (operator key)."""
    engine = parts.engine

    @app.get("/livez", tags=["operations"])
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    def readyz(request: Request) -> JSONResponse:
        checks: dict[str, str] = {}
        ready = True
        try:
            with engine.connect() as conn:
                ping(conn)
            checks["database"] = "ok"
        except Exception as exc:  # the point of the probe is to report, not raise
            checks["database"] = f"error: {type(exc).__name__}"
            ready = False
        if ready:
            current = migrate.is_current(engine)
            checks["migrations"] = "current" if current else "pending"
            ready = ready and current
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    def prometheus_metrics(principal: AdminPrincipal) -> Response:
        return Response(generate_latest(parts.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    engine = make_engine(settings.database_url)
    parts = _Parts(
        settings=settings,
        engine=engine,
        counter=TenantRequestCounter(),
        metrics=HttpMetrics(),
        key_cache=KeyCache(),
        segment_key_cache=KeyCache(),
    )
    publish_invalidations(engine, settings.redis_url)
    app = FastAPI(
        title="AetherCrown",
        version=__version__,
        description="Growth and revenue operations on autopilot for SaaS businesses.",
        lifespan=_lifespan(parts),
        # Served by aethercrown.web.api from vendored assets instead of FastAPI's CDN links.
        docs_url=None,
        redoc_url=None,
        telemetry={
            "tracing": settings.opentelemetry,
            "metrics": settings.opentelemetry,
            "logs": settings.opentelemetry,
        },
    )
    _set_state(app, parts)
    _add_middleware(app, parts)
    for router in ROUTERS:
        app.include_router(router)
    install_openapi(app)
    _add_operations_routes(app, parts)
    if not settings.opentelemetry:
        install_read_index(app.router)
    return app
