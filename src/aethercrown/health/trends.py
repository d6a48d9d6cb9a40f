"""Uptime, latency percentiles and incidents from a component's samples (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from aethercrown.core.numbers import percentiles

SEVERITY = {"ok": 0, "degraded": 1, "down": 2}


def worst(statuses: Sequence[str]) -> str:
    return max(statuses, key=lambda s: SEVERITY.get(s, 2), default="ok")


@dataclass(frozen=True)
class Sample:
    at: datetime
    status: str
    latency_ms: float | None


@dataclass
class Incident:
    started_at: datetime
    ended_at: datetime | None  # None: still going on at the last sample
    worst_status: str
    samples: int


@dataclass
class ComponentTrend:
    component: str
    samples: int
    uptime_percent: float | None  # share of samples not "down"
    ok_percent: float | None  # share of samples fully "ok"
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    last_status: str | None
    incidents: list[Incident] = field(default_factory=list)


def component_trend(component: str, samples: Sequence[Sample]) -> ComponentTrend:
    """An incident is a maximal run of consecutive samples that are not "ok"; it ends at the
    first "ok" sample after it."""
    ordered = sorted(samples, key=lambda s: s.at)
    n = len(ordered)
    latencies = [s.latency_ms for s in ordered if s.latency_ms is not None]
    incidents: list[Incident] = []
    current: Incident | None = None
    for sample in ordered:
        if sample.status == "ok":
            if current is not None:
                current.ended_at = sample.at
                incidents.append(current)
                current = None
            continue
        if current is None:
            current = Incident(sample.at, None, sample.status, 0)
        current.samples += 1
        current.worst_status = worst([current.worst_status, sample.status])
    if current is not None:
        incidents.append(current)
    p50, p95 = percentiles(latencies, 50, 95)
    return ComponentTrend(
        component=component,
        samples=n,
        uptime_percent=round(100.0 * sum(s.status != "down" for s in ordered) / n, 3)
        if n
        else None,
        ok_percent=round(100.0 * sum(s.status == "ok" for s in ordered) / n, 3) if n else None,
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        last_status=ordered[-1].status if ordered else None,
        incidents=incidents,
    )
