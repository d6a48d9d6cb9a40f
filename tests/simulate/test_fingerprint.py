"""The generator's output pinned bit for bit: same seed and same end, same company.

The digest was computed before ``generate`` was split into one function per part of the company
(issue 16): a refactor, or a speed-up of any part, that changes one row, one truth value or one
draw of any stream fails here. A deliberate change of the company updates the pinned digest and
says why (with ``GENERATOR_VERSION`` in ``simulate/service.py``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime

import numpy as np

from aethercrown.simulate import SimConfig, generate
from aethercrown.simulate.generator import SimulatedCompany

# A small company whose window ends mid-afternoon (a partial last day), with trials, annual
# plans, plan changes, churn and usage in it.
CONFIG = SimConfig(
    customers=150,
    months=14,
    seed=2026,
    end=datetime(2026, 3, 15, 13, 45, tzinfo=UTC),
    experiment_daily_visitors=40,
)
PINNED = "cc3cdc451a3db17001eea0d9492ba79c88b4cf6eb347975dcb931c30627262cb"


def company_fingerprint(company: SimulatedCompany) -> str:
    digest = hashlib.sha256()
    for kind, table in company.rows.items():
        digest.update(kind.encode())
        digest.update(table.fingerprint().encode())
    truth = company.truth
    for item in dataclasses.fields(truth):
        value = getattr(truth, item.name)
        digest.update(item.name.encode())
        if isinstance(value, np.ndarray):
            digest.update(str(value.dtype).encode())
            digest.update(np.ascontiguousarray(value).tobytes())
        elif (
            isinstance(value, dict)
            and value
            and all(isinstance(v, np.ndarray) for v in value.values())
        ):
            for name, array in value.items():
                digest.update(name.encode())
                digest.update(np.ascontiguousarray(array).tobytes())
        else:
            digest.update(repr(value).encode())
    return digest.hexdigest()


def test_the_same_seed_and_end_give_the_pinned_company() -> None:
    assert company_fingerprint(generate(CONFIG)) == PINNED
