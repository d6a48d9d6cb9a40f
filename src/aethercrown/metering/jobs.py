"""Periodic metering work for the automation runner."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from aethercrown.core.jobs import JobSpec, count
from aethercrown.metering.renewal import retrain_job
from aethercrown.metering.service import fold_pending


def fold_job(
    session: Session, tenant_id: uuid.UUID | None, period_start: datetime
) -> dict[str, Any]:
    # One chunk per run: an API process, when one runs, folds continuously anyway.
    return fold_pending(session).model_dump()


def fold_headline(summary: dict[str, Any]) -> str:
    if not summary.get("events"):
        return "no event to fold" + (
            "; held up by a batch still being stored" if summary.get("blocked") else ""
        )
    return (
        f"folded {count(summary['events'], 'event')} of {count(summary['tenants'], 'tenant')} "
        f"into the rollups, {count(summary.get('alerts', 0), 'alert')} fired"
        + ("" if summary.get("caught_up", True) else "; more waiting for the next run")
    )


def renewal_headline(summary: dict[str, Any]) -> str:
    joined = f"{count(summary.get('outcomes_recorded', 0), 'renewal outcome')} joined"
    if not summary.get("trained"):
        return f"not trained: {summary.get('reason', 'no reason given')}; {joined}"
    auc, brier = summary.get("oof_auc", float("nan")), summary.get("oof_brier", float("nan"))
    return (
        f"trained on {count(summary.get('samples', 0), 'renewal')} "
        f"(out-of-fold AUC {auc:.3f}, Brier {brier:.3f}); {joined}"
    )


JOBS = [
    JobSpec(
        name="usage_fold",
        interval_seconds=60,
        run=fold_job,
        per_tenant=False,
        description="Fold stored usage events into the rollups and fire the alerts they cross",
        headline=fold_headline,
    ),
    JobSpec(
        name="renewal_model_training",
        interval_seconds=24 * 3600,
        run=retrain_job,
        per_tenant=True,
        description="Retrain each tenant's renewal model on its latest outcomes",
        headline=renewal_headline,
    ),
]
