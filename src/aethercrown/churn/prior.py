"""Train the simulator prior (the model a tenant gets before it has labelled history) and
measure a churn model against the demo simulator's truth.

``python -m aethercrown.churn.prior [customers] [months] [seed]`` generates the demo company
(``aethercrown.simulate``), writes its business-data rows into a scratch SQLite database,
trains both feature sets exactly as a tenant's models are trained,
prints their holdout quality against the simulator's oracle, and writes the artifacts shipped
beside this module.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score
from sqlalchemy.orm import Session

from aethercrown.churn import model as M
from aethercrown.churn import service
from aethercrown.churn.repository import load_company_rows
from aethercrown.db import migrate
from aethercrown.db.engine import make_engine, make_session_factory
from aethercrown.simulate import SimConfig, SimulatedCompany, generate
from aethercrown.simulate.truth import Truth
from aethercrown.tenants.schemas import TenantCreate
from aethercrown.tenants.service import create_tenant

# The shipped prior: a larger company than the default demo, so every slice has enough churn.
# A fixed window (May 2025 – June 2026) keeps the artifact reproducible on any day.
PRIOR_CONFIG = SimConfig(customers=3000, months=14, seed=7, end=datetime(2026, 7, 1, tzinfo=UTC))


@dataclass
class TruthComparison:
    """One model's holdout predictions next to the simulator's oracle, on the same rows.

    Labels are the truth's (``churned_within``: the churn decision fell within the horizon),
    rows are the holdout rows whose customer the truth has alive at the snapshot. The oracle
    is the true hazard: ``path`` sums it over the horizon (it knows the future path of the
    latent health), ``as_of`` freezes it at the snapshot (the best any model of as-of data can
    know)."""

    rows: int
    churned: int
    roc_auc: float
    oracle_auc_as_of: float
    oracle_auc_path: float
    ece: float  # against the truth's labels
    ece_stored_labels: float  # against the stored labels the model was calibrated on

    def share_of_oracle(self, mode: str = "as_of") -> float:
        oracle = self.oracle_auc_as_of if mode == "as_of" else self.oracle_auc_path
        return self.roc_auc / oracle

    def as_dict(self) -> dict[str, float | int]:
        return {
            "rows": self.rows,
            "churned": self.churned,
            "roc_auc": round(self.roc_auc, 4),
            "oracle_auc_as_of": round(self.oracle_auc_as_of, 4),
            "oracle_auc_path": round(self.oracle_auc_path, 4),
            "share_of_oracle_as_of": round(self.share_of_oracle("as_of"), 4),
            "share_of_oracle_path": round(self.share_of_oracle("path"), 4),
            "ece": round(self.ece, 4),
            "ece_stored_labels": round(self.ece_stored_labels, 4),
        }


def scratch_session() -> Session:

    scratch = Path(tempfile.mkdtemp(prefix="aethercrown-prior-")) / "prior.db"
    url = f"sqlite:///{scratch}"
    migrate.upgrade(url)
    return make_session_factory(make_engine(url))()


def load_company(session: Session, company: SimulatedCompany, slug: str) -> uuid.UUID:
    """A new tenant holding the generated company's business-data rows."""

    tenant, _ = create_tenant(
        session, TenantCreate(name=f"Churn prior {slug}", slug=slug, tier="enterprise"), "prior"
    )
    load_company_rows(session, tenant.id, company)
    session.flush()
    return tenant.id


def window_end(truth: Truth) -> datetime:
    """The simulated window's end, a midnight UTC for the prior's config: snapshots then fall
    on day boundaries, so the stored labels' windows and the truth's day-indexed horizons
    coincide."""
    return truth.end


def compare_with_truth(
    outcome: service.TrainOutcome, truth: Truth, feature_set: str = "full"
) -> TruthComparison:
    data, rows = outcome.data, outcome.split.holdout
    predicted = outcome.holdout_predictions[feature_set]
    horizon = data.horizon_days
    keep: list[int] = []
    labels: list[float] = []
    as_of_p: list[float] = []
    path_p: list[float] = []
    by_snapshot: dict[int, tuple[dict[str, float], dict[str, float], dict[str, bool]]] = {}
    for position, r in enumerate(rows.tolist()):
        k = int(data.snapshot[r])
        if k not in by_snapshot:
            day: date = data.snapshots[k].astimezone(UTC).date()
            by_snapshot[k] = (
                truth.churn_probabilities(day, horizon, mode="as_of"),
                truth.churn_probabilities(day, horizon, mode="path"),
                truth.churned_within(day, horizon),
            )
        frozen, path, churned = by_snapshot[k]
        ext = data.customers.external_ids[int(data.customer[r])]
        if ext in churned:
            keep.append(position)
            labels.append(float(churned[ext]))
            as_of_p.append(frozen[ext])
            path_p.append(path[ext])
    y = np.array(labels, dtype=np.int64)
    p = predicted[np.array(keep, dtype=np.int64)]
    stored = data.y[rows]
    return TruthComparison(
        rows=len(keep),
        churned=int(y.sum()),
        roc_auc=float(roc_auc_score(y, p)),
        oracle_auc_as_of=float(roc_auc_score(y, np.array(as_of_p))),
        oracle_auc_path=float(roc_auc_score(y, np.array(path_p))),
        ece=float(M.expected_calibration_error(y, p)),
        ece_stored_labels=float(M.expected_calibration_error(stored, predicted)),
    )


def train_on_simulator(
    session: Session, config: SimConfig, use_attributes: bool = True
) -> tuple[service.TrainOutcome, dict[str, TruthComparison]]:
    company = generate(config)
    tenant_id = load_company(session, company, f"prior-{uuid.uuid4().hex[:8]}")
    outcome = service.train(
        session,
        tenant_id,
        actor="prior",
        as_of=window_end(company.truth),
        use_attributes=use_attributes,
    )
    comparisons = {
        row.feature_set: compare_with_truth(outcome, company.truth, row.feature_set)
        for row in outcome.models
    }
    return outcome, comparisons


def registry_metrics(row: Any) -> dict[str, float]:
    return {
        k: round(float(getattr(row, k)), 4)
        for k in ("roc_auc", "pr_auc", "brier", "ece", "top_decile_lift")
    }


def main(argv: list[str]) -> None:
    defaults = PRIOR_CONFIG
    config = SimConfig(
        customers=int(argv[0]) if len(argv) > 0 else defaults.customers,
        months=int(argv[1]) if len(argv) > 1 else defaults.months,
        seed=int(argv[2]) if len(argv) > 2 else defaults.seed,
        end=defaults.end,
    )
    started = time.perf_counter()
    session = scratch_session()
    outcome, comparisons = train_on_simulator(session, config)
    here = Path(__file__).parent
    report: dict[str, Any] = {"config": config.to_dict()}
    for row in outcome.models:
        if config == defaults:
            (here / service.PRIOR_FILES[row.feature_set]).write_bytes(row.artifact)
        report[row.feature_set] = {
            "stored_labels": registry_metrics(row),
            "against_truth": comparisons[row.feature_set].as_dict(),
            "trees": row.training["trees"],
            "calibration": row.training["calibration"],
        }
    report["written"] = config == defaults
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
