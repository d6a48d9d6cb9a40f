"""Budget benchmarks.

1. ``--seeds N`` (quality on the demo company's own noisy history, and latency): for N demo
   companies (``aethercrown.simulate``, default size, seeds 0…N-1, a fixed end so the run is
   repeatable) the budget decision is made from each company's marketing rows exactly as the
   endpoint makes it (``service.plan_from_history``) at 0.5, 1, 1.5 and 2 × the current daily
   spend, and scored on the simulator's TRUE steady-state curves: the plan's true return over the
   true optimum under the same limits (5 % minimum share), and against the current split's.
   Then the endpoint's end-to-end latency on the default demo's marketing rows in a fresh
   SQLite database, in-process HTTP: cold (fits computed and cached) and warm (fits read).

    .venv/bin/python benchmarks/budget.py --seeds 20 [--diagnose]

   Each company's curves are fitted once (an in-memory stand-in for the endpoint's fit cache)
   and read for every budget. ``--diagnose`` prints, for each case under 95 % of the optimum or
   under the current split, every channel's amounts, trusted range and fitted curve (mean and
   95 % band) against the true curve at the recommended amount.

2. default (optimiser): time to split a budget over 5, 50 and 500 channels on fixed curves,
against a peer optimiser on the same curves in the same run.

    .venv/bin/python benchmarks/budget.py [--peer-python /work/pymc-venv/bin/python]

Curves: Hill β·x^k/(x^k+K^k) with β ~ U(50, 500), K ~ U(10, 100) and k ~ U(0.6, 3.0) (about
three in four S-shaped), budget 40 per channel, each channel in [0, budget]; a second set is
concave only (k ~ U(0.5, 1.0)). Ours: ``aethercrown.budget.optimizer.maximise`` (certified to a
relative gap ≤ 1e-9). Peers: PyMC-Marketing's BudgetOptimizer (SLSQP, one start) run under the
interpreter given by --peer-python (or $BUDGET_PEER_PYTHON, or /work/pymc-venv/bin/python) when
it has pymc-marketing; and always SciPy SLSQP with 10 starts as a plain stand-in, given the
objective's gradient and the budget constraint's Jacobian. Every side is timed warm (one untimed
call first: PyMC-Marketing's first allocation compiles its functions) over the same number of
calls (50 up to 50 channels, 10 above). The response gap is (ours − peer) / ours, each
allocation's return evaluated on the same curves.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from scipy.optimize import minimize
from sqlalchemy import delete

from aethercrown.app import create_app
from aethercrown.budget import planner, schemas, service
from aethercrown.budget.curves import ResponseCurve
from aethercrown.budget.models import BudgetFitCache
from aethercrown.budget.optimizer import CurveArrays, maximise
from aethercrown.data.service import ingest_rows
from aethercrown.db import migrate
from aethercrown.db.engine import make_engine, make_session_factory
from aethercrown.db.session import write_transaction
from aethercrown.settings import Settings
from aethercrown.simulate.config import SimConfig
from aethercrown.simulate.curves import Curve as SimCurve
from aethercrown.simulate.curves import adstock as sim_adstock
from aethercrown.simulate.generator import generate
from aethercrown.tenants.schemas import TenantCreate
from aethercrown.tenants.service import create_tenant

SIZES = (5, 50, 500)
URL = "/api/v1/optimization/budget/optimize"
HERE = Path(__file__).resolve().parent


def curves(n: int, concave: bool, seed: int) -> tuple[CurveArrays, float]:
    rng = np.random.default_rng(seed)
    beta = rng.uniform(50, 500, n)
    scale = rng.uniform(10, 100, n)
    shape = rng.uniform(0.5, 1.0, n) if concave else rng.uniform(0.6, 3.0, n)
    return CurveArrays(np.ones(n, dtype=bool), beta, scale, shape), 40.0 * n


def timed(fn: Any, repeats: int) -> tuple[float, float, Any]:
    """Median and minimum wall time of ``repeats`` calls (the minimum is the least disturbed by
    other work on a shared machine), and the last result."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times), result


