"""Prometheus metrics and the per-tenant request counters behind tenant metrics.

Tenant request counts are summed in memory and flushed to the database every few seconds with
an additive upsert, so a request costs no extra write; several processes add up correctly.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from datetime import date, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client import Counter as PromCounter
from sqlalchemy import Connection, Engine, bindparam, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from aethercrown.core.models import ApiKey, TenantRequestCount

log = logging.getLogger("aethercrown.metrics")


class HttpMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = PromCounter(
            "aethercrown_http_requests_total",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "aethercrown_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["route", "method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )

        # (route, method, status) -> the two labelled children: labels() builds and looks up
        # its key under a lock on every call; route templates are few, so this stays small.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        children = self._children.get((route, method, status))
        if children is None:
            children = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
            self._children[(route, method, status)] = children
        children[0].inc()
        children[1].observe(seconds)


class TenantRequestCounter:
    """Per-process buffer of request counts per tenant/day/status and of API-key last use.

    Both are bookkeeping, so they are batched off the request path: a request adds to memory,
    and the flusher writes the sums (an additive upsert, correct across processes) and the
    newest last-use times every few seconds and at shutdown.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: Counter[tuple[uuid.UUID, date, int]] = Counter()
        self._last_used: dict[uuid.UUID, datetime] = {}

    def add(self, tenant_id: uuid.UUID, day: date, status: int) -> None:
        with self._lock:
            self._pending[(tenant_id, day, status)] += 1

    def touch_key(self, key_id: uuid.UUID, at: datetime) -> None:
        with self._lock:
            self._last_used[key_id] = at

    def flush(self, engine: Engine) -> int:
        with self._lock:
            pending, self._pending = self._pending, Counter()
            last_used, self._last_used = self._last_used, {}
        if not pending and not last_used:
            return 0
        rows = [
            {"tenant_id": t, "day": d, "status": s, "count": n} for (t, d, s), n in pending.items()
        ]
        try:
            with engine.begin() as conn:
                self._write(conn, rows, last_used)
        except Exception:
            # Retry row by row so that one bad row (its tenant deleted meanwhile) cannot block
            # the rest forever; rows that still fail are dropped and logged.
            for row in rows:
                try:
                    with engine.begin() as conn:
                        self._write(conn, [row], {})
                except Exception:
                    log.warning("dropping request count", extra={"row": str(row)}, exc_info=True)
            try:
                with engine.begin() as conn:
                    self._write(conn, [], last_used)
            except Exception:
                log.warning("dropping key last-use times", exc_info=True)
        return len(rows) + len(last_used)

    @staticmethod
    def _write(
        conn: Connection, rows: list[dict[str, Any]], last_used: dict[uuid.UUID, datetime]
    ) -> None:
        if rows:
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            stmt = insert(TenantRequestCount)
            stmt = stmt.on_conflict_do_update(
                index_elements=["tenant_id", "day", "status"],
                set_={"count": TenantRequestCount.count + stmt.excluded.count},
            )
            conn.execute(stmt, rows)
        if last_used:
            conn.execute(
                update(ApiKey)
                .where(
                    ApiKey.id == bindparam("key_id"),
                    or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < bindparam("at")),
                )
                .values(last_used_at=bindparam("at")),
                [{"key_id": k, "at": t} for k, t in last_used.items()],
            )
