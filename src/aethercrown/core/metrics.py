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
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from aethercrown.core.key_repository import stamp_last_use
from aethercrown.core.metrics_repository import add_request_counts
from aethercrown.db.session import write_queue_turn
from aethercrown.db.tenant_scope import connection_across_tenants

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
        """Write what was counted since the last flush; returns the rows and keys written.

        While the database cannot be written (down, read-only, its writer busy) everything is
        put back and tried again on the next flush, so an outage loses no count. A row the
        database refuses (its tenant was deleted meanwhile) is dropped and logged, so that it
        cannot block the rest forever."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
            last_used, self._last_used = self._last_used, {}
        if not pending and not last_used:
            return 0
        try:
            self._write_all(engine, pending, last_used)
            return len(pending) + len(last_used)
        except OperationalError:
            self._put_back(pending, last_used)
            log.warning("request counts kept for the next flush", exc_info=True)
            return 0
        except Exception:
            pass
        written = 0
        for counted, n in pending.items():
            try:
                self._write_all(engine, Counter({counted: n}), {})
                written += 1
            except OperationalError:
                self._put_back(Counter({counted: n}), {})
            except Exception:
                log.warning("dropping request count", extra={"row": str(counted)}, exc_info=True)
        try:
            self._write_all(engine, Counter(), last_used)
            written += len(last_used)
        except OperationalError:
            self._put_back(Counter(), last_used)
        except Exception:
            log.warning("dropping key last-use times", exc_info=True)
        return written

    def _put_back(
        self, pending: Counter[tuple[uuid.UUID, date, int]], last_used: dict[uuid.UUID, datetime]
    ) -> None:
        with self._lock:
            self._pending.update(pending)
            for key_id, at in last_used.items():
                newer = self._last_used.get(key_id)
                if newer is None or newer < at:
                    self._last_used[key_id] = at

    @property
    def pending(self) -> int:
        """Requests counted and not yet written."""
        with self._lock:
            return sum(self._pending.values())

    def _write_all(
        self,
        engine: Engine,
        pending: Counter[tuple[uuid.UUID, date, int]],
        last_used: dict[uuid.UUID, datetime],
    ) -> None:
        rows = [
            {"tenant_id": t, "day": d, "status": s, "count": n} for (t, d, s), n in pending.items()
        ]
        # In this process's write queue, like every other writer of a SQLite database.
        with write_queue_turn(engine), engine.begin() as conn:
            connection_across_tenants(conn)  # every tenant's counts, every key's last use
            self._write(conn, rows, last_used)

    @staticmethod
    def _write(
        conn: Connection, rows: list[dict[str, Any]], last_used: dict[uuid.UUID, datetime]
    ) -> None:
        if rows:
            add_request_counts(conn, rows)
        if last_used:
            stamp_last_use(conn, last_used)