def slsqp_multistart(c: CurveArrays, budget: float, starts: int, seed: int) -> np.ndarray:
    n = len(c)
    rng = np.random.default_rng(seed)
    best_x, best_v = np.full(n, budget / n), -np.inf
    ones = np.ones(n)  # the budget constraint's Jacobian: SLSQP would difference it otherwise
    candidates = [np.full(n, budget / n)] + [
        rng.dirichlet(np.ones(n)) * budget for _ in range(starts - 1)
    ]
    for x0 in candidates:
        result = minimize(
            lambda x: -float(c.value(x).sum()),
            x0,
            jac=lambda x: -c.slope(np.maximum(x, 1e-12)),
            bounds=[(0.0, budget)] * n,
            constraints=[{"type": "eq", "fun": lambda x: x.sum() - budget, "jac": lambda x: ones}],
            method="SLSQP",
            options={"maxiter": 500, "ftol": 1e-12},
        )
        x = np.clip(result.x, 0, budget)
        x *= budget / x.sum()
        value = float(c.value(x).sum())
        if value > best_v:
            best_x, best_v = x, value
    return best_x


def peer_python(explicit: str | None) -> str | None:
    for candidate in (explicit, os.environ.get("BUDGET_PEER_PYTHON"), "/work/pymc-venv/bin/python"):
        if candidate and Path(candidate).exists():
            probe = subprocess.run(
                [candidate, "-c", "import pymc_marketing"], capture_output=True, check=False
            )
            if probe.returncode == 0:
                return candidate
    return None


