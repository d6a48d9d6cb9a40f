"""Our experiment statistics against GrowthBook's gbstats, like with like, in the same run.

1,000 experiments × 2 variants × 3 metrics (3,000 comparisons) per engine, timed three ways on
each side, every way over the same ``--repeats`` passes (the median pass is reported, with the
fastest), inputs built before the clock on both sides (our arrays and request bodies; gbstats'
statistic and config objects, its pipeline payloads):

  call for call  one comparison per call: our ``analyse`` on a one-row batch, and the HTTP
                 endpoint's path (``service.analyze`` on a parsed request body, the answer
                 model built), against gbstats' test objects (TwoSidedTTest, EffectBayesianABTest,
                 SequentialTwoSidedTTest: made and computed per comparison)
  batched        one ``analyse`` call over all 3,000 rows, against the same 3,000 gbstats test
                 objects (it has no batched form), and against gbstats' full pipeline
                 (process_experiment_results, one call per experiment, which builds pandas frames)

It also prints the largest absolute difference between the batched numbers and the pipeline's.
gbstats runs in its own virtualenv (``make .venv/gbstats/.installed-stamp``).

    .venv/bin/python benchmarks/experiments.py [--experiments 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.experiments.gbstats_cases import arm, gbstats_available, run_gbstats

from aethercrown.experiments import schemas, service
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


def one_row_batches(batch: MetricBatch) -> list[MetricBatch]:
    return [
        MetricBatch(
            n=batch.n[i : i + 1],
            total=batch.total[i : i + 1],
            sum_squares=batch.sum_squares[i : i + 1],
            binomial=batch.binomial[i : i + 1],
            weights=batch.weights[i : i + 1] if batch.weights is not None else None,
        )
        for i in range(batch.n.shape[0])
    ]


def request_bodies(experiments: list[dict[str, Any]], engine: str) -> list[schemas.AnalyzeIn]:
    """What the endpoint receives for each comparison, parsed as FastAPI parses it."""
    bodies = []
    for exp in experiments:
        for metric in exp["metrics"]:
            bodies.append(
                schemas.AnalyzeIn.model_validate(
                    {
                        "engine": engine,
                        "metric_type": "binomial" if metric["binomial"] else "mean",
                        "alpha": 0.05,
                        "sequential_tuning": 5000,
                        "variants": [
                            {
                                "name": f"v{v}",
                                "n": side["n"],
                                "sum": side["sum"],
                                "sum_squares": None if metric["binomial"] else side["sum_squares"],
                            }
                            for v, side in enumerate(metric["variants"])
                        ],
                    }
                )
            )
    return bodies


def unit_cases(experiments: list[dict[str, Any]], engine: str) -> list[dict[str, Any]]:
    """The same comparisons for gbstats' test objects."""
    return [
        {
            "engine": engine,
            "relative": True,
            "alternative": "two-sided",
            "alpha": 0.05,
            "tuning": 5000,
            "binomial": metric["binomial"],
            "control": metric["variants"][0],
            "variant": metric["variants"][1],
        }
        for exp in experiments
        for metric in exp["metrics"]
    ]


def passes(work: Callable[[], object], repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` passes, after one untimed pass (imports, caches)."""
    work()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - started)
    return seconds


def batched_numbers(batch: MetricBatch, engine: str) -> dict[str, np.ndarray]:
    result = analyse(batch, engine, alpha=0.05, sequential_tuning=5000)  # type: ignore[arg-type]
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
    return numbers


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
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    experiments = make_experiments(args.experiments)
    batch = to_batch(experiments)
    rows = one_row_batches(batch)
    comparisons = batch.n.shape[0]
    repeats = args.repeats
    print(
        f"{args.experiments} experiments × 2 variants × {len(METRICS)} metrics"
        f" = {comparisons} comparisons; every figure the median of {repeats} passes (fastest in"
        f" brackets), inputs built before the clock on both sides; load average"
        f" {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    have_gbstats = gbstats_available()
    if not have_gbstats:
        print("gbstats virtualenv not found (AETHERCROWN_GBSTATS_VENV): timing ours only")

    def show(label: str, seconds: list[float], per: int, reference: float | None = None) -> float:
        median = statistics.median(seconds)
        each = median / per * 1e6
        ratio = "" if reference is None else f"  {reference / median:8.2f}× gbstats' speed"
        print(
            f"  {label:<52}{median * 1e3:>10.1f} ms ({min(seconds) * 1e3:.1f})"
            f"{each:>10.1f} µs each{ratio}"
        )
        return median

    for engine in ("frequentist", "bayesian", "sequential"):
        print(f"\n{engine}")
        bodies = request_bodies(experiments, engine)
        theirs_units: float | None = None
        if have_gbstats:
            timed = run_gbstats(
                {"mode": "time-units", "cases": unit_cases(experiments, engine), "repeats": repeats}
            )
            theirs_units = show(
                "gbstats test objects, one per comparison", timed["seconds"], comparisons
            )
        show(
            "ours: analyse() on a one-row batch, one per comparison",
            passes(
                lambda engine=engine: [  # type: ignore[misc]
                    analyse(r, engine, alpha=0.05, sequential_tuning=5000) for r in rows
                ],
                repeats,
            ),
            comparisons,
            theirs_units,
        )
        show(
            "ours: the endpoint's service.analyze, one per comparison",
            passes(lambda bodies=bodies: [service.analyze(b) for b in bodies], repeats),
            comparisons,
            theirs_units,
        )
        show(
            f"ours: analyse() batched, {comparisons} rows in one call",
            passes(
                lambda engine=engine: analyse(batch, engine, alpha=0.05, sequential_tuning=5000),
                repeats,
            ),
            comparisons,
            theirs_units,
        )
        if not have_gbstats:
            continue
        reference = run_gbstats(
            {
                "mode": "pipeline",
                "cases": experiments,
                "engine": engine,
                "alpha": 0.05,
                "tuning": 5000,
                "repeats": repeats,
            }
        )
        show(
            f"gbstats pipeline, {args.experiments} process_experiment_results calls",
            reference["seconds"],
            comparisons,
        )
        mine = batched_numbers(batch, engine)
        other = theirs_numbers(reference["results"], engine)
        diff = max(float(np.nanmax(np.abs(mine[k] - other[k]))) for k in other)
        print(f"  largest |difference| of the numbers, batched vs pipeline: {diff:.2e}")


if __name__ == "__main__":
    main()
