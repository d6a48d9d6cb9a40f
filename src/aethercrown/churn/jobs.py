"""Periodic churn work: score every customer every 12 hours; retrain weekly, promoting a new
model only when it is not worse on the holdout."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from aethercrown.churn import service
from aethercrown.clock import utcnow
from aethercrown.core.jobs import JobSpec, count
from aethercrown.db.session import read_transaction, write_transaction


def score_customers(
    session: Session, tenant_id: uuid.UUID | None, period_start: datetime
) -> dict[str, Any]:
    assert tenant_id is not None
    return service.score_all(session, tenant_id, actor="automation:churn.score")


def retrain(
    factory: sessionmaker[Session], tenant_id: uuid.UUID | None, period_start: datetime
) -> dict[str, Any]:
    """Read the history, train with no transaction open (seconds of CPU that would otherwise
    hold SQLite's write lock), then register the models in a short write unit."""
    assert tenant_id is not None
    as_of = utcnow()
    with read_transaction(factory) as session:
        data = service.build_dataset(session, tenant_id, as_of)
    try:
        fitted = service.fit(data)
    except service.InsufficientHistory as exc:
        return {"trained": False, "reason": exc.detail, **exc.extra}
    with write_transaction(factory) as session:
        outcome = service.register(session, tenant_id, fitted, actor="automation:churn.retrain")
    return {
        "trained": True,
        "models": [
            {"feature_set": m.feature_set, "version": m.version, "roc_auc": m.roc_auc,
             "promoted": m.promoted}
            for m in outcome.models
        ],
    }  # fmt: skip


def score_headline(summary: dict[str, Any]) -> str:
    risk = summary.get("risk_summary", {})
    levels = ", ".join(
        f"{risk[level]:,} {level}" for level in ("critical", "high") if level in risk
    )
    campaigns = summary.get("campaigns", {})
    return (
        f"scored {count(summary.get('scored', 0), 'customer')} ({levels}); "
        f"{count(campaigns.get('created', 0), 'retention campaign')} planned, "
        f"{campaigns.get('held_out', 0):,} held out; "
        f"{count(summary.get('outcomes_resolved', 0), 'outcome')} joined"
    )


def retrain_headline(summary: dict[str, Any]) -> str:
    if not summary.get("trained"):
        return f"not trained: {summary.get('reason', 'no reason given')}"
    models = [
        f"{m['feature_set']} v{m['version']} (ROC-AUC {m['roc_auc']:.3f}, "
        f"{'promoted' if m['promoted'] else 'not promoted'})"
        for m in summary.get("models", [])
    ]
    return "trained " + ", ".join(models)


JOBS: list[JobSpec] = [
    JobSpec(
        name="churn.score",
        interval_seconds=12 * 3600,
        run=score_customers,
        description="Score every active customer, plan retention campaigns, join back outcomes",
        headline=score_headline,
    ),
    JobSpec(
        name="churn.retrain",
        interval_seconds=7 * 24 * 3600,
        run_in_units=retrain,
        description="Retrain churn models; promote only if not worse on the holdout",
        headline=retrain_headline,
    ),
]