def run_peer(python: str, cases: list[tuple[CurveArrays, float]], repeats: int) -> dict[str, Any]:
    request = {
        "repeats": repeats,
        "cases": [
            {
                "beta": c.beta.tolist(),
                "scale": c.scale.tolist(),
                "shape": c.shape.tolist(),
                "budget": b,
            }
            for c, b in cases
        ],
    }
    proc = subprocess.run(
        [python, str(HERE / "budget_peer_pymc.py")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    )
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


SCALES = (0.5, 1.0, 1.5, 2.0)
FIXED_END = datetime(2026, 12, 1, tzinfo=UTC)


def demo_history(company: Any) -> service.History:
    """The company's marketing rows as the endpoint reads them (minor units, daily)."""
    per: dict[str, list[tuple[date, float, float, float]]] = defaultdict(list)
    for row in company.rows["marketing"]:
        day = row["day"] if isinstance(row["day"], date) else date.fromisoformat(str(row["day"]))
        spend, revenue = float(row["spend"]), float(row["attributed_revenue"])
        per[row["channel"]].append((day, spend, revenue, float(row["conversions"])))
    channels = []
    for name in sorted(per):
        points = sorted(per[name])
        channels.append(
            planner.ChannelHistory(
                name,
                [p[1] for p in points],
                [p[2] for p in points],
                True,
                [p[0] for p in points],
                [p[3] for p in points],
            )
        )
    days = [p[0] for p in sorted(per[sorted(per)[0]])]
    return service.History(channels, 1, "minor", "USD", days[0], days[-1], len(channels))


class MemoryFitCache:
    """The endpoint's fit cache, in memory: each company's curves are fitted once and read for
    every budget, as the endpoint reads them from the database on a warm call."""

    def __init__(self) -> None:
        self.saved: dict[str, dict[str, Any]] = {}

    def payloads(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        return {k: self.saved[k] for k in keys if k in self.saved}

    def store(self, fresh: list[tuple[str, str, dict[str, Any]]]) -> None:
        self.saved.update((key, payload) for key, _, payload in fresh)


def diagnosis(
    seed: int,
    scale: float,
    ratio: float,
    now: float,
    posteriors: list[Any],
    ours: np.ndarray,
    current: np.ndarray,
    optimum_x: np.ndarray,
    truth: CurveArrays,
) -> str:
    """Per channel of a case under 95 % of the optimum or under the current split: the amounts,
    the trusted range, and the fitted curve (mean and 95 % band) against the true one."""
    lines = [f"seed {seed}, {scale:g}×: ours {ratio:.3f}, current {now:.3f} of the optimum"]
    for i, post in enumerate(posteriors):
        at = post.values(ours[i])[:, 0]
        true_at = float(truth.take(np.array([i])).value(np.array([ours[i]]))[0])
        lines.append(
            f"  {post.channel:13} current {current[i]:9,.0f} ours {ours[i]:9,.0f} "
            f"optimum {optimum_x[i]:9,.0f} trusted ≤ {post.trusted_max:9,.0f}"
            f"{' HELD (' + post.weak_reason[:40] + ')' if post.weak else ''} | at ours: true "
            f"{true_at:9,.0f} fitted {at.mean():9,.0f} [{np.percentile(at, 2.5):,.0f}, "
            f"{np.percentile(at, 97.5):,.0f}]"
        )
    return "\n".join(lines)


def oracle_curves(company: Any, history: service.History, fit_half_saturation: bool) -> CurveArrays:
    """Curves an oracle estimates from the company's own noisy rows, knowing what no estimator
    can: each channel's true family, slope, carry-over and the acquisition season (weekly and
    yearly) — so it fits only the level β (Poisson maximum likelihood of the conversions, priced
    at the channel's observed revenue per conversion) and, with ``fit_half_saturation``, the
    half-saturation K too (on a fine log grid from K/4 to 4K). How close its plan gets to the
    optimum is how close any estimator could get on this data with that much known."""
    season_truth = company.truth.acquisition_seasonality
    days = list(history.channels[0].days or [])
    weekday = np.array([d.weekday() for d in days])
    doy = np.array([d.timetuple().tm_yday for d in days], dtype=float)
    season = np.asarray(season_truth["weekly_monday_first"])[weekday] * (
        1
        + season_truth["yearly_amplitude"]
        * np.cos(2 * np.pi * (doy - season_truth["yearly_peak_day_of_year"]) / 365.25)
    )
    fitted = []
    for channel in history.channels:
        true = company.truth.curve(channel.channel)
        spend, counts = np.asarray(channel.spend), np.asarray(channel.counts or [])
        value = float(np.sum(channel.returns)) / max(float(counts.sum()), 1.0)
        scales = (
            true.half_saturation * np.geomspace(0.25, 4.0, 81)
            if fit_half_saturation
            else [true.half_saturation]
        )
        best: tuple[float, float, float] | None = None
        for k in scales:
            x = SimCurve(true.kind, 1.0, k, true.slope).shape(sim_adstock(spend, true.carryover))
            x = x * season
            level = float(counts.sum()) / max(float(x.sum()), 1e-300)
            mu = np.maximum(level * x, 1e-300)
            loglik = float((counts * np.log(mu)).sum() - mu.sum())
            if best is None or loglik > best[0]:
                best = (loglik, float(k), level)
        assert best is not None
        fitted.append(ResponseCurve(true.kind, best[2] * value, best[1], true.slope))
    return CurveArrays.of(fitted)


def truth_quality(
    seeds: int, diagnose: bool = False, first_seed: int = 0, oracle: bool = False
) -> None:
    print(
        f"quality: {seeds} demo companies (seeds {first_seed}–{first_seed + seeds - 1}, SimConfig "
        f"defaults, end {FIXED_END:%Y-%m-%d}) × budgets {', '.join(f'{s:g}' for s in SCALES)} "
        "× current daily spend; true return / true optimum (5 % minimum share); load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(f"{'seed':>4} " + " ".join(f"{f'{s:g}× ours/current':>20}" for s in SCALES))
    results: list[tuple[float, float, float]] = []
    oracles: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    started = time.perf_counter()
    for seed in range(first_seed, first_seed + seeds):
        company = generate(SimConfig(seed=seed, end=FIXED_END))
        history = demo_history(company)
        names = [c.channel for c in history.channels]
        truth = CurveArrays.of(
            [
                ResponseCurve(
                    company.truth.curve(n).kind,
                    company.truth.curve(n).beta
                    * company.truth.channels[n]["revenue_per_conversion"],
                    company.truth.curve(n).half_saturation,
                    company.truth.curve(n).slope,
                )
                for n in names
            ]
        )
        level = sum(statistics.fmean(c.spend) for c in history.channels)
        cache = MemoryFitCache()
        cells: list[str] = []
        lines: list[str] = []
        for scale in SCALES:
            budget = scale * level
            body = schemas.OptimizeRequest(total_budget=budget)
            result = service.plan_from_history(
                demo_history(company),
                body,
                cache=cache,  # type: ignore[arg-type]
            )
            ours = np.array([result.allocations[n] for n in names])
            current = np.array([result.comparison["current_split"].allocations[n] for n in names])
            lo, hi = np.full(len(names), 0.05 * budget), np.full(len(names), budget)
            best = maximise(truth, lo, hi, budget)
            optimum, optimum_x = best.value, best.x
            ratio = float(truth.value(ours).sum()) / optimum
            now = float(truth.value(current).sum()) / optimum
            results.append((scale, ratio, now))
            if oracle:
                for label, fit_k in (("oracle: β", False), ("oracle: β, K", True)):
                    known = oracle_curves(company, history, fit_k)
                    plug_in = maximise(known, lo, hi, budget).x
                    oracles[label].append((scale, float(truth.value(plug_in).sum()) / optimum, now))
            cells.append(f"{ratio:9.3f} / {now:8.3f}")
            if diagnose and (ratio < 0.95 or ratio < now - 1e-6):
                posteriors = service.fit_posteriors(history, cache)  # type: ignore[arg-type]
                lines.append(
                    diagnosis(seed, scale, ratio, now, posteriors, ours, current, optimum_x, truth)
                )
        print(f"{seed:4d} " + " ".join(f"{c:>20}" for c in cells), flush=True)
        for line in lines:
            print(line, flush=True)
    print(
        f"({time.perf_counter() - started:.0f} s; load average now "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())})"
    )
    summarise_quality("ours", results)
    for label, rows in oracles.items():
        summarise_quality(label, rows)


