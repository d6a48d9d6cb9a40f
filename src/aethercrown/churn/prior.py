"""Train the simulator prior: the model a tenant gets before it has labelled history.

``python -m aethercrown.churn.prior`` generates the demo company, loads it into a scratch
in-memory database through the same repository code tenants use, trains both feature sets the
same way a tenant's models are trained, and writes the artifacts shipped beside this module.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score
from sqlalchemy import insert
from sqlalchemy.orm import Session

from aethercrown.churn import service, synthetic
from aethercrown.churn.repository import load_company_rows
from aethercrown.db.base import new_id


@dataclass
class PriorRun:
    outcome: service.TrainOutcome
    oracle_auc: float
    metrics: dict[str, dict[str, float]]


def scratch_session() -> Session:
    from aethercrown.db.engine import make_engine, make_session_factory
    from aethercrown.db.registry import metadata

    scratch = Path(tempfile.mkdtemp(prefix="aethercrown-prior-")) / "prior.db"
    engine = make_engine(f"sqlite:///{scratch}")
    metadata.create_all(engine)
    return make_session_factory(engine)()


def oracle_auc(outcome: service.TrainOutcome, company: synthetic.SyntheticCompany) -> float:
    """ROC-AUC of the true hazard on the holdout rows (the best any model could do)."""
    data, rows = outcome.data, outcome.split.holdout
    truth = []
    for r in rows:
        moment = data.snapshots[data.snapshot[r]]
        block = round((moment - company.start).total_seconds() / (30 * 86400))
        truth.append(company.truth.get((data.customers.external_ids[data.customer[r]], block), 0.0))
    return float(roc_auc_score(data.y[rows], np.array(truth)))


def train_on_company(
    session: Session, company: synthetic.SyntheticCompany, use_attributes: bool = False
) -> PriorRun:
    from aethercrown.tenants.models import Tenant, Tier

    if session.get(Tier, "starter") is None:
        session.execute(
            insert(Tier),
            [{"slug": "starter", "name": "Starter", "rank": 1, "monthly_price": 2900,
              "requests_per_minute": 60, "max_stored_rows": 10**9, "max_seats": 5,
              "max_ai_agents": 1, "automation_min_interval_seconds": 3600}],
        )  # fmt: skip
    tenant = Tenant(
        id=new_id(), name="Prior", slug=f"prior-{new_id().hex[:8]}", tier_slug="starter"
    )
    session.add(tenant)
    session.flush()
    load_company_rows(session, tenant.id, company)
    session.flush()
    outcome = service.train(
        session, tenant.id, actor="prior", as_of=company.end, use_attributes=use_attributes
    )
    return PriorRun(
        outcome,
        oracle_auc(outcome, company),
        {m.feature_set: _metrics(m) for m in outcome.models},
    )


def _metrics(row: Any) -> dict[str, float]:
    return {k: getattr(row, k) for k in ("roc_auc", "pr_auc", "brier", "ece", "top_decile_lift")}


def main(argv: list[str]) -> None:
    customers = int(argv[0]) if argv else 6000
    started = datetime.now()
    company = synthetic.generate(customers=customers, blocks=14, seed=7)
    print("generated", (datetime.now() - started).total_seconds(), len(company.activity))
    session = scratch_session()
    run = train_on_company(session, company)
    here = Path(__file__).parent
    for row in run.outcome.models:
        (here / service.PRIOR_FILES[row.feature_set]).write_bytes(row.artifact)
    print(
        {
            "oracle_auc": run.oracle_auc,
            **run.metrics,
            "seconds": (datetime.now() - started).total_seconds(),
        }
    )


if __name__ == "__main__":
    main(sys.argv[1:])
