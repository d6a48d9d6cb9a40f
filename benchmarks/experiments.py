"""Analyse 1,000 experiments × 2 variants × 3 metrics with each engine, and the same inputs
through gbstats' full pipeline (process_experiment_results) in its own virtualenv, in the same
run. Prints both times, the speed ratio and the largest absolute difference of the numbers.

    .venv/bin/python benchmarks/experiments.py [--experiments 1000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.experiments.gbstats_cases import arm, gbstats_available, run_gbstats

from aethercrown.experiments.stats.analysis import MetricBatch, analyse

METRICS = (True, False, False)  # one binomial conversion, two mean metrics (revenue, count)


def make_experiments(count: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(7)
    experiments = []
    for _ in range(count):
        metrics = []
        for binomial in METRICS:
            control = arm(rng, binomial, 0.0, False)
            variant = arm(rng, binomial, float(rng.choice([0.0, 0.05])), False)
            # Both arms of an experiment share the user counts of its first metric.
            metrics.append({"binomial": binomial, "variants": [control, variant]})
        n = [metrics[0]["variants"][v]["n"] for v in range(2)]
        for metric in metrics:
            for v in range(2):
                metric["variants"][v]["n"] = n[v]
        experiments.append({"metrics": metrics})
    # Resimulated sums must respect the shared n: rescale so that means stay plausible.
    for exp in experiments:
        for metric in exp["metrics"]:
            for side in metric["variants"]:
                if metric["binomial"]:
                    side["sum"] = min(side["sum"], side["n"] - 1)
                    side["sum_squares"] = side["sum"]
                else:
                    side["sum_squares"] = max(
                        side["sum_squares"], side["sum"] ** 2 / side["n"] * 1.01
                    )
    return experiments


def to_batch(experiments: list[dict[str, Any]]) -> MetricBatch:
    rows = [m for exp in experiments for m in exp["metrics"]]

    def col(key: str) -> np.ndarray:
        return np.array([[v[key] for v in m["variants"]] for m in rows], dtype=float)

    return MetricBatch(
        n=col("n"),
        total=col("sum"),
        sum_squares=col("sum_squares"),
        binomial=np.array([m["binomial"] for m in rows]),
        weights=np.full((len(rows), 2), 0.5),
    )


def ours(batch: MetricBatch, engine: str, repeats: int = 5) -> tuple[float, dict[str, np.ndarray]]:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = analyse(batch, engine, alpha=0.05, sequential_tuning=5000)  # type: ignore[arg-type]
        best = min(best, time.perf_counter() - start)
    numbers = {
        "effect": result.effect[:, 0],
        "stddev": result.stddev[:, 0],
        "ci_low": result.ci_low[:, 0],
        "ci_high": result.ci_high[:, 0],
        "srm": result.srm_p_value,
    }
    if engine == "bayesian":
        assert result.chance_to_win is not None and result.risk is not None
        assert result.risk_control is not None
        numbers["chance_to_win"] = result.chance_to_win[:, 0]
        numbers["risk_control"] = result.risk_control[:, 0]
        numbers["risk"] = result.risk[:, 0]
    else:
        assert result.p_value is not None
        numbers["p_value"] = result.p_value[:, 0]
    return best, numbers


def theirs_numbers(results: list[dict[str, Any]], engine: str) -> dict[str, np.ndarray]:
    numbers = {
        "effect": np.array([r["effect"] for r in results]),
        "stddev": np.array([r["stddev"] for r in results]),
        "ci_low": np.array([r["ci"][0] for r in results]),
        "ci_high": np.array([r["ci"][1] for r in results]),
        "srm": np.array([r["srm"] for r in results]),
    }
    if engine == "bayesian":
        numbers["chance_to_win"] = np.array([r["chance_to_win"] for r in results])
        numbers["risk_control"] = np.array([r["risk"][0] for r in results])
        numbers["risk"] = np.array([r["risk"][1] for r in results])
    else:
        numbers["p_value"] = np.array([r["p_value"] for r in results])
    return numbers


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--experiments", type=int, default=1000)
    args = parser.parse_args()
    experiments = make_experiments(args.experiments)
    batch = to_batch(experiments)
    comparisons = batch.n.shape[0]
    print(
        f"{args.experiments} experiments × 2 variants × {len(METRICS)} metrics"
        f" = {comparisons} comparisons"
    )
    have_gbstats = gbstats_available()
    if not have_gbstats:
        print("gbstats virtualenv not found (AETHERCROWN_GBSTATS_VENV): timing ours only")
    print(f"{'engine':<12}{'ours (ms)':>12}{'gbstats (ms)':>15}{'speed-up':>11}{'max |diff|':>13}")
    for engine in ("frequentist", "bayesian", "sequential"):
        seconds, mine = ours(batch, engine)
        if not have_gbstats:
            print(f"{engine:<12}{seconds * 1000:>12.2f}")
            continue
        reference = run_gbstats(
            {
                "mode": "pipeline",
                "cases": experiments,
                "engine": engine,
                "alpha": 0.05,
                "tuning": 5000,
            }
        )
        other = theirs_numbers(reference["results"], engine)
        diff = max(float(np.nanmax(np.abs(mine[k] - other[k]))) for k in other)
        ratio = reference["seconds"] / seconds
        print(
            f"{engine:<12}{seconds * 1000:>12.2f}{reference['seconds'] * 1000:>15.0f}"
            f"{ratio:>10.0f}×{diff:>13.2e}"
        )


if __name__ == "__main__":
    main()
