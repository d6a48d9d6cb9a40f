"""Churn models on any table (``aethercrown churn evaluate``): column typing, a stratified split,
training and honest metrics (pure: rows in, numbers out)."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from aethercrown.churn import model as M

POSITIVE = {"1", "yes", "y", "true", "t", "churn", "churned"}
NEGATIVE = {"0", "no", "n", "false", "f", "retained", "stayed"}
# A text column with this share of distinct values is an identifier, not a category.
ID_LIKE_SHARE = 0.5


@dataclass
class Table:
    columns: list[str]
    x: np.ndarray
    y: np.ndarray
    categorical: list[str]


class TableError(ValueError):
    pass


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_target(values: Sequence[str], column: str) -> np.ndarray:
    out = np.zeros(len(values), dtype=np.int64)
    for i, raw in enumerate(values):
        text = raw.strip().lower()
        if text in POSITIVE:
            out[i] = 1
        elif text not in NEGATIVE:
            raise TableError(f"row {i + 2}: target {column!r} is {raw!r}, not yes/no or 1/0")
    if len(np.unique(out)) < 2:
        raise TableError(f"target {column!r} has a single class")
    return out


def build_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], target: str, id_column: str | None
) -> Table:
    if target not in header:
        raise TableError(f"no column {target!r}; columns are {', '.join(header)}")
    if id_column is not None and id_column not in header:
        raise TableError(f"no id column {id_column!r}")
    if not rows:
        raise TableError("the file has no data rows")
    position = {name: i for i, name in enumerate(header)}
    y = parse_target([r[position[target]] for r in rows], target)
    columns: list[str] = []
    categorical: list[str] = []
    matrix: list[np.ndarray] = []
    for name in header:
        if name in (target, id_column):
            continue
        cells = [r[position[name]].strip() for r in rows]
        filled = [c for c in cells if c != ""]
        if not filled:
            continue
        numbers = [_number(c) for c in filled]
        if sum(v is not None for v in numbers) >= 0.98 * len(filled):
            col = np.array(
                [np.nan if (v := _number(c)) is None else v for c in cells], dtype=np.float64
            )
        else:
            counts = Counter(filled)
            if len(counts) > ID_LIKE_SHARE * len(filled):
                continue
            # Codes by frequency, so they do not depend on row order; blanks stay missing.
            codes = {v: float(i) for i, (v, _) in enumerate(counts.most_common())}
            col = np.array([codes.get(c, np.nan) for c in cells], dtype=np.float64)
            categorical.append(name)
        columns.append(name)
        matrix.append(col)
    if not columns:
        raise TableError("no usable feature columns")
    return Table(columns, np.column_stack(matrix), y, categorical)


def evaluate(table: Table, random_state: int = 0) -> dict[str, Any]:
    """Stratified 80/20 split; the model is fitted on 80% of the training part and early-stopped
    and calibrated on its other 20%, then judged once on the untouched test 20%."""
    idx = np.arange(len(table.y))
    train_idx, test_idx = train_test_split(
        idx, test_size=0.2, stratify=table.y, random_state=random_state
    )
    fit_idx, cal_idx = train_test_split(
        train_idx, test_size=0.2, stratify=table.y[train_idx], random_state=random_state
    )
    started = time.perf_counter()
    predictor = M.fit(
        table.x[fit_idx],
        table.y[fit_idx],
        table.x[cal_idx],
        table.y[cal_idx],
        table.columns,
        categorical=table.categorical,
        params={"learning_rate": 0.02, "num_leaves": 7, "min_data_in_leaf": 30},
    )
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    p = predictor.predict(table.x[test_idx])
    score_seconds = time.perf_counter() - started
    scores = M.metrics(table.y[test_idx], p)
    return {
        "rows": len(table.y),
        "features": len(table.columns),
        "categorical": len(table.categorical),
        "roc_auc": scores["roc_auc"],
        "pr_auc": scores["pr_auc"],
        "brier": scores["brier"],
        "ece": scores["ece"],
        "top_decile_lift": scores["top_decile_lift"],
        "calibration": predictor.calibration.kind,
        "train_seconds": train_seconds,
        "score_rows_per_second": len(test_idx) / max(score_seconds, 1e-9),
    }
