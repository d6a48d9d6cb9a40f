"""Our engines against GrowthBook's gbstats on the same inputs, to 1e-6.

gbstats pins an old pandas, so it lives in its own virtualenv (AETHERCROWN_GBSTATS_VENV, default
.venv/gbstats, which `make test` creates) and runs in a subprocess.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from aethercrown.experiments.stats.analysis import MetricBatch, analyse
from aethercrown.experiments.stats.srm import srm_p_value
from tests.experiments.gbstats_cases import arm, gbstats_or_skip, run_gbstats


@pytest.fixture(autouse=True)
def _gbstats() -> None:
    gbstats_or_skip()


TOLERANCE = 1e-6


def _cases() -> list[dict[str, Any]]:
    rng = np.random.default_rng(20261125)
    cases = []
    combos = itertools.product(
        ["frequentist", "bayesian", "sequential"],
        [True, False],  # relative
        ["two-sided", "greater", "less"],
        [True, False],  # binomial
        [False, True],  # CUPED covariate
    )
    for engine, relative, alternative, binomial, covariate in combos:
        if engine == "sequential" and alternative != "two-sided":
            continue  # gbstats' confidence sequences are two-sided only
        for lift in (0.0, 0.08):
            cases.append(
                {
                    "engine": engine,
                    "relative": relative,
                    "alternative": alternative,
                    "alpha": float(rng.choice([0.05, 0.1, 0.01])),
                    "tuning": float(rng.choice([5000, 1000, 20000])),
                    "binomial": binomial,
                    "inverse": alternative == "less",
                    "control": arm(rng, binomial, 0.0, covariate),
                    "variant": arm(rng, binomial, lift, covariate),
                }
            )
    return cases


def _ours(case: dict[str, Any]) -> dict[str, Any]:
    sides = [case["control"], case["variant"]]
    covariate = "pre_sum" in sides[0]

    def col(key: str) -> np.ndarray:
        return np.array([[s[key] for s in sides]], dtype=float)

    batch = MetricBatch(
        n=col("n"),
        total=col("sum"),
        sum_squares=col("sum_squares"),
        binomial=np.array([case["binomial"]]),
        pre_total=col("pre_sum") if covariate else None,
        pre_sum_squares=col("pre_sum_squares") if covariate else None,
        post_pre_sum=col("post_pre_sum") if covariate else None,
    )
    engine = case["engine"]
    result = analyse(
        batch,
        engine,
        relative=case["relative"],
        # Bayesian "less" is expressed to gbstats as an inverse metric.
        alternative=case["alternative"],
        alpha=case["alpha"],
        sequential_tuning=case["tuning"],
    )
    out = {
        "effect": result.effect[0, 0],
        "stddev": result.stddev[0, 0],
        "ci": [result.ci_low[0, 0], result.ci_high[0, 0]],
    }
    if engine == "bayesian":
        assert result.chance_to_win is not None and result.risk is not None
        assert result.risk_control is not None
        out["chance_to_win"] = result.chance_to_win[0, 0]
        out["risk"] = [result.risk_control[0, 0], result.risk[0, 0]]
    else:
        assert result.p_value is not None
        out["p_value"] = result.p_value[0, 0]
    return out


def _close(ours: float, theirs: float | None) -> bool:
    if theirs is None:
        return not np.isfinite(ours)
    return abs(ours - theirs) <= TOLERANCE


def test_every_engine_agrees_with_gbstats_to_1e6() -> None:
    cases = _cases()
    theirs = run_gbstats({"mode": "units", "cases": cases})
    compared = 0
    for case, ref in zip(cases, theirs, strict=True):
        assert ref["error"] is None, (case, ref)
        ours = _ours(case)
        label = (case["engine"], case["relative"], case["alternative"], case["binomial"])
        for key in ("effect", "stddev", "p_value", "chance_to_win"):
            if key in ref:
                assert _close(ours[key], ref[key]), (label, key, ours[key], ref[key])
                compared += 1
        if "risk" in ref:
            for mine, other in zip(ours["risk"], ref["risk"], strict=True):
                assert _close(mine, other), (label, "risk", ours["risk"], ref["risk"])
        if case["engine"] == "frequentist" and case["alternative"] == "less":
            # gbstats reports (-inf, effect - width] for this one; the upper bound of a
            # one-sided "less" interval is effect + width, which is what we report.
            width = ref["effect"] - ref["ci"][1]
            assert ours["ci"][0] == -np.inf
            assert _close(ours["ci"][1], ref["effect"] + width), (label, ours["ci"], ref["ci"])
        else:
            for mine, other in zip(ours["ci"], ref["ci"], strict=True):
                assert _close(mine, other), (label, "ci", ours["ci"], ref["ci"])
    assert compared > 150


def test_srm_agrees_with_gbstats() -> None:
    import json
    import subprocess

    from tests.experiments.gbstats_cases import GBSTATS_PYTHON

    splits = [
        ([5000, 5100], [0.5, 0.5]),
        ([1000, 2000, 3100], [0.2, 0.3, 0.5]),
        ([10, 0], [0.5, 0.5]),
    ]
    script = (
        "import json,sys\nfrom gbstats.utils import check_srm\n"
        "print(json.dumps([float(check_srm(u, w)) for u, w in json.load(sys.stdin)]))"
    )
    done = subprocess.run(
        [str(GBSTATS_PYTHON), "-c", script],
        input=json.dumps(splits),
        capture_output=True,
        text=True,
        check=True,
    )
    for (users, weights), reference in zip(splits, json.loads(done.stdout), strict=True):
        assert abs(float(srm_p_value(users, weights)[0]) - reference) <= 1e-9
