"""Periodic work of the budget optimizer: the daily allocation, closed out when results arrive."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from aethercrown.budget import service
from aethercrown.core.jobs import JobSpec, count
from aethercrown.core.money import money


def daily_allocation(
    session: Session, tenant_id: uuid.UUID | None, period_start: datetime
) -> dict[str, Any]:
    assert tenant_id is not None
    return service.record_daily_allocation(session, tenant_id, period_start)


def allocation_headline(summary: dict[str, Any]) -> str:
    closed = summary.get("closed", 0)
    after = f"; closed out {count(closed, 'earlier allocation')}" if closed else ""
    if "skipped" in summary:
        return f"no allocation: {summary['skipped']}{after}"
    allocations: dict[str, float] = summary["allocations"]
    currency = summary.get("currency", "USD")
    top = max(allocations, key=lambda channel: allocations[channel])
    return (
        f"allocated {money(sum(allocations.values()), currency)} over "
        f"{count(len(allocations), 'channel')} (most to {top}, "
        f"{money(allocations[top], currency)}), expected return "
        f"{money(summary['expected_return'], currency)}{after}"
    )


JOBS: list[JobSpec] = [
    JobSpec(
        name="budget.daily_allocation",
        interval_seconds=86_400,
        run=daily_allocation,
        per_tenant=True,
        description=(
            "Records realised return for past allocations whose day has data, then re-splits "
            "the current daily spend optimally for the day and writes it to the decision ledger"
        ),
        headline=allocation_headline,
    )
]
