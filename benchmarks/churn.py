"""Churn benchmark: score 1,000,000 customers in memory, and N customers end to end (features
from the database -> scores, campaigns and ledger rows stored) on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/churn.py [--customers 100000] [--pg postgresql://…]

Figures are printed as JSON lines; run by hand, never in the test suite.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, insert, text

from aethercrown.churn import features as F
from aethercrown.churn import service, synthetic
from aethercrown.churn.repository import load_company_rows
from aethercrown.db import migrate
from aethercrown.db.base import new_id
from aethercrown.db.engine import make_engine, make_session_factory, transaction


def in_memory(rows: int) -> dict[str, float]:
    model = service.prior_model("full").predictor
    rng = np.random.default_rng(0)
    x = np.column_stack(
        [
            rng.exponential(5, rows),  # days since last login
            rng.gamma(2, 1.5, rows),  # sessions per week
            rng.exponential(12, rows),  # minutes per session
            rng.integers(0, 12, rows),  # features used
            rng.poisson(0.4, rows),  # tickets
            rng.poisson(0.2, rows),  # failed payments
            rng.normal(0, 0.5, rows),
            rng.normal(0, 2, rows),
            rng.poisson(0.1, rows),
            np.where(rng.random(rows) < 0.7, np.nan, rng.integers(1, 6, rows)),
            rng.uniform(30, 900, rows),
            rng.gamma(2, 200, rows),
            rng.normal(0, 0.1, rows),
            rng.poisson(0.05, rows),
            rng.integers(5, 100, rows),
            np.full(rows, np.nan),
        ]
    ).astype(np.float64)
    assert x.shape[1] == len(F.BEHAVIOUR_FEATURES)
    started = time.perf_counter()
    p = model.predict(x)
    levels = np.digitize(p, [0.3, 0.5, 0.7])
    seconds = time.perf_counter() - started
    shap_rows = min(rows, 100_000)
    started = time.perf_counter()
    model.contributions(x[:shap_rows])
    shap_seconds = time.perf_counter() - started
    return {
        "rows": rows,
        "score_seconds": round(seconds, 3),
        "rows_per_second": round(rows / seconds),
        "critical_share": float((levels == 3).mean()),
        "treeshap_rows_per_second": round(shap_rows / shap_seconds),
    }


def end_to_end(url: str, customers: int) -> dict[str, float | str]:
    from aethercrown.tenants.models import Tenant

    migrate.upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=60)
    t0 = time.perf_counter()
    company = synthetic.generate(customers=customers, blocks=2, seed=11, start=start)
    generated = time.perf_counter() - t0
    with transaction(factory) as session:
        if session.execute(text("SELECT count(*) FROM tiers")).scalar() == 0:
            session.execute(
                insert(__import__("aethercrown.tenants.models", fromlist=["Tier"]).Tier),
                [{"slug": "starter", "name": "Starter", "rank": 1, "monthly_price": 2900,
                  "requests_per_minute": 60, "max_stored_rows": 10**9, "max_seats": 5,
                  "max_ai_agents": 1, "automation_min_interval_seconds": 3600}],
            )  # fmt: skip
        tier = session.execute(text("SELECT slug FROM tiers LIMIT 1")).scalar_one()
        tenant = Tenant(id=new_id(), name="Bench", slug=f"bench-{new_id().hex[:8]}", tier_slug=tier)
        session.add(tenant)
        session.flush()
        t0 = time.perf_counter()
        load_company_rows(session, tenant.id, company)
    loaded = time.perf_counter() - t0
    t0 = time.perf_counter()
    with transaction(factory) as session:
        summary = service.score_all(session, tenant.id, actor="benchmark")
    seconds = time.perf_counter() - t0
    engine.dispose()
    return {
        "backend": engine.dialect.name,
        "customers": customers,
        "activity_rows": len(company.activity),
        "generate_seconds": round(generated, 1),
        "load_seconds": round(loaded, 1),
        "scored": summary["scored"],
        "campaigns": summary["campaigns"]["created"] + summary["campaigns"]["held_out"],
        "end_to_end_seconds": round(seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--in-memory-rows", type=int, default=1_000_000)
    parser.add_argument("--pg", default=None, help="PostgreSQL URL of a scratch database")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    print(json.dumps({"in_memory": in_memory(args.in_memory_rows)}), flush=True)
    if not args.skip_sqlite:
        path = Path(tempfile.mkdtemp(prefix="churn-bench-")) / "bench.db"
        print(json.dumps({"end_to_end": end_to_end(f"sqlite:///{path}", args.customers)}),
              flush=True)  # fmt: skip
    if args.pg:
        admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        admin.dispose()
        url = args.pg.replace("postgresql://", "postgresql+psycopg://", 1)
        print(json.dumps({"end_to_end": end_to_end(url, args.customers)}), flush=True)


if __name__ == "__main__":
    main()