def summarise_quality(title: str, results: list[tuple[float, float, float]]) -> None:
    print(
        f"\n{title}\n{'budget':>7} {'min':>6} {'p10':>6} {'median':>6} {'max':>6} {'<0.95':>6} "
        f"{'<current':>8} {'current median':>14}"
    )
    groups: list[float | None] = [*SCALES, None]
    for group in groups:
        rows = [r for r in results if group is None or r[0] == group]
        ratios = np.array([r[1] for r in rows])
        below = sum(r[1] < r[2] - 1e-9 for r in rows)
        label = "all" if group is None else f"{group:g}×"
        print(
            f"{label:>7} {ratios.min():6.3f} {np.percentile(ratios, 10):6.3f} "
            f"{np.median(ratios):6.3f} {ratios.max():6.3f} "
            f"{int((ratios < 0.95).sum()):>3}/{len(rows):<3}{below:>5}/{len(rows):<3}"
            f"{np.median([r[2] for r in rows]):>14.3f}"
        )


def latency(repeats: int) -> None:
    company = generate(SimConfig())
    tmp = Path(tempfile.mkdtemp(prefix="aethercrown-budget-"))
    url = f"sqlite:///{tmp / 'bench.db'}"
    migrate.upgrade(url)
    settings = Settings(
        database_url=url,
        data_dir=tmp / "data",
        log_level="WARNING",
        redis_url=None,
        run_automation=False,
    )
    factory = make_session_factory(make_engine(url))
    with write_transaction(factory) as session:
        tenant, issued = create_tenant(
            session,
            TenantCreate(name="Bench", slug="bench-budget", tier="enterprise"),
            actor="bench",
        )
        tenant_id, key = tenant.id, issued.secret or ""
    marketing = [
        {k: (v.isoformat() if isinstance(v, date) else v) for k, v in row.items()}
        for row in company.rows["marketing"]
    ]
    with write_transaction(factory) as session:
        ingest_rows(session, tenant_id, "marketing", marketing)
    headers = {"Authorization": f"Bearer {key}"}
    body = {"total_budget": 200_000}
    cold, warm = [], []
    with TestClient(create_app(settings)) as client:
        for _ in range(repeats):
            with write_transaction(factory) as session:
                session.execute(delete(BudgetFitCache))
            started = time.perf_counter()
            response = client.post(URL, json=body, headers=headers)
            cold.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
            for _ in range(5):
                started = time.perf_counter()
                response = client.post(URL, json=body, headers=headers)
                warm.append(time.perf_counter() - started)
        answer = response.json()
    print(
        f"\nlatency: POST {URL} {body} on the default demo's marketing rows "
        f"({len(marketing)} rows, {len(answer['allocations'])} channels), SQLite, in-process "
        f"HTTP; ms median / min\n  cold (fits computed, cache emptied first): "
        f"{statistics.median(cold) * 1e3:.0f} / {min(cold) * 1e3:.0f} ({len(cold)} calls)\n"
        f"  warm (fits read from the cache): {statistics.median(warm) * 1e3:.0f} / "
        f"{min(warm) * 1e3:.0f} ({len(warm)} calls)"
    )
    print(f"  allocations: {answer['allocations']}")
    print(f"  confidence: {answer['confidence']}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--peer-python", default=None)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--seeds", type=int, default=0, help="quality on N demo companies")
    parser.add_argument("--first-seed", type=int, default=0, help="held out: --first-seed 20")
    parser.add_argument(
        "--oracle", action="store_true", help="also score oracles knowing the true curve family"
    )
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--latency-repeats", type=int, default=5)
    parser.add_argument(
        "--diagnose", action="store_true", help="per-channel detail of the cases that fall short"
    )
    args = parser.parse_args()
    if args.seeds:
        truth_quality(args.seeds, args.diagnose, args.first_seed, args.oracle)
        if not args.no_latency:
            latency(args.latency_repeats)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    python = peer_python(args.peer_python)
    print(f"peer: {'PyMC-Marketing BudgetOptimizer via ' + python if python else 'not installed'}")
    print(
        "times in ms as median / min over the same number of warm calls (50 up to 50 channels,"
        " 10 above; one untimed call first on every side); each peer case runs just before ours"
        f" on the same curves; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
        f"{'curves':8} {'n':>4} {'ours':>17} {'nodes':>5} {'gap':>8} | "
        f"{'SLSQP x10':>9} {'gap vs ours':>11} | {'PyMC-Marketing':>19} {'gap vs ours':>11}"
    )
    version = ""
    for concave in (False, True):
        for n in sizes:
            c, budget = curves(n, concave, seed=n)
            # Every side warm (one untimed call first), the same number of timed calls.
            repeats = 50 if n <= 50 else 10
            peer_cols = f"{'-':>19} {'-':>11}"
            if python:
                peer = run_peer(python, [(c, budget)], repeats=repeats)
                version = peer["version"]
                result = peer["results"][0]
                x = np.asarray(result["allocation"])
                peer_value = float(c.value(x).sum())
                flag = "" if result["converged"] else " (SLSQP failed)"
                times = f"{result['allocate_ms_median']:.1f} / {result['allocate_ms_min']:.1f}"
            lo, hi = np.zeros(n), np.full(n, budget)
            maximise(c, lo, hi, budget)  # warm caches
            median, fastest, ours = timed(
                lambda c=c, lo=lo, hi=hi, b=budget: maximise(c, lo, hi, b), repeats
            )
            if python:
                peer_gap = (ours.value - peer_value) / ours.value
                peer_cols = f"{times:>19} {peer_gap:11.2e}{flag}"
            slsqp_cols = f"{'-':>9} {'-':>11}"
            if n <= 50:  # 10 dense SLSQP solves over 500 variables take many minutes
                slsqp_multistart(c, budget, 10, seed=1)  # warm
                seconds, _, slsqp_x = timed(
                    lambda c=c, b=budget: slsqp_multistart(c, b, 10, seed=1), repeats
                )
                slsqp_gap = (ours.value - float(c.value(slsqp_x).sum())) / ours.value
                slsqp_cols = f"{seconds * 1e3:9.0f} {slsqp_gap:11.2e}"
            ours_times = f"{median * 1e3:.3f} / {fastest * 1e3:.3f}"
            print(
                f"{'concave' if concave else 'S-mixed':8} {n:4d} {ours_times:>17} "
                f"{ours.nodes:5d} {ours.gap:8.1e} | {slsqp_cols} | {peer_cols}",
                flush=True,
            )
    if python:
        print(
            f"PyMC-Marketing {version}: allocate_budget on a built optimiser (build and one "
            "warm-up call excluded), as many timed calls as ours"
        )


if __name__ == "__main__":
    sys.exit(main())
