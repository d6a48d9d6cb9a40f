"""A small SaaS company with a known churn hazard, in the business-data row contract (pure).

Used to train the prior model a tenant gets before it has labelled history of its own, and by
the tests and benchmarks to measure a model against the truth. Each customer has a latent
engagement that drifts month to month; it drives sessions, their length, feature breadth,
tickets and satisfaction, and (with payment failures) the chance of cancelling in the *next*
30-day block. So the truth at an as-of moment on a block boundary is a function of behaviour in
the 30 days before it, observed with noise: ``truth[(external_id, block)]`` is the exact
probability of churning in that block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

FEATURES = tuple(f"feature_{i}" for i in range(12))
PLANS = (("starter", 2900), ("professional", 9900), ("enterprise", 49900))


@dataclass
class SyntheticCompany:
    start: datetime
    blocks: int
    customers: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    activity: list[dict[str, Any]] = field(default_factory=list)
    tickets: list[dict[str, Any]] = field(default_factory=list)
    payments: list[dict[str, Any]] = field(default_factory=list)
    # (customer external_id, block index) -> probability of churning during that block.
    truth: dict[tuple[str, int], float] = field(default_factory=dict)

    @property
    def end(self) -> datetime:
        return self.block_start(self.blocks)

    def block_start(self, block: int) -> datetime:
        return self.start + timedelta(days=30 * block)


def _sigmoid(z: float) -> float:
    return float(1.0 / (1.0 + np.exp(-z)))


def generate(
    customers: int = 1500,
    blocks: int = 14,
    seed: int = 0,
    start: datetime = datetime(2025, 1, 1, tzinfo=UTC),
) -> SyntheticCompany:
    rng = np.random.default_rng(seed)
    company = SyntheticCompany(start=start, blocks=blocks)
    counter = 0

    def next_id(prefix: str) -> str:
        nonlocal counter
        counter += 1
        return f"{prefix}-{counter}"

    for c in range(customers):
        ext = f"cust-{c}"
        join_block = int(rng.integers(0, max(1, blocks // 3)))
        joined = company.block_start(join_block) - timedelta(days=int(rng.integers(0, 30)))
        plan, price = PLANS[int(rng.choice(3, p=[0.6, 0.3, 0.1]))]
        seats = int(rng.integers(1, 20))
        payment_risk = float(rng.beta(1.2, 12))
        engagement = float(rng.normal(0.0, 1.0))
        company.customers.append(
            {
                "external_id": ext,
                "name": f"Customer {c}",
                "company_size": seats * 5,
                "currency": "USD",
                "signup_date": joined.date().isoformat(),
                "attributes": {"seats": seats, "segment": plan},
            }
        )
        sub_id = f"sub-{c}"
        ended: datetime | None = None
        failures: list[float] = []
        unhappy_tickets: list[float] = []
        for block in range(join_block, blocks):
            lo = company.block_start(block)
            sessions = int(rng.poisson(6.0 * np.exp(0.55 * engagement)))
            for _ in range(sessions):
                at = lo + timedelta(seconds=float(rng.uniform(0, 30 * 86400)))
                minutes = float(rng.exponential(12.0 * np.exp(0.35 * engagement)))
                company.activity.append(
                    {
                        "external_id": next_id("ev"),
                        "customer": ext,
                        "user_id": f"{ext}-u{int(rng.integers(0, 3))}",
                        "kind": "session",
                        "occurred_at": at,
                        "duration_seconds": int(minutes * 60),
                    }
                )
            breadth = int(rng.binomial(len(FEATURES), _sigmoid(engagement - 0.3)))
            for feature in rng.choice(FEATURES, size=breadth, replace=False):
                at = lo + timedelta(seconds=float(rng.uniform(0, 30 * 86400)))
                company.activity.append(
                    {
                        "external_id": next_id("ev"),
                        "customer": ext,
                        "user_id": f"{ext}-u0",
                        "kind": "feature",
                        "occurred_at": at,
                        "feature": str(feature),
                    }
                )
            tickets = int(rng.poisson(0.35 * np.exp(-0.5 * engagement)))
            unhappy = 0.0
            for _ in range(tickets):
                opened = lo + timedelta(seconds=float(rng.uniform(0, 20 * 86400)))
                satisfaction = int(np.clip(round(3.2 + engagement + rng.normal(0, 0.8)), 1, 5))
                unhappy += 1.0 if satisfaction <= 2 else 0.0
                company.tickets.append(
                    {
                        "external_id": next_id("t"),
                        "customer": ext,
                        "opened_at": opened,
                        "closed_at": opened + timedelta(hours=float(rng.uniform(1, 72))),
                        "priority": "normal",
                        "satisfaction": satisfaction,
                    }
                )
            failed = rng.random() < payment_risk
            pay_at = lo + timedelta(days=1)
            company.payments.append(
                {
                    "external_id": next_id("p"),
                    "customer": ext,
                    "occurred_at": pay_at,
                    "status": "failed" if failed else "succeeded",
                    "amount": price * seats,
                    "currency": "USD",
                }
            )
            failures.append(float(failed))
            unhappy_tickets.append(unhappy)
            # The chance of cancelling in the next block follows this block's engagement and
            # the last three blocks' payment failures and unhappy tickets.
            hazard = _sigmoid(
                -3.0 - 1.1 * engagement + 0.7 * sum(failures[-3:]) + 0.4 * sum(unhappy_tickets[-3:])
            )
            if block + 1 < blocks:
                company.truth[(ext, block + 1)] = hazard
                if rng.random() < hazard:
                    ended = company.block_start(block + 1) + timedelta(
                        seconds=float(rng.uniform(0, 30 * 86400 - 1))
                    )
                    break
            engagement = 0.8 * engagement + float(rng.normal(0.0, 0.45))
        company.subscriptions.append(
            {
                "external_id": sub_id,
                "customer": ext,
                "plan": plan,
                "amount": price,
                "currency": "USD",
                "interval": "month",
                "quantity": seats,
                "started_at": joined,
                "ended_at": ended,
            }
        )
    return company


def signup(value: str) -> date:
    return date.fromisoformat(value)
