"""Dashboard endpoints on 10,000 customers × 24 months.

Builds the company with bulk inserts (customers on three plans, 20 % annual, trials, discounts,
upgrades, downgrades, churn and win-backs driven by fixed monthly hazards; one activity event per
active customer-month; four marketing channels a day), then times every dashboard and investor
endpoint over real HTTP: ``aethercrown serve`` in a subprocess on loopback (one worker,
automation off), one keep-alive client sending sequential requests, so each figure is a
request's latency through the server, routing, auth and serialisation included. The client
shares the 2 cores with the server; the load average is printed.

- cold: the first read after new data. Before each cold read one new customer is upserted
  through ``POST /api/v1/data/customers`` (untimed), so the data's fingerprint changes and the
  read recomputes what it serves instead of reading its snapshot; the median of ``--cold``
  such reads per endpoint;
- warm: ``--requests`` reads while the data is unchanged (p50 and p99).

It also checks MRR against an independent count: the sum, over the subscriptions alive at each
month end, of their monthly price, computed here from the generator's own records.

    .venv/bin/python benchmarks/analytics.py [--customers 10000] [--months 24] [--requests 200]
                                             [--cold 5] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.reliability.common import running_server

from aethercrown.analytics import metrics
from aethercrown.clock import utcnow
from aethercrown.core.ledger import record_decision, record_outcome
from aethercrown.data.models import ActivityEvent, Customer, MarketingSpend, Subscription
from aethercrown.db import migrate
from aethercrown.db.base import new_id
from aethercrown.db.engine import make_engine, make_session_factory
from aethercrown.db.session import write_transaction
from aethercrown.health.models import HealthSample
from aethercrown.tenants.schemas import TenantCreate
from aethercrown.tenants.service import create_tenant

PLANS = (("starter", 2900, 0.55), ("pro", 9900, 0.35), ("enterprise", 49900, 0.10))
CHURN_HAZARD = 0.025  # per month
UPGRADE_HAZARD = 0.02
DOWNGRADE_HAZARD = 0.01
WINBACK_HAZARD = 0.03  # a churned customer returns
TRIAL_SHARE, TRIAL_CONVERSION = 0.3, 0.7
ANNUAL_SHARE = 0.2
CHANNELS = ("search", "social", "email", "partners")


def _month_starts(months: int, now: datetime) -> list[datetime]:
    current = metrics.month_of(now)
    return [metrics.month_start(metrics.add_months(current, k - months + 1)) for k in range(months)]


def generate(
    tenant_id: uuid.UUID, customers: int, months: int, now: datetime, seed: int = 7
) -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(seed)
    starts = _month_starts(months, now)
    first = starts[0]
    span = (now - first).total_seconds()
    rows: dict[str, list[dict[str, Any]]] = {"customers": [], "subscriptions": [], "activity": []}
    created = utcnow()
    # Customer sign-ups grow over time (more later), like a growing company.
    for c in range(customers):
        signup = first + timedelta(seconds=span * (rng.random() ** 0.7))
        cid = new_id()
        rows["customers"].append(
            {
                "id": cid,
                "tenant_id": tenant_id,
                "external_id": f"cus_{c}",
                "name": f"Customer {c}",
                "email": f"c{c}@example.com",
                "company_size": int(rng.lognormvariate(3.5, 1.5)),
                "currency": "USD",
                "signup_date": signup.date(),
                "attributes": {},
                "created_at": created,
                "updated_at": created,
            }
        )
        plan_index = rng.choices(range(3), weights=[p[2] for p in PLANS])[0]
        at = signup
        alive = True
        n_sub = 0
        users = rng.randint(1, 4)
        trial = rng.random() < TRIAL_SHARE
        while at < now:
            plan, price, _ = PLANS[plan_index]
            annual = rng.random() < ANNUAL_SHARE
            trial_end = at + timedelta(days=14) if trial else None
            # Walk month by month until this subscription changes or ends.
            end: datetime | None = None
            next_plan = plan_index
            step = at
            if trial and rng.random() > TRIAL_CONVERSION:
                end = trial_end
                alive = False
            while end is None:
                step = step + timedelta(days=30)
                if step >= now:
                    break
                u = rng.random()
                if u < CHURN_HAZARD:
                    end, alive = step, False
                elif u < CHURN_HAZARD + UPGRADE_HAZARD and plan_index < 2:
                    end, next_plan = step, plan_index + 1
                elif u < CHURN_HAZARD + UPGRADE_HAZARD + DOWNGRADE_HAZARD and plan_index > 0:
                    end, next_plan = step, plan_index - 1
            rows["subscriptions"].append(
                {
                    "id": new_id(),
                    "tenant_id": tenant_id,
                    "external_id": f"sub_{c}_{n_sub}",
                    "customer_id": cid,
                    "plan": plan,
                    "amount": price * 12 if annual else price,
                    "currency": "USD",
                    "interval": "year" if annual else "month",
                    "quantity": rng.choice((1, 1, 1, 2, 5)),
                    "started_at": at,
                    "ended_at": end if end is None or end < now else None,
                    "discount_percent": rng.choice((0.0, 0.0, 0.0, 10.0, 20.0)),
                    "discount_amount": rng.choice((0, 0, 0, 0, 500)),
                    "trial_end": trial_end,
                    "created_at": created,
                    "updated_at": created,
                }
            )
            n_sub += 1
            last = end if end is not None else now
            cursor = at
            while cursor < last:
                rows["activity"].append(
                    {
                        "tenant_id": tenant_id,
                        "external_id": f"act_{c}_{len(rows['activity'])}",
                        "customer_id": cid,
                        "user_id": f"u{rng.randint(1, users)}",
                        "kind": "session",
                        "occurred_at": cursor + timedelta(hours=rng.randint(1, 600)),
                        "duration_seconds": rng.randint(30, 3600),
                        "feature": None,
                    }
                )
                cursor += timedelta(days=30)
            if end is None or end >= now:
                break
            if alive:
                at, plan_index, trial = end, next_plan, False
                continue
            # Churned: maybe won back some months later.
            gap = 30 * rng.randint(1, 12)
            if rng.random() < WINBACK_HAZARD * gap / 30:
                at, alive, trial = end + timedelta(days=gap), True, False
            else:
                break
    rows["activity"] = [a for a in rows["activity"] if a["occurred_at"] < now]
    rows["marketing"] = []
    day = first.date()
    while day <= now.date():
        for channel in CHANNELS:
            rows["marketing"].append(
                {
                    "tenant_id": tenant_id,
                    "channel": channel,
                    "day": day,
                    "spend": rng.randint(20_000, 200_000),
                    "currency": "USD",
                    "impressions": rng.randint(1000, 9000),
                    "clicks": rng.randint(10, 400),
                    "conversions": rng.randint(0, 9),
                    "attributed_revenue": rng.randint(0, 90_000),
                }
            )
        day += timedelta(days=1)
    return rows


def independent_mrr(subscriptions: list[dict[str, Any]], instant: datetime) -> int:
    """MRR at ``instant`` straight from the generator's records (no analytics code): the sum of
    every paying subscription's monthly net price."""
    total = 0
    for s in subscriptions:
        alive = s["started_at"] <= instant and (s["ended_at"] is None or s["ended_at"] > instant)
        paying = s["trial_end"] is None or s["trial_end"] <= instant
        if alive and paying:
            net = s["amount"] * s["quantity"] * (100 - s["discount_percent"]) / 100
            net = max(net - s["discount_amount"], 0)
            monthly = net / 12 if s["interval"] == "year" else net
            total += int(monthly + 0.5)  # half-up, like subscription_mrr
    return total


