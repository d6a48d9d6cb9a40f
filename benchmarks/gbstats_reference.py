"""Runs GrowthBook's gbstats on cases read from stdin and prints its numbers as JSON.

Executed with the interpreter of a separate virtualenv that has gbstats (it pins an old pandas),
never imported by AetherCrown. Input: {"mode": "units" | "time-units" | "pipeline", "cases": [...]}.

- units: each case {engine, relative, alternative, alpha, tuning, binomial, inverse,
  control: {n, sum, sum_squares[, pre_sum, pre_sum_squares, post_pre_sum]}, variant: {...}}
  → {effect, stddev, ci, p_value | chance_to_win + risk, error}.
- pipeline: each case one experiment {metrics: [{binomial, variants: [{n, sum, sum_squares}]}]};
  all go through gbstats.process_experiment_results for the given engine ("repeats" passes,
  payloads built before the clock); prints the seconds of each pass and every variant's numbers
  in order.
- time-units: the units' cases with "repeats"; prints the seconds of each pass over all cases
  (statistics and configs built before the clock, the test objects made and computed in it).
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any


def _stat(side: dict[str, Any], binomial: bool) -> Any:
    from gbstats.models.statistics import (
        ProportionStatistic,
        RegressionAdjustedStatistic,
        SampleMeanStatistic,
    )

    post = (
        ProportionStatistic(n=side["n"], sum=side["sum"])
        if binomial
        else SampleMeanStatistic(n=side["n"], sum=side["sum"], sum_squares=side["sum_squares"])
    )
    if "pre_sum" not in side:
        return post
    pre = SampleMeanStatistic(n=side["n"], sum=side["pre_sum"], sum_squares=side["pre_sum_squares"])
    return RegressionAdjustedStatistic(
        n=side["n"],
        post_statistic=post,
        pre_statistic=pre,
        post_pre_sum_of_products=side["post_pre_sum"],
        theta=0,
    )


def _finite(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def run_unit(case: dict[str, Any]) -> dict[str, Any]:
    test = _test(case)
    res = test.compute_result()
    out: dict[str, Any] = {
        "effect": res.expected,
        "stddev": res.uplift.stddev,
        "ci": [_finite(res.ci[0]), _finite(res.ci[1])],
        "error": res.error_message,
    }
    if case["engine"] == "bayesian":
        out["chance_to_win"] = res.chance_to_win
        out["risk"] = list(res.risk)
    else:
        out["p_value"] = res.p_value
    return out


def _test_maker(case: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    """(test class, control statistic, variant statistic, config) of one unit case."""
    from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
    from gbstats.frequentist.tests import (
        FrequentistConfig,
        OneSidedTreatmentGreaterTTest,
        OneSidedTreatmentLesserTTest,
        SequentialConfig,
        SequentialTwoSidedTTest,
        TwoSidedTTest,
    )

    a = _stat(case["control"], case["binomial"])
    b = _stat(case["variant"], case["binomial"])
    diff = "relative" if case["relative"] else "absolute"
    engine = case["engine"]
    engine = case["engine"]
    if engine == "bayesian":
        config: Any = EffectBayesianConfig(
            difference_type=diff, alpha=case["alpha"], inverse=case.get("inverse", False)
        )
        return EffectBayesianABTest, a, b, config
    if engine == "sequential":
        config = SequentialConfig(
            difference_type=diff,
            alpha=case["alpha"],
            sequential_tuning_parameter=case["tuning"],
        )
        return SequentialTwoSidedTTest, a, b, config
    cls = {
        "two-sided": TwoSidedTTest,
        "greater": OneSidedTreatmentGreaterTTest,
        "less": OneSidedTreatmentLesserTTest,
    }[case["alternative"]]
    return cls, a, b, FrequentistConfig(difference_type=diff, alpha=case["alpha"])


def _test(case: dict[str, Any]) -> Any:
    cls, a, b, config = _test_maker(case)
    return cls(a, b, config)


def time_units(cases: list[dict[str, Any]], repeats: int) -> dict[str, Any]:
    """Seconds of each of ``repeats`` passes over ``cases``, one test object per case and pass
    (made and computed inside the clock, as a caller does); the statistics and configs are
    built before it, as the benchmark builds our arrays before its clock."""
    made = [_test_maker(c) for c in cases]
    _test(cases[0]).compute_result()  # imports and first-call set-up outside the clock
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for cls, a, b, config in made:
            cls(a, b, config).compute_result()
        seconds.append(time.perf_counter() - start)
    return {"seconds": seconds}


def run_pipeline(
    cases: list[dict[str, Any]], engine: str, alpha: float, tuning: float, repeats: int = 1
) -> dict[str, Any]:
    from gbstats.gbstats import process_experiment_results

    payloads = []
    for exp in cases:
        metrics = {}
        rows = []
        n_var = len(exp["metrics"][0]["variants"])
        for v in range(n_var):
            row: dict[str, Any] = {"dimension": "All", "variation": str(v)}
            for m, metric in enumerate(exp["metrics"]):
                d = metric["variants"][v]
                row["users"] = d["n"]
                row["count"] = d["n"]
                row[f"m{m}_users"] = d["n"]
                row[f"m{m}_count"] = d["n"]
                row[f"m{m}_main_sum"] = d["sum"]
                row[f"m{m}_main_sum_squares"] = d["sum_squares"]
            rows.append(row)
        for m, metric in enumerate(exp["metrics"]):
            metrics[f"m{m}"] = {
                "id": f"m{m}",
                "name": f"m{m}",
                "statistic_type": "mean",
                "main_metric_type": "binomial" if metric["binomial"] else "count",
            }
        payloads.append(
            {
                "metrics": metrics,
                "analyses": [
                    {
                        "var_names": [str(v) for v in range(n_var)],
                        "var_ids": [str(v) for v in range(n_var)],
                        "weights": [1 / n_var] * n_var,
                        "stats_engine": "bayesian" if engine == "bayesian" else "frequentist",
                        "sequential_testing_enabled": engine == "sequential",
                        "sequential_tuning_parameter": tuning,
                        "alpha": alpha,
                        "difference_type": "relative",
                    }
                ],
                "query_results": [{"rows": rows, "metrics": list(metrics)}],
            }
        )
    process_experiment_results(payloads[0])  # imports and first-call set-up outside the clock
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        results = [process_experiment_results(p) for p in payloads]
        seconds.append(time.perf_counter() - start)
    numbers = []
    for exp_result in results:
        for metric_result in exp_result:
            variations = metric_result["analyses"][0]["dimensions"][0]["variations"]
            srm = metric_result["analyses"][0]["dimensions"][0]["srm"]
            for var in variations[1:]:
                numbers.append(
                    {
                        "effect": var["expected"],
                        "ci": [_finite(var["ci"][0]), _finite(var["ci"][1])],
                        "stddev": var["uplift"]["stddev"],
                        "p_value": var.get("pValue"),
                        "chance_to_win": var.get("chanceToWin"),
                        "risk": var.get("risk"),
                        "srm": srm,
                        "error": var.get("errorMessage"),
                    }
                )
    return {"seconds": seconds, "results": numbers}


def main() -> None:
    request = json.load(sys.stdin)
    if request["mode"] == "units":
        out: Any = [run_unit(c) for c in request["cases"]]
    elif request["mode"] == "time-units":
        out = time_units(request["cases"], int(request["repeats"]))
    else:
        out = run_pipeline(
            request["cases"],
            request["engine"],
            request["alpha"],
            request["tuning"],
            int(request.get("repeats", 1)),
        )
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
