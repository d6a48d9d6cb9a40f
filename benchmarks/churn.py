"""Churn benchmark: score 1,000,000 customers in memory, and N customers end to end (features
from the database -> scores, campaigns and ledger decisions stored) on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/churn.py [--customers 100000] [--activity-scale 0.1]
        [--pg postgresql://postgres@127.0.0.1:5432/test_churn2] [--skip-sqlite]

The end-to-end company is the demo simulator's (``aethercrown.simulate``, 2 months, seed 11),
its window ending now, bulk-loaded (not timed); the timed part is ``churn.service.score_all``
as the 12-hour job runs it. Figures are printed as JSON lines; run by hand, never in the test
suite. The machine is shared: compare figures from one run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, func, select, text

from aethercrown.churn import features as F
from aethercrown.churn import policy, service
from aethercrown.churn.models import ChurnScore, RetentionCampaign
from aethercrown.churn.repository import load_company_rows
from aethercrown.core.models import Decision
from aethercrown.db import migrate
from aethercrown.db.engine import make_engine, make_session_factory
from aethercrown.db.session import write_transaction
from aethercrown.simulate import SimConfig, generate


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
            rng.normal(0, 0.5, rows),  # session trend
            rng.normal(0, 2, rows),  # feature trend
            rng.poisson(0.1, rows),  # open tickets
            np.where(rng.random(rows) < 0.7, np.nan, rng.integers(1, 6, rows)),  # satisfaction
            rng.uniform(30, 900, rows),  # tenure
            rng.gamma(2, 200, rows),  # MRR
            rng.normal(0, 0.1, rows),  # MRR change
            rng.poisson(0.05, rows),  # plan changes
            rng.integers(5, 100, rows),  # company size
            np.full(rows, np.nan),  # annual revenue
            rng.normal(0, 0.6, rows),  # 14-day session trend
            rng.poisson(0.05, rows),  # unhappy tickets
            rng.poisson(0.05, rows),  # failed payments, 30 days
        ]
    ).astype(np.float64)
    assert x.shape[1] == len(F.BEHAVIOUR_FEATURES)
    x = service._select_columns(x, F.BEHAVIOUR_FEATURES, model.features)
    figures: dict[str, float] = {"rows": rows, "trees": model.booster.num_trees()}
    for label, threads in (("all_cores", 0), ("one_thread", 1)):
        started = time.perf_counter()
        p = model.predict(x, num_threads=threads)
        levels = policy.risk_levels(p)
        seconds = time.perf_counter() - started
        figures[f"rows_per_second_{label}"] = round(rows / seconds)
    figures["medium_or_higher_share"] = round(1 - levels.count("low") / rows, 4)
    shap_rows = min(rows, 20_000)
    started = time.perf_counter()
    model.contributions(x[:shap_rows])
    figures["treeshap_rows_per_second"] = round(shap_rows / (time.perf_counter() - started))
    return figures


def end_to_end(url: str, customers: int, activity_scale: float) -> dict[str, float | str]:
    from aethercrown.tenants.schemas import TenantCreate
    from aethercrown.tenants.service import create_tenant

    migrate.upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    config = SimConfig(
        customers=customers, months=2, seed=11, end=today, activity_scale=activity_scale
    )
    t0 = time.perf_counter()
    company = generate(config)
    generated = time.perf_counter() - t0
    t0 = time.perf_counter()
    with write_transaction(factory) as session:
        slug = f"bench-{int(time.time())}"
        tenant, _ = create_tenant(
            session, TenantCreate(name="Bench", slug=slug, tier="enterprise"), "bench"
        )
        load_company_rows(session, tenant.id, company)
    loaded = time.perf_counter() - t0
    t0, cpu = time.perf_counter(), time.process_time()
    with write_transaction(factory) as session:
        summary = service.score_all(session, tenant.id, actor="benchmark")
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu
    with write_transaction(factory) as session:
        stored = {
            name: session.scalar(select(func.count()).select_from(model))
            for name, model in (
                ("scores", ChurnScore),
                ("campaigns", RetentionCampaign),
                ("decisions", Decision),
            )
        }
    engine.dispose()
    return {
        "backend": engine.dialect.name,
        "customers": customers,
        "activity_rows": len(company.rows["activity"]),
        "generate_seconds": round(generated, 1),
        "load_seconds": round(loaded, 1),
        "scored": summary["scored"],
        "risk_summary": summary["risk_summary"],
        "stored": stored,
        "end_to_end_seconds": round(seconds, 2),
        # CPU seconds of this process (SQLite runs in it; PostgreSQL's server work is not
        # counted): on a shared machine they say what an idle core would take.
        "end_to_end_cpu_seconds": round(cpu, 2),
        "rows_per_second": round(summary["scored"] / seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--activity-scale", type=float, default=0.1)
    parser.add_argument("--in-memory-rows", type=int, default=1_000_000)
    parser.add_argument("--pg", default=None, help="PostgreSQL URL of a scratch database")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-in-memory", action="store_true")
    args = parser.parse_args()
    if not args.skip_in_memory:
        print(json.dumps({"in_memory": in_memory(args.in_memory_rows)}), flush=True)
    if not args.skip_sqlite:
        path = Path(tempfile.mkdtemp(prefix="churn-bench-")) / "bench.db"
        figures = end_to_end(f"sqlite:///{path}", args.customers, args.activity_scale)
        print(json.dumps({"end_to_end": figures}), flush=True)
    if args.pg:
        admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        admin.dispose()
        url = args.pg.replace("postgresql://", "postgresql+psycopg://", 1)
        figures = end_to_end(url, args.customers, args.activity_scale)
        print(json.dumps({"end_to_end": figures}), flush=True)


if __name__ == "__main__":
    main()
