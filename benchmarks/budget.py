"""Budget optimiser benchmark: time to split a budget over 5, 50 and 500 channels on fixed curves,
against a peer optimiser on the same curves in the same run.

    .venv/bin/python benchmarks/budget.py [--peer-python /work/pymc-venv/bin/python]

Curves: Hill β·x^k/(x^k+K^k) with β ~ U(50, 500), K ~ U(10, 100) and k ~ U(0.6, 3.0) (about
three in four S-shaped), budget 40 per channel, each channel in [0, budget]; a second set is
concave only (k ~ U(0.5, 1.0)). Ours: ``aethercrown.budget.optimizer.maximise`` (certified to a
relative gap ≤ 1e-9). Peers: PyMC-Marketing's BudgetOptimizer (SLSQP, one start) run under the
interpreter given by --peer-python (or $BUDGET_PEER_PYTHON, or /work/pymc-venv/bin/python) when
it has pymc-marketing; and always SciPy SLSQP with 10 starts as a plain stand-in. The response
gap is (ours − peer) / ours, each allocation's return evaluated on the same curves.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize

from aethercrown.budget.optimizer import CurveArrays, maximise

SIZES = (5, 50, 500)
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
    candidates = [np.full(n, budget / n)] + [
        rng.dirichlet(np.ones(n)) * budget for _ in range(starts - 1)
    ]
    for x0 in candidates:
        result = minimize(
            lambda x: -float(c.value(x).sum()),
            x0,
            jac=lambda x: -c.slope(np.maximum(x, 1e-12)),
            bounds=[(0.0, budget)] * n,
            constraints=[{"type": "eq", "fun": lambda x: x.sum() - budget}],
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--peer-python", default=None)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    python = peer_python(args.peer_python)
    print(f"peer: {'PyMC-Marketing BudgetOptimizer via ' + python if python else 'not installed'}")
    print(
        "times in ms as median / min; each peer case runs just before ours on the same curves\n"
        f"{'curves':8} {'n':>4} {'ours':>17} {'nodes':>5} {'gap':>8} | "
        f"{'SLSQP x10':>9} {'gap vs ours':>11} | {'PyMC-Marketing':>19} {'gap vs ours':>11}"
    )
    version = ""
    for concave in (False, True):
        for n in sizes:
            c, budget = curves(n, concave, seed=n)
            peer_cols = f"{'-':>19} {'-':>11}"
            if python:
                peer = run_peer(python, [(c, budget)], repeats=3)
                version = peer["version"]
                result = peer["results"][0]
                x = np.asarray(result["allocation"])
                peer_value = float(c.value(x).sum())
                flag = "" if result["converged"] else " (SLSQP failed)"
                times = f"{result['allocate_ms_median']:.1f} / {result['allocate_ms_min']:.1f}"
            lo, hi = np.zeros(n), np.full(n, budget)
            repeats = 50 if n <= 50 else 10
            maximise(c, lo, hi, budget)  # warm caches
            median, fastest, ours = timed(
                lambda c=c, lo=lo, hi=hi, b=budget: maximise(c, lo, hi, b), repeats
            )
            if python:
                peer_gap = (ours.value - peer_value) / ours.value
                peer_cols = f"{times:>19} {peer_gap:11.2e}{flag}"
            slsqp_cols = f"{'-':>9} {'-':>11}"
            if n <= 50:  # 10 dense SLSQP solves over 500 variables take many minutes
                seconds, _, slsqp_x = timed(
                    lambda c=c, b=budget: slsqp_multistart(c, b, 10, seed=1), 1
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
            f"PyMC-Marketing {version}: allocate_budget on a built optimiser (build excluded), "
            "3 calls"
        )


if __name__ == "__main__":
    sys.exit(main())
