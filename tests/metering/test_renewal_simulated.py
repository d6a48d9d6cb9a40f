"""The renewal model scored against the demo simulator's ground truth.

The simulator (``aethercrown.simulate``) draws churn from a known daily hazard. Its generated
rows are turned into the model's inputs exactly as the service does (``renewal.outcomes`` and
``renewal_model.features_at``), without a database: the model trains on the renewals decided
before an as-of date and then ranks the customers alive at that date; the truth gives each of them
its real probability of churning, and the realised churn.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from aethercrown.metering import renewal, renewal_model
from aethercrown.simulate.config import SimConfig
from aethercrown.simulate.generator import generate

HORIZON_DAYS = 90


@dataclass
class Sub:
    customer_id: str
    started_at: datetime
    ended_at: datetime | None
    interval: str


def _time(value: Any) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def test_renewal_model_against_the_simulators_truth() -> None:
    config = SimConfig(customers=600, months=12, seed=5, end=datetime(2026, 5, 1, tzinfo=UTC))
    company = generate(config)
    rows, truth = company.rows, company.truth
    signup = {c["external_id"]: date.fromisoformat(c["signup_date"]) for c in rows["customers"]}
    subs = [
        Sub(
            s["customer"],
            _time(s["started_at"]),
            _time(s["ended_at"]) if s.get("ended_at") else None,
            s["interval"],
        )
        for s in rows["subscriptions"]
    ]
    activity: dict[str, Counter[date]] = defaultdict(Counter)
    for a in rows["activity"]:
        activity[a["customer"]][_time(a["occurred_at"]).date()] += 1
    usage: dict[str, Counter[date]] = defaultdict(Counter)
    for u in rows["usage"]:
        usage[u["customer"]][_time(u["timestamp"]).date()] += 1
    tickets: dict[str, list[datetime]] = defaultdict(list)
    for t in rows["tickets"]:
        tickets[t["customer"]].append(_time(t["opened_at"]))
    failed: dict[str, list[datetime]] = defaultdict(list)
    for p in rows["payments"]:
        if p["status"] == "failed":
            failed[p["customer"]].append(_time(p["occurred_at"]))
    history = {
        ext: renewal_model.History.build(
            day, list(activity[ext].items()), list(usage[ext].items()), tickets[ext], failed[ext]
        )
        for ext, day in signup.items()
    }

    as_of = datetime.combine(config.start + timedelta(days=270), time(), UTC)
    outcomes = renewal.outcomes(subs, as_of)  # type: ignore[arg-type]
    assert all(at <= as_of for _, at, _ in outcomes)
    x = [renewal_model.features_at(history[c], at) for c, at, _ in outcomes]
    y = [label for _, _, label in outcomes]
    fitted = renewal_model.train(x, y)

    probabilities = truth.churn_probabilities(as_of.date(), HORIZON_DAYS)
    churned = truth.churned_within(as_of.date(), HORIZON_DAYS)
    alive = sorted(probabilities)
    renew = renewal_model.predict_many(
        fitted["params"], [renewal_model.features_at(history[c], as_of) for c in alive]
    )
    lapse_score = 1 - renew
    labels = np.asarray([churned[c] for c in alive])
    true_p = np.asarray([probabilities[c] for c in alive])
    model_auc = roc_auc_score(labels, lapse_score)
    oracle_auc = roc_auc_score(labels, true_p)
    # Measured with seed 5: model 0.83, the true probabilities 0.90 (over 500+ customers alive,
    # ~40 churning within 90 days); the model sees only the data, not the latent health.
    assert labels.sum() >= 15
    assert model_auc > 0.75 and model_auc > oracle_auc - 0.12, (model_auc, oracle_auc)
    assert float(np.corrcoef(lapse_score, true_p)[0, 1]) > 0.3
    # calibrated on its own outcomes: out-of-fold Brier beats always predicting the base rate
    base = fitted["metrics"]["base_rate"]
    assert fitted["metrics"]["oof_brier"] < base * (1 - base)
