"""The renewal model: features of a customer's history as of a moment, a standardised logistic
regression, and Platt scaling fitted on out-of-fold scores so probabilities are calibrated.
Pure: plain values in and out; parameters are JSON so the model is stored in the database."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold

FEATURES = (
    "active_day_share_30d",
    "activity_events_30d_log",
    "usage_trend_log_ratio",
    "tickets_90d",
    "failed_payments_90d",
    "tenure_months",
)
VERSION = "logreg-platt-1"


@dataclass
class History:
    """One customer's dated signals, sorted, with prefix sums for window counts."""

    signup: date
    activity_days: list[int] = field(default_factory=list)  # date ordinals
    activity_counts: list[int] = field(default_factory=list)  # prefix sums
    usage_days: list[int] = field(default_factory=list)
    usage_counts: list[int] = field(default_factory=list)
    tickets: list[float] = field(default_factory=list)  # unix seconds
    failed_payments: list[float] = field(default_factory=list)

    @staticmethod
    def build(
        signup: date,
        activity: Sequence[tuple[date, int]],
        usage: Sequence[tuple[date, int]],
        tickets: Sequence[datetime],
        failed_payments: Sequence[datetime],
    ) -> History:
        h = History(signup)
        for days, counts, source in (
            (h.activity_days, h.activity_counts, activity),
            (h.usage_days, h.usage_counts, usage),
        ):
            total = 0
            for day, n in sorted(source):
                total += n
                days.append(day.toordinal())
                counts.append(total)
        h.tickets = sorted(t.timestamp() for t in tickets)
        h.failed_payments = sorted(t.timestamp() for t in failed_payments)
        return h


def _window(days: list[int], prefix: list[int], lo: int, hi: int) -> tuple[int, int]:
    """(distinct days, total count) with lo <= day < hi."""
    i, j = bisect_left(days, lo), bisect_left(days, hi)
    total = (prefix[j - 1] if j else 0) - (prefix[i - 1] if i else 0)
    return j - i, total


def _count(times: list[float], lo: float, hi: float) -> int:
    return bisect_left(times, hi) - bisect_left(times, lo)


def features_at(h: History, at: datetime) -> list[float]:
    today = at.date().toordinal()
    active_days, events_30 = _window(h.activity_days, h.activity_counts, today - 30, today)
    _, usage_30 = _window(h.usage_days, h.usage_counts, today - 30, today)
    _, usage_prev = _window(h.usage_days, h.usage_counts, today - 60, today - 30)
    t = at.timestamp()
    ninety = timedelta(days=90).total_seconds()
    return [
        active_days / 30,
        math.log1p(events_30),
        math.log((usage_30 + 1) / (usage_prev + 1)),
        float(_count(h.tickets, t - ninety, t)),
        float(_count(h.failed_payments, t - ninety, t)),
        max(0.0, (at.date() - h.signup).days / 30.4375),
    ]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -50, 50))))


class InsufficientHistory(Exception):
    pass


MIN_SAMPLES = 30
MIN_PER_CLASS = 5


def train(x: Sequence[Sequence[float]], y: Sequence[int], seed: int = 0) -> dict[str, Any]:
    """Fit; returns JSON parameters and out-of-fold quality (Brier, AUC, log loss)."""
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=int)
    positives = int(ya.sum())
    negatives = len(ya) - positives
    if len(ya) < MIN_SAMPLES or min(positives, negatives) < MIN_PER_CLASS:
        raise InsufficientHistory(
            f"{len(ya)} renewal outcomes ({positives} renewed, {negatives} lapsed); need at least "
            f"{MIN_SAMPLES} with {MIN_PER_CLASS} of each"
        )
    mean = xa.mean(axis=0)
    scale = xa.std(axis=0)
    scale[scale == 0] = 1.0
    z = (xa - mean) / scale
    folds = min(5, positives, negatives)
    oof = np.zeros(len(ya))
    for train_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(z, ya):
        fold = LogisticRegression(C=1.0, max_iter=1000).fit(z[train_idx], ya[train_idx])
        oof[test_idx] = fold.decision_function(z[test_idx])
    # Platt scaling on held-out scores: maps the regression's log-odds to calibrated ones.
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(oof.reshape(-1, 1), ya)
    a, b = float(platt.coef_[0][0]), float(platt.intercept_[0])
    oof_p = _sigmoid(a * oof + b)
    final = LogisticRegression(C=1.0, max_iter=1000).fit(z, ya)
    return {
        "params": {
            "features": list(FEATURES),
            "mean": mean.tolist(),
            "scale": scale.tolist(),
            "coef": final.coef_[0].tolist(),
            "intercept": float(final.intercept_[0]),
            "platt_a": a,
            "platt_b": b,
        },
        "metrics": {
            "samples": len(ya),
            "renewed": positives,
            "lapsed": negatives,
            "oof_brier": float(brier_score_loss(ya, oof_p)),
            "oof_auc": float(roc_auc_score(ya, oof_p)),
            "oof_log_loss": float(log_loss(ya, oof_p)),
            "base_rate": positives / len(ya),
        },
    }


def predict(params: dict[str, Any], features: Sequence[float]) -> tuple[float, list[float]]:
    """(probability of renewing, each feature's contribution to the calibrated log-odds)."""
    z = (np.asarray(features, float) - np.asarray(params["mean"])) / np.asarray(params["scale"])
    coef = np.asarray(params["coef"])
    a = params["platt_a"]
    logit = a * (float(coef @ z) + params["intercept"]) + params["platt_b"]
    contributions = (a * coef * z).tolist()
    return float(_sigmoid(np.asarray([logit]))[0]), contributions


def predict_many(params: dict[str, Any], rows: Sequence[Sequence[float]]) -> np.ndarray:
    z = (np.asarray(rows, float) - np.asarray(params["mean"])) / np.asarray(params["scale"])
    logit = params["platt_a"] * (z @ np.asarray(params["coef"]) + params["intercept"])
    return _sigmoid(logit + params["platt_b"])
