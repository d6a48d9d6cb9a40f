"""The schemathesis part: ``benchmarks/reliability_fuzz.py`` (its own branch adds it) run as a
subprocess on the same backend, its exit code the verdict and its last lines the figure."""

from __future__ import annotations

import math
import subprocess
import sys

from benchmarks.reliability.common import ROOT, Database, Mode, Row

SCRIPT = ROOT / "benchmarks" / "reliability_fuzz.py"


def run(db: Database, mode: Mode, postgres_url: str | None) -> list[Row]:
    part = "5 schema fuzz"
    if not SCRIPT.exists():
        return [
            Row(
                part,
                db.backend,
                f"{SCRIPT.relative_to(ROOT)}: not present",
                0,
                "not present",
                skipped=True,
            )
        ]
    args = [sys.executable, str(SCRIPT), "--seed", str(mode.seed)]
    if mode.quick:
        # The generated cases only, with the operator key (which reaches every operation):
        # the coverage phase's ~8,000 boundary cases per key take minutes, so they are run by
        # hand (docs/reliability.md), not within CI's budget.
        args += ["--max-examples", "2", "--phases", "examples,fuzzing", "--keys", "operator"]
    if db.backend == "postgresql" and postgres_url:
        args += ["--database-url", postgres_url]
    # No budget (full mode): no limit; math.inf is not a timeout subprocess accepts.
    remaining = mode.remaining()
    timeout = max(30.0, remaining) if math.isfinite(remaining) else None
    try:
        done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [
            Row(part, db.backend, " ".join(args[1:]), 1, f"did not finish within {remaining:.0f} s")
        ]
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    figure = "; ".join(lines[-4:]) or (done.stderr.strip().splitlines() or ["no output"])[-1]
    return [
        Row(
            part,
            db.backend,
            " ".join(a for a in args[1:] if "://" not in a),
            0 if done.returncode == 0 else 1,
            f"exit {done.returncode}: {figure}",
        )
    ]
