"""Shared by the gbstats agreement test and the benchmark: random but realistic sufficient
statistics, and running gbstats on them in its own virtualenv."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
# `make test` creates it from tests/experiments/gbstats.lock.
GBSTATS_VENV = Path(os.environ.get("AETHERCROWN_GBSTATS_VENV", ROOT / ".venv" / "gbstats"))
GBSTATS_PYTHON = GBSTATS_VENV / "bin" / "python"
RUNNER = ROOT / "benchmarks" / "gbstats_reference.py"


def gbstats_available() -> bool:
    if not GBSTATS_PYTHON.exists():
        return False
    probe = subprocess.run(
        [str(GBSTATS_PYTHON), "-c", "import gbstats"], capture_output=True, check=False
    )
    return probe.returncode == 0


def gbstats_or_skip() -> None:
    """The agreement test skips only outside `make test` (no gbstats virtualenv), never in CI."""
    if gbstats_available():
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI needs gbstats in {GBSTATS_VENV} (make test creates it)")
    pytest.skip(f"no gbstats virtualenv at {GBSTATS_VENV} (make test creates it)")


def run_gbstats(request: dict[str, Any]) -> Any:
    done = subprocess.run(
        [str(GBSTATS_PYTHON), str(RUNNER)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def arm(rng: np.random.Generator, binomial: bool, lift: float, covariate: bool) -> dict[str, Any]:
    """Sufficient statistics of one simulated arm."""
    n = int(rng.integers(200, 3000))
    pre = rng.gamma(2.0, 10.0, n)
    if binomial:
        p = 0.1 * (1 + lift)
        post = (rng.random(n) < np.clip(p + 0.002 * (pre - 20), 0.001, 0.999)).astype(float)
    else:
        post = 0.8 * pre + rng.gamma(1.5, 8.0 * (1 + lift), n)
    side: dict[str, Any] = {
        "n": n,
        "sum": float(post.sum()),
        "sum_squares": float(np.square(post).sum()),
    }
    if covariate:
        side["pre_sum"] = float(pre.sum())
        side["pre_sum_squares"] = float(np.square(pre).sum())
        side["post_pre_sum"] = float((post * pre).sum())
    return side