def load(url: str, rows: dict[str, list[dict[str, Any]]]) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        for table, key in (
            (Customer.__table__, "customers"),
            (Subscription.__table__, "subscriptions"),
            (ActivityEvent.__table__, "activity"),
            (MarketingSpend.__table__, "marketing"),
        ):
            batch = rows[key]
            for i in range(0, len(batch), 5000):
                conn.execute(insert(table), batch[i : i + 5000])
    engine.dispose()


def ledger(session_factory: Any, tenant_id: uuid.UUID, n: int, seed: int = 11) -> None:
    """Churn, budget and task decisions with outcomes, so the AI-performance view has work."""
    rng = random.Random(seed)
    with write_transaction(session_factory) as session:
        for i in range(n):
            score = rng.random()
            d = record_decision(
                session,
                tenant_id=tenant_id,
                kind="churn_prediction",
                subject_type="customer",
                subject_id=f"cus_{i}",
                inputs={"i": i},
                output={"p": score},
                model="churn",
                model_version="1",
                predicted_value=score,
            )
            record_outcome(d, {}, 1.0 if rng.random() < score else 0.0)
            t = record_decision(
                session,
                tenant_id=tenant_id,
                kind="task_assignment",
                subject_type="task",
                subject_id=f"t{i}",
                inputs={},
                output={},
                model="scheduler",
                model_version="1",
            )
            if i % 3:
                record_outcome(t, {}, 1.0, at=utcnow() + timedelta(seconds=rng.randint(5, 900)))


