"""Gradient-boosted churn models with calibration, metrics and TreeSHAP attributions (pure).

A model is a LightGBM booster plus a calibration map fitted on a *later* slice than the one the
trees were fitted on, so probabilities stay honest when behaviour drifts. It serializes to JSON
bytes (booster text + calibration), never pickle, so a stored model cannot run code on load.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import orjson
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import average_precision_score, roc_auc_score

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Isotonic needs enough of both classes to be smoother than Platt's two parameters.
ISOTONIC_MIN_PER_CLASS = 300

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.9,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "max_bin": 127,
    "num_threads": 1,
    "seed": 0,
    "deterministic": True,
    "force_row_wise": True,
    "verbosity": -1,
}
MAX_ROUNDS = 600
EARLY_STOPPING_ROUNDS = 40


@dataclass
class Calibration:
    kind: str  # "isotonic" | "platt" | "identity"
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    a: float = 1.0
    b: float = 0.0

    def __post_init__(self) -> None:
        # Threshold arrays built once, not from the lists on every call.
        self._x = np.asarray(self.x, dtype=np.float64)
        self._y = np.asarray(self.y, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "x": self.x, "y": self.y, "a": self.a, "b": self.b}

    def apply(self, raw_score: FloatArray) -> FloatArray:
        """Map raw log-odds to calibrated probabilities."""
        if self.kind == "isotonic":
            return np.interp(raw_score, self._x, self._y)
        return _sigmoid(self.a * raw_score + self.b)


@dataclass
class ChurnPredictor:
    features: list[str]
    booster: lgb.Booster
    calibration: Calibration
    categorical: list[str] = field(default_factory=list)
    # Category code tables for categorical columns (evaluate on arbitrary CSVs).
    info: dict[str, Any] = field(default_factory=dict)

    def raw_score(self, x: FloatArray, num_threads: int = 0) -> FloatArray:
        """Raw log-odds. LightGBM copies any non C-contiguous float64 input first, so pass it
        contiguous; ``num_threads`` 0 lets LightGBM use every core (OpenMP's default)."""
        return np.asarray(
            self.booster.predict(
                np.ascontiguousarray(x, dtype=np.float64), raw_score=True, num_threads=num_threads
            ),
            dtype=np.float64,
        )

    def predict(self, x: FloatArray, num_threads: int = 0) -> FloatArray:
        """Calibrated probabilities: raw scores through the vectorised calibration map."""
        return np.clip(self.calibration.apply(self.raw_score(x, num_threads)), 0.0, 1.0)

    def contributions(self, x: FloatArray) -> FloatArray:
        """TreeSHAP contributions to the raw log-odds: (rows, features + 1 bias column)."""
        return np.asarray(self.booster.predict(x, pred_contrib=True), dtype=np.float64)

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "format": "aethercrown-churn-1",
                "features": self.features,
                "categorical": self.categorical,
                "booster": self.booster.model_to_string(),
                "calibration": self.calibration.to_dict(),
                "info": self.info,
            }
        )

    @classmethod
    def from_bytes(cls, blob: bytes) -> ChurnPredictor:
        data = orjson.loads(blob)
        if data.get("format") != "aethercrown-churn-1":
            raise ValueError("not a churn model artifact")
        return cls(
            features=list(data["features"]),
            booster=lgb.Booster(model_str=data["booster"]),
            calibration=Calibration(**data["calibration"]),
            categorical=list(data.get("categorical", [])),
            info=dict(data.get("info", {})),
        )


def fit(
    x_train: FloatArray,
    y_train: IntArray,
    x_calibrate: FloatArray,
    y_calibrate: IntArray,
    features: Sequence[str],
    categorical: Sequence[str] = (),
    params: dict[str, Any] | None = None,
) -> ChurnPredictor:
    """Trees on the training slice (early-stopped on the calibration slice), then calibration."""
    if len(np.unique(y_train)) < 2 or len(np.unique(y_calibrate)) < 2:
        raise ValueError("both classes are needed in the training and calibration slices")
    merged = {**DEFAULT_PARAMS, **(params or {})}
    cat_idx = [list(features).index(c) for c in categorical]
    train_set = lgb.Dataset(
        x_train,
        label=y_train,
        # LightGBM refuses JSON punctuation in names (attr:… has a colon): positional names.
        feature_name=[f"f{i}" for i in range(len(features))],
        categorical_feature=cat_idx or "auto",
        free_raw_data=False,
    )
    valid_set = lgb.Dataset(x_calibrate, label=y_calibrate, reference=train_set)
    booster = lgb.train(
        merged,
        train_set,
        num_boost_round=MAX_ROUNDS,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)],
    )
    predictor = ChurnPredictor(
        features=list(features),
        booster=booster,
        calibration=Calibration("identity"),
        categorical=list(categorical),
    )
    raw = predictor.raw_score(x_calibrate)
    predictor.calibration = fit_calibration(raw, y_calibrate)
    return predictor


