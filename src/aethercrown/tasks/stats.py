"""Queue statistics and the seed's bottleneck rules (pure: plain values in, plain values out)."""

from __future__ import annotations

from dataclasses import dataclass

from aethercrown.core.numbers import plain

# The seed's thresholds.
QUEUE_PER_WORKER_LIMIT = 5.0
UTILISATION_FLOOR = 0.5
FAILURE_RATE_LIMIT = 0.10
BLOCKED_SHARE_LIMIT = 0.30


@dataclass(frozen=True)
class Bottleneck:
    rule: str
    observed: float
    threshold: float
    detail: str
    action: str


def bottlenecks(
    *,
    queue_length: int,
    workers: int,
    utilisation: float | None,
    failure_rate: float | None,
    blocked_share: float | None,
) -> list[Bottleneck]:
    found: list[Bottleneck] = []
    limit = QUEUE_PER_WORKER_LIMIT * workers
    if queue_length > limit:
        found.append(
            Bottleneck(
                rule="queue_length",
                observed=float(queue_length),
                threshold=limit,
                detail=f"{queue_length} ready tasks queued for {workers} active workers "
                f"(more than {plain(QUEUE_PER_WORKER_LIMIT)} per worker)",
                action="register more workers (up to the tier's AI agent quota) or raise "
                "worker capacity; scale the tenant to a larger tier if the quota is reached",
            )
        )
    if utilisation is not None and utilisation < UTILISATION_FLOOR:
        found.append(
            Bottleneck(
                rule="worker_utilisation",
                observed=utilisation,
                threshold=UTILISATION_FLOOR,
                detail=f"workers use {utilisation:.0%} of their capacity",
                action="retire idle workers or lower their capacity; if tasks are queued but "
                "not claimed, check that workers call /assign and that tasks are not blocked",
            )
        )
    if failure_rate is not None and failure_rate > FAILURE_RATE_LIMIT:
        found.append(
            Bottleneck(
                rule="failure_rate",
                observed=failure_rate,
                threshold=FAILURE_RATE_LIMIT,
                detail=f"{failure_rate:.0%} of finished attempts failed or lost their lease",
                action="inspect the failing task types' errors (GET /tasks?status=failed); "
                "lengthen leases if attempts expire while still working",
            )
        )
    if blocked_share is not None and blocked_share > BLOCKED_SHARE_LIMIT:
        found.append(
            Bottleneck(
                rule="blocked_by_dependencies",
                observed=blocked_share,
                threshold=BLOCKED_SHARE_LIMIT,
                detail=f"{blocked_share:.0%} of open tasks wait for unfinished dependencies",
                action="raise the priority of the tasks others depend on, or split long "
                "dependency chains so more work can run in parallel",
            )
        )
    return found