def health(url: str, tenant_id: uuid.UUID, now: datetime, seed: int = 5) -> int:
    """Hourly samples of five components over the last 30 days (1 % down, 3 % degraded)."""
    rng = random.Random(seed)
    rows = []
    for hour in range(30 * 24):
        for component in ("api", "database", "jobs", "workers", "disk"):
            u = rng.random()
            rows.append(
                {
                    "tenant_id": tenant_id,
                    "component": component,
                    "status": "down" if u < 0.01 else "degraded" if u < 0.04 else "ok",
                    "latency_ms": rng.uniform(1, 40),
                    "detail": {},
                    "source": "job",
                    "checked_at": now - timedelta(hours=hour),
                }
            )
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(insert(HealthSample.__table__), rows)
    engine.dispose()
    return len(rows)


def new_data(client: httpx.Client, headers: dict[str, str], counter: list[int]) -> None:
    """One more customer: the data's fingerprint changes, so the next read computes afresh."""
    counter[0] += 1
    response = client.post(
        "/api/v1/data/customers",
        json=[
            {
                "external_id": f"cold_{counter[0]}",
                "name": f"Cold {counter[0]}",
                "signup_date": utcnow().date().isoformat(),
            }
        ],
        headers=headers,
    )
    assert response.status_code == 200, response.text[:300]