def fit_calibration(raw_score: FloatArray, y: IntArray) -> Calibration:
    positives = int(y.sum())
    negatives = len(y) - positives
    if min(positives, negatives) >= ISOTONIC_MIN_PER_CLASS:
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        iso.fit(raw_score, y)
        return Calibration(
            "isotonic",
            x=[float(v) for v in iso.X_thresholds_],
            y=[float(v) for v in iso.y_thresholds_],
        )
    a, b = _platt(raw_score, y.astype(np.float64))
    return Calibration("platt", a=a, b=b)


def _platt(score: FloatArray, y: FloatArray) -> tuple[float, float]:
    """Platt scaling by Newton's method on the log loss, with Platt's smoothed targets."""
    pos = y.sum()
    neg = len(y) - pos
    target = np.where(y > 0, (pos + 1) / (pos + 2), 1 / (neg + 2))
    a, b = 1.0, 0.0
    for _ in range(100):
        p = _sigmoid(a * score + b)
        w = np.maximum(p * (1 - p), 1e-12)
        grad = np.array([np.sum((p - target) * score), np.sum(p - target)])
        hess = np.array(
            [[np.sum(w * score * score) + 1e-9, np.sum(w * score)], [np.sum(w * score), w.sum()]]
        )
        step = np.linalg.solve(hess + 1e-9 * np.eye(2), grad)
        a, b = a - float(step[0]), b - float(step[1])
        if float(np.abs(step).max()) < 1e-10:
            break
    return a, b


def _sigmoid(z: FloatArray) -> FloatArray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))


def expected_calibration_error(y: IntArray, p: FloatArray, bins: int = 10) -> float:
    """ECE over ``bins`` equal-width probability bins, weighted by each bin's share of rows."""
    if len(y) == 0:
        return float("nan")
    idx = np.minimum((p * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = idx == b
        if mask.any():
            total += mask.sum() * abs(float(p[mask].mean()) - float(y[mask].mean()))
    return total / len(y)


def top_decile_lift(y: IntArray, p: FloatArray) -> float:
    base = float(y.mean()) if len(y) else 0.0
    if base == 0.0:
        return float("nan")
    top = max(1, math.ceil(len(p) * 0.1))
    order = np.argsort(-p, kind="stable")[:top]
    return float(y[order].mean()) / base


def metrics(y: IntArray, p: FloatArray) -> dict[str, float]:
    two_classes = len(np.unique(y)) == 2
    return {
        "roc_auc": float(roc_auc_score(y, p)) if two_classes else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if two_classes else float("nan"),
        "brier": float(np.mean((p - y) ** 2)) if len(y) else float("nan"),
        "ece": expected_calibration_error(y, p),
        "top_decile_lift": top_decile_lift(y, p),
    }


def top_factors(
    contributions: FloatArray, features: Sequence[str], values: FloatArray, k: int = 3
) -> list[list[dict[str, Any]]]:
    """The k features pushing each row's log-odds the most (either way), largest |effect| first."""
    per_feature = contributions[:, : len(features)]
    order = np.argsort(-np.abs(per_feature), axis=1)[:, :k]
    out: list[list[dict[str, Any]]] = []
    for row in range(per_feature.shape[0]):
        factors = []
        for col in order[row]:
            value = values[row, col]
            factors.append(
                {
                    "feature": features[col],
                    "value": None if np.isnan(value) else float(value),
                    "contribution": round(float(per_feature[row, col]), 6),
                    "direction": "raises_risk" if per_feature[row, col] > 0 else "lowers_risk",
                }
            )
        out.append(factors)
    return out
