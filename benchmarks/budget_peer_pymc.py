"""Peer run for benchmarks/budget.py: PyMC-Marketing's BudgetOptimizer on given Hill curves.

Runs under a separate interpreter with pymc-marketing installed (1.x needs Python ≥ 3.12), e.g.
``python3.12 -m venv /work/pymc-venv && /work/pymc-venv/bin/pip install pymc-marketing``.
Reads {"cases": [{"beta": [...], "scale": [...], "shape": [...], "budget": B}], "repeats": R}
on stdin; prints per case the allocation and the build and allocate times (seconds).
The curves enter as a one-draw posterior of a PyMC model whose only media term is
beta·x^k/(x^k + K^k) per channel, so the optimiser sees exactly the benchmark's curves.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import warnings
from typing import Any

import numpy as np


def run_case(case: dict[str, Any], repeats: int) -> dict[str, Any]:
    import pymc as pm
    import pymc.dims as pmd
    import xarray as xr
    from pymc_marketing.mmm.budget_optimizer import BudgetOptimizer

    beta = np.asarray(case["beta"], dtype=float)
    scale = np.asarray(case["scale"], dtype=float)
    shape = np.asarray(case["shape"], dtype=float)
    n = len(beta)
    channels = [f"c{i}" for i in range(n)]
    started = time.perf_counter()
    with pm.Model(coords={"channel": channels, "date": [0]}) as model:
        spend = pmd.Data("channel_data", np.ones((1, n)), dims=("date", "channel"))
        b = pmd.Normal("beta", dims="channel")
        k_half = pmd.Normal("K", dims="channel")
        k = pmd.Normal("k", dims="channel")
        contribution = pmd.Deterministic(
            "channel_contribution", b * spend**k / (spend**k + k_half**k)
        )
        pmd.Deterministic("total_media_contribution_original_scale", contribution.sum())

    def draw(values: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
        return ("chain", "draw", "channel"), values[None, None]

    posterior = xr.Dataset(
        {"beta": draw(beta), "K": draw(scale), "k": draw(shape)},
        coords={"chain": [0], "draw": [0], "channel": channels},
    )
    optimizer = BudgetOptimizer(
        model=model, idata=xr.DataTree.from_dict({"posterior": posterior}), num_periods=1
    )
    build = time.perf_counter() - started
    # Warm: the first call compiles the model's functions (seconds); ours is timed warm too.
    optimizer.allocate_budget(total_budget=float(case["budget"]), return_if_fail=True)
    times = []
    allocation: np.ndarray | None = None
    converged = False
    for _ in range(repeats):
        started = time.perf_counter()
        # return_if_fail: SLSQP sometimes stops with "Inequality constraints incompatible";
        # its last point is still reported (and whether it converged).
        result = optimizer.allocate_budget(total_budget=float(case["budget"]), return_if_fail=True)
        converged = bool(result.scipy_result.success)
        times.append(time.perf_counter() - started)
        allocation = np.asarray(result.budgets.values, dtype=float).ravel()
    assert allocation is not None
    return {
        "build_seconds": build,
        "allocate_ms_median": statistics.median(times) * 1e3,
        "allocate_ms_min": min(times) * 1e3,
        "allocation": allocation.tolist(),
        "converged": converged,
    }


def main() -> None:
    warnings.filterwarnings("ignore")
    import pymc_marketing

    request = json.load(sys.stdin)
    out = {
        "version": pymc_marketing.__version__,
        "results": [run_case(c, int(request.get("repeats", 3))) for c in request["cases"]],
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