def timed(
    client: httpx.Client,
    method: str,
    path: str,
    headers: dict[str, str],
    body: dict[str, Any] | None,
    n: int,
    cold_reads: int,
    counter: list[int],
) -> tuple[list[float], list[float]]:
    """(cold, warm) latencies in ms: each cold read comes right after new data."""
    cold = []
    for _ in range(cold_reads):
        new_data(client, headers, counter)
        start = time.perf_counter()
        response = client.request(method, path, json=body, headers=headers)
        cold.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.request(method, path, json=body, headers=headers)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    return cold, samples


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--cold", type=int, default=5, help="cold reads per endpoint")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="aethercrown-bench-"))
    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    slug = f"bench-{uuid.uuid4().hex[:6]}"
    with write_transaction(factory) as session:
        tenant, issued = create_tenant(
            session, TenantCreate(name="Bench", slug=slug, tier="enterprise"), actor="bench"
        )
        tenant.public_metrics = {
            "enabled": True,
            "figures": {"mrr": {"round_to": 100000}, "customers": {"round_to": 10}},
        }
        tenant_id, key = tenant.id, issued.secret or ""
    now = utcnow()
    t0 = time.perf_counter()
    rows = generate(tenant_id, args.customers, args.months, now)
    t1 = time.perf_counter()
    load(url, rows)
    ledger(factory, tenant_id, 2000)
    samples = health(url, tenant_id, now)
    t2 = time.perf_counter()
    print(
        f"database: {url.split('://')[0]}; customers {len(rows['customers'])}, "
        f"subscriptions {len(rows['subscriptions'])}, activity {len(rows['activity'])}, "
        f"marketing days×channels {len(rows['marketing'])}, health samples {samples}; "
        f"generated in {t1 - t0:.1f} s, "
        f"loaded in {t2 - t1:.1f} s"
    )

    headers = {"Authorization": f"Bearer {key}"}
    period = {
        "start": metrics.add_months(metrics.month_of(now), -(args.months - 1)),
        "end": metrics.month_of(now),
    }
    endpoints: list[tuple[str, str, dict[str, Any] | None]] = [
        # Baseline in the same run: an authenticated one-row read (the machine is shared, so
        # the ratio to it says more than the milliseconds).
        ("GET", f"/api/v1/tenants/{tenant_id}", None),
        ("POST", "/api/v1/dashboard/metrics/revenue", period),
        ("POST", "/api/v1/dashboard/executive/summary", period),
        ("POST", "/api/v1/dashboard/metrics/growth", period),
        ("POST", "/api/v1/dashboard/metrics/ai-performance", period),
        ("POST", "/api/v1/dashboard/metrics/system-health", period),
        ("GET", "/api/v1/investor/dashboard/live", None),
        ("GET", "/api/v1/investor/kpis", None),
        ("GET", "/api/v1/investor/activity-feed", None),
        ("GET", f"/api/v1/investor/metrics/public?tenant={slug}", None),
    ]
    env = {key: value for key, value in os.environ.items() if not key.startswith("AETHERCROWN_")}
    env.update(
        {
            "AETHERCROWN_DATABASE_URL": url,
            "AETHERCROWN_DATA_DIR": str(tmp / "data"),
            "AETHERCROWN_RUN_AUTOMATION": "false",
            "AETHERCROWN_LOG_LEVEL": "WARNING",
        }
    )
    failures = 0
    counter = [0]
    with running_server(env) as server, httpx.Client(base_url=server.base, timeout=60) as client:
        average = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(
            f"\nover HTTP (aethercrown serve, 1 worker, loopback; the client shares the 2 cores);"
            f" load average {average}; cold = median of {args.cold} first reads after new data,"
            f" warm = {args.requests} reads"
        )
        print(
            f"{'endpoint':<44} {'cold ms':>9} {'max':>7} {'p50 ms':>8} {'p99 ms':>8}"
            f" {'p50/base':>9}"
        )
        baseline = 0.0
        for method, path, body in endpoints:
            cold, samples = timed(
                client, method, path, headers, body, args.requests, args.cold, counter
            )
            worst = p99(samples)
            median = statistics.median(samples)
            baseline = baseline or median
            if "/tenants/" in path:
                name = "GET /api/v1/tenants/{id} (baseline)"
            else:
                name = f"{method} {path.split('?')[0]}"
                failures += worst > 100
            print(
                f"{name:<44} {statistics.median(cold):>9.1f} {max(cold):>7.1f} {median:>8.1f}"
                f" {worst:>8.1f} {median / baseline:>9.1f}"
            )
        print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        months = client.post(
            "/api/v1/dashboard/metrics/revenue", json=period, headers=headers
        ).json()["months"]
        growth = client.post(
            "/api/v1/dashboard/metrics/growth", json=period, headers=headers
        ).json()

    mismatches = 0
    for row in months:
        # The month read at its last instant (the current month: now), as metrics reads it.
        boundary = metrics.month_start(metrics.add_months(row["month"], 1))
        instant = now if now < boundary else boundary - timedelta(microseconds=1)
        if independent_mrr(rows["subscriptions"], instant) != row["mrr"]:
            mismatches += 1
    print(
        f"\nMRR vs independent sum over alive subscriptions: {len(months) - mismatches}/"
        f"{len(months)} months equal"
    )
    for name in ("mrr", "customers", "churn_rate"):
        bt = growth["forecasts"][name]["backtest"]
        print(
            f"forecast {name}: 3-month-ahead MAPE {bt['mape']}, 80% interval coverage "
            f"{bt['interval_coverage']} over {bt['origins']} origins"
        )
    last = months[-2]
    print(
        f"last complete month {last['month']}: MRR {last['mrr']}, customers "
        f"{last['customers']}, NRR {last['nrr']}, logo churn {last['logo_churn_rate']}"
    )
    engine.dispose()
    if mismatches or failures:
        sys.exit(f"{mismatches} MRR mismatches, {failures} endpoints over 100 ms p99")


if __name__ == "__main__":
    main()
