"""SaaS revenue metrics over plain records, defined the way ChartMogul, Baremetrics and ProfitWell
define them. Nothing here touches the database.

Definitions (all money in integer minor units):

* A subscription's **MRR** is its recurring price net of discounts, per month: ``amount ×
  quantity``, less ``discount_percent`` percent, less ``discount_amount`` (per interval), floored
  at zero; an annual plan is spread over 12 months. Rounded half-up to a whole minor unit per
  subscription, so every total is an exact integer sum. One-off charges (payments) and metered
  usage are not subscriptions and never enter MRR; an interval other than month or year
  contributes nothing.
* A subscription counts in month M's MRR when it is alive at the **last instant of M** over its
  half-open life ``[started_at, ended_at)`` and its trial (if any) is over by then: with B the
  first instant of the next month, ``started_at < B <= ended_at`` and ``trial_end < B``. So a
  life of ``[1 Feb 00:00, 1 Apr 00:00)`` is in February's and March's MRR (new in February,
  churned in April), and one that starts at B belongs to the next month, not to M. Billing
  anchored to the 1st is the common case, which is why the boundary instant matters. For the
  current month the reading is "now": ``started_at <= now < ended_at``, ``trial_end <= now``.
  ``alive_at_month_end`` is the one definition (the simulator's truth uses it too). A trial
  that never converts (cancelled at or before its trial end) therefore never contributes.
* **Movements** are computed per customer between consecutive month ends, so a plan switch inside
  one month is an expansion or contraction, never churn plus new: *new* (0 → >0, first time ever),
  *reactivation* (0 → >0, had MRR before), *expansion* / *contraction* (>0 → more / less),
  *churn* (>0 → 0: the customer's last paying subscription ended). Churn and contraction are given
  as positive magnitudes; ``mrr[M] = mrr[M-1] + new + expansion + reactivation − contraction −
  churn`` holds exactly.
* **NRR / GRR** over a lag L months: of the customers paying at M−L, their MRR now (NRR, expansion
  included) or ``min(now, then)`` (GRR) over their MRR then. ``nrr``/``grr`` use L = 1,
  ``nrr_12m``/``grr_12m`` L = 12.
* **Logo churn rate** = churned customers / customers at the start of the month; **revenue churn
  rate** (gross) = (churn + contraction) / MRR at the start; **net revenue churn** subtracts
  expansion. **ARPA** = MRR / paying customers. **LTV** = ARPA / logo churn rate, the churn rate
  taken over the trailing three months (churned / starting customers summed) to steady it.
  **Quick ratio** = (new + expansion + reactivation) / (churn + contraction).
  **CAC** = marketing spend in the month / new customers; **CAC payback** (months) = CAC / new
  MRR per new customer = spend / new MRR (no gross-margin data is stored, so it is revenue-based).
  Both are undefined (None, shown "–") in a month with no recorded spend or no new customers,
  and ``cac_note`` says which.
* **Trial conversion**: of the trials whose trial end fell in the month, the share whose
  subscription was still alive after the trial end.
* **DAU/MAU**: the month's average of daily distinct users over its days (elapsed days for the
  current month) divided by the month's distinct users; a user is (customer, user_id).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]

MOVEMENTS = ("new", "expansion", "contraction", "churn", "reactivation")
SEGMENTS = ("smb", "mid_market", "enterprise", "unknown")
LTV_CHURN_WINDOW = 3
# Bumped whenever a definition above changes what a stored series would say (2: months are read
# at their last instant, so lives starting or ending on the 1st fall in the right month; CAC is
# undefined without spend).
RULES_VERSION = 2


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    customer: str
    plan: str
    amount: int
    interval: str
    started_at: datetime
    ended_at: datetime | None = None
    quantity: int = 1
    discount_percent: float = 0.0
    discount_amount: int = 0
    trial_end: datetime | None = None


@dataclass(slots=True)
class RevenueInputs:
    """Everything the monthly series is computed from, already loaded."""

    subscriptions: Sequence[SubscriptionRecord]
    # customer -> segment name (see segment_for_size); customers absent here are "unknown".
    segments: Mapping[str, str] = field(default_factory=dict)
    # month "YYYY-MM" -> marketing spend in minor units.
    marketing_spend: Mapping[str, int] = field(default_factory=dict)
    # day -> distinct active users that day; month -> distinct active users that month.
    daily_active_users: Mapping[date, int] = field(default_factory=dict)
    monthly_active_users: Mapping[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Months


def parse_month(value: str) -> tuple[int, int]:
    """'YYYY-MM' -> (year, month); ValueError otherwise."""
    if len(value) != 7 or value[4] != "-" or not (value[:4].isdigit() and value[5:].isdigit()):
        raise ValueError("expected YYYY-MM")
    year, month = int(value[:4]), int(value[5:])
    if not (1 <= month <= 12) or year < 1970:
        raise ValueError("expected YYYY-MM with month 01-12 and year from 1970")
    return year, month


def month_key(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def month_of(moment: datetime | date) -> str:
    return month_key(moment.year, moment.month)


def month_start(value: str) -> datetime:
    year, month = parse_month(value)
    return datetime(year, month, 1, tzinfo=UTC)


def add_months(value: str, n: int) -> str:
    year, month = parse_month(value)
    index = year * 12 + (month - 1) + n
    return month_key(index // 12, index % 12 + 1)


def month_range(first: str, last: str) -> list[str]:
    out: list[str] = []
    current = first
    while current <= last:
        out.append(current)
        current = add_months(current, 1)
    return out


def months_between(first: str, last: str) -> int:
    fy, fm = parse_month(first)
    ly, lm = parse_month(last)
    return (ly * 12 + lm) - (fy * 12 + fm)


Epochs = TypeVar("Epochs", float, npt.NDArray[np.float64], npt.NDArray[np.int64])


def alive_at_month_end(
    started: Epochs, ended: Epochs, trial_end: Epochs, month: str, as_of: datetime
) -> Any:
    """Which subscriptions count in ``month``'s MRR (the module docstring's rule), over epoch
    seconds (an open end is +inf, no trial −inf); scalars or numpy arrays.

    The month is read at its last instant, just before B = the next month's first instant, so
    the comparisons at B are strict where a point reading's are not: a life that starts at B
    is not alive before B, and one that ends at B still is."""
    boundary = month_start(add_months(month, 1))
    if as_of < boundary:
        now = as_of.timestamp()
        return (started <= now) & (ended > now) & (trial_end <= now)
    at = boundary.timestamp()
    return (started < at) & (ended >= at) & (trial_end < at)


def days_counted(value: str, as_of: datetime) -> int:
    """Days of the month that have begun by ``as_of`` (all of them for a past month)."""
    year, month = parse_month(value)
    total = calendar.monthrange(year, month)[1]
    if month_of(as_of) == value:
        return as_of.day
    return total


# ---------------------------------------------------------------------------------------------
# Single subscriptions


def subscription_mrr(sub: SubscriptionRecord) -> int:
    """The subscription's monthly recurring revenue in minor units (see the module docstring)."""
    if sub.interval not in ("month", "year"):
        return 0
    gross = Decimal(sub.amount) * Decimal(sub.quantity)
    net = gross * (Decimal(100) - Decimal(str(sub.discount_percent))) / Decimal(100)
    net -= Decimal(sub.discount_amount)
    net = max(net, Decimal(0))
    if sub.interval == "year":
        net /= Decimal(12)
    return int(net.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def segment_for_size(company_size: int | None) -> str:
    """Customer segment by employees: SMB < 50, mid-market 50–999, enterprise ≥ 1000."""
    if company_size is None:
        return "unknown"
    if company_size < 50:
        return "smb"
    if company_size < 1000:
        return "mid_market"
    return "enterprise"


# ---------------------------------------------------------------------------------------------
# Matrices: months × customers


@dataclass(slots=True)
class MrrMatrix:
    months: list[str]
    customers: list[str]
    plans: list[str]
    # mrr[i, j]: customer j's MRR at the end of month i.
    mrr: IntArray
    # plan_mrr[i, p], plan_customers[i, p]
    plan_mrr: IntArray
    plan_customers: IntArray


def _epoch(moment: datetime | None, missing: float) -> float:
    return missing if moment is None else moment.timestamp()


def build_matrix(
    subscriptions: Sequence[SubscriptionRecord], months: Sequence[str], as_of: datetime
) -> MrrMatrix:
    customers = sorted({s.customer for s in subscriptions})
    plans = sorted({s.plan for s in subscriptions})
    cindex = {c: i for i, c in enumerate(customers)}
    pindex = {p: i for i, p in enumerate(plans)}
    n = len(subscriptions)
    start = np.fromiter((s.started_at.timestamp() for s in subscriptions), float, n)
    end = np.fromiter((_epoch(s.ended_at, np.inf) for s in subscriptions), float, n)
    trial = np.fromiter((_epoch(s.trial_end, -np.inf) for s in subscriptions), float, n)
    value = np.fromiter((subscription_mrr(s) for s in subscriptions), float, n)
    cidx = np.fromiter((cindex[s.customer] for s in subscriptions), np.int64, n)
    pidx = np.fromiter((pindex[s.plan] for s in subscriptions), np.int64, n)
    pair = cidx * max(len(plans), 1) + pidx

    mrr = np.zeros((len(months), len(customers)), dtype=np.int64)
    plan_mrr = np.zeros((len(months), len(plans)), dtype=np.int64)
    plan_customers = np.zeros((len(months), len(plans)), dtype=np.int64)
    for i, month in enumerate(months):
        paying = alive_at_month_end(start, end, trial, month, as_of) & (value > 0)
        mrr[i] = np.rint(np.bincount(cidx[paying], weights=value[paying], minlength=len(customers)))
        plan_mrr[i] = np.rint(
            np.bincount(pidx[paying], weights=value[paying], minlength=len(plans))
        )
        paying_pairs = np.unique(pair[paying])
        plan_customers[i] = np.bincount(paying_pairs % max(len(plans), 1), minlength=len(plans))
    return MrrMatrix(list(months), customers, plans, mrr, plan_mrr, plan_customers)


@dataclass(slots=True)
class Movements:
    new: IntArray
    expansion: IntArray
    contraction: IntArray
    churn: IntArray
    reactivation: IntArray
    new_customers: IntArray
    churned_customers: IntArray
    reactivated_customers: IntArray


def movements(mrr: IntArray) -> Movements:
    """Per-month MRR movements of a months × customers matrix whose first row is the first month
    anyone paid (so "never paid before" is known)."""
    months = mrr.shape[0]
    prev = np.vstack([np.zeros((1, mrr.shape[1]), dtype=np.int64), mrr[:-1]]) if months else mrr
    paying = mrr > 0
    was_paying = prev > 0
    # ever_before[i, j]: customer j paid in some month before i.
    cumulative = np.maximum.accumulate(paying, axis=0) if months else paying
    ever_before = np.vstack([np.zeros((1, mrr.shape[1]), dtype=bool), cumulative[:-1]])
    starts = paying & ~was_paying
    new_mask = starts & ~ever_before
    react_mask = starts & ever_before
    churn_mask = was_paying & ~paying
    up = was_paying & paying & (mrr > prev)
    down = was_paying & paying & (mrr < prev)
    return Movements(
        new=np.where(new_mask, mrr, 0).sum(axis=1),
        expansion=np.where(up, mrr - prev, 0).sum(axis=1),
        contraction=np.where(down, prev - mrr, 0).sum(axis=1),
        churn=np.where(churn_mask, prev, 0).sum(axis=1),
        reactivation=np.where(react_mask, mrr, 0).sum(axis=1),
        new_customers=new_mask.sum(axis=1),
        churned_customers=churn_mask.sum(axis=1),
        reactivated_customers=react_mask.sum(axis=1),
    )


def retention(mrr: IntArray, lag: int) -> tuple[list[float | None], list[float | None]]:
    """(NRR, GRR) per month over ``lag`` months; None where the cohort is missing or empty."""
    nrr: list[float | None] = []
    grr: list[float | None] = []
    for i in range(mrr.shape[0]):
        if i < lag:
            nrr.append(None)
            grr.append(None)
            continue
        then = mrr[i - lag]
        cohort = then > 0
        base = int(then[cohort].sum())
        if base == 0:
            nrr.append(None)
            grr.append(None)
            continue
        now = mrr[i][cohort]
        nrr.append(rate(int(now.sum()), base))
        grr.append(rate(int(np.minimum(now, then[cohort]).sum()), base))
    return nrr, grr


# ---------------------------------------------------------------------------------------------
# Classifier metrics for the AI-performance view


def rate(numerator: float, denominator: float, digits: int = 4) -> float | None:
    if denominator == 0:
        return None
    return round(numerator / denominator, digits)


def auc(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """Area under the ROC curve (Mann–Whitney U with ties counted half); None without both
    classes."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=int)
    pos, neg = int((y == 1).sum()), int((y == 0).sum())
    if pos == 0 or neg == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=float)
    sorted_scores = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    u = ranks[y == 1].sum() - pos * (pos + 1) / 2
    return round(float(u / (pos * neg)), 4)


def calibration(scores: Sequence[float], labels: Sequence[int], bins: int = 10) -> dict[str, Any]:
    """Reliability table over equal-width probability bins, Brier score and expected calibration
    error (bin-size-weighted |mean predicted − observed rate|)."""
    s = np.clip(np.asarray(scores, dtype=float), 0.0, 1.0)
    y = np.asarray(labels, dtype=float)
    if len(s) == 0:
        return {"bins": [], "brier": None, "ece": None, "n": 0}
    index = np.minimum((s * bins).astype(int), bins - 1)
    table = []
    ece = 0.0
    for b in range(bins):
        mask = index == b
        count = int(mask.sum())
        if count == 0:
            continue
        predicted = float(s[mask].mean())
        observed = float(y[mask].mean())
        ece += count / len(s) * abs(predicted - observed)
        table.append(
            {
                "lower": b / bins,
                "upper": (b + 1) / bins,
                "count": count,
                "mean_predicted": round(predicted, 4),
                "observed_rate": round(observed, 4),
            }
        )
    brier = float(((s - y) ** 2).mean())
    return {"bins": table, "brier": round(brier, 4), "ece": round(ece, 4), "n": len(s)}


def auc_from_histogram(rows: Sequence[tuple[float, int, int]]) -> float | None:
    """AUC from (score, positives, negatives) aggregated by score: each positive beats the
    negatives scored below it and ties with those in its own bin (counted half). Equals
    ``auc`` on the raw scores when the bins are the distinct scores."""
    merged: dict[float, list[int]] = {}
    for score, pos, neg in rows:
        entry = merged.setdefault(score, [0, 0])
        entry[0] += pos
        entry[1] += neg
    total_pos = sum(p for p, _ in merged.values())
    total_neg = sum(n for _, n in merged.values())
    if total_pos == 0 or total_neg == 0:
        return None
    below = 0
    u = 0.0
    for score in sorted(merged):
        pos, neg = merged[score]
        u += pos * (below + neg / 2)
        below += neg
    return round(u / (total_pos * total_neg), 4)


def calibration_from_histogram(
    rows: Sequence[tuple[float, int, int, float, float]], bins: int = 10
) -> dict[str, Any]:
    """``calibration`` from (score, label, count, Σ predicted, Σ squared error) rows, each row's
    predictions placed in the equal-width bin of its score."""
    n = sum(r[2] for r in rows)
    if n == 0:
        return {"bins": [], "brier": None, "ece": None, "n": 0}
    count = [0] * bins
    positives = [0] * bins
    predicted = [0.0] * bins
    squared = 0.0
    for score, label, k, sum_p, sum_se in rows:
        b = min(max(int(score * bins), 0), bins - 1)
        count[b] += k
        positives[b] += k if label else 0
        predicted[b] += sum_p
        squared += sum_se
    table = []
    ece = 0.0
    for b in range(bins):
        if count[b] == 0:
            continue
        mean_p = predicted[b] / count[b]
        observed = positives[b] / count[b]
        ece += count[b] / n * abs(mean_p - observed)
        table.append(
            {
                "lower": b / bins,
                "upper": (b + 1) / bins,
                "count": count[b],
                "mean_predicted": round(mean_p, 4),
                "observed_rate": round(observed, 4),
            }
        )
    return {"bins": table, "brier": round(squared / n, 4), "ece": round(ece, 4), "n": n}


def mape(predicted: Sequence[float], actual: Sequence[float]) -> float | None:
    """Mean absolute percentage error over pairs with a non-zero actual, as a fraction."""
    pairs = [(p, a) for p, a in zip(predicted, actual, strict=True) if a != 0]
    if not pairs:
        return None
    return round(sum(abs(p - a) / abs(a) for p, a in pairs) / len(pairs), 4)


# ---------------------------------------------------------------------------------------------
# The monthly series


def trial_counts(
    subscriptions: Iterable[SubscriptionRecord], as_of: datetime
) -> dict[str, dict[str, int]]:
    """month -> trials started, ended (trial end in the month, by ``as_of``) and converted.

    A trial still running at ``as_of`` has no outcome yet, so it is not counted as ended (an
    open subscription would otherwise pass for a conversion before its trial is over)."""
    out: dict[str, dict[str, int]] = {}
    for sub in subscriptions:
        if sub.trial_end is None:
            continue
        started = out.setdefault(month_of(sub.started_at), _trial_zero())
        started["trials_started"] += 1
        if sub.trial_end > as_of:
            continue
        ended = out.setdefault(month_of(sub.trial_end), _trial_zero())
        ended["trials_ended"] += 1
        if sub.ended_at is None or sub.ended_at > sub.trial_end:
            ended["trials_converted"] += 1
    return out


def _trial_zero() -> dict[str, int]:
    return {"trials_started": 0, "trials_ended": 0, "trials_converted": 0}


def first_month(inputs: RevenueInputs) -> str | None:
    starts = [s.started_at for s in inputs.subscriptions]
    return month_of(min(starts)) if starts else None


@dataclass
class _SeriesParts:
    """What every month of the series reads: the MRR matrix and what is derived from it once
    (movements, retention, trials, the segments' columns)."""

    inputs: RevenueInputs
    as_of: datetime
    matrix: MrrMatrix
    moves: Movements
    retention_1: tuple[list[float | None], list[float | None]]
    retention_12: tuple[list[float | None], list[float | None]]
    trials: dict[str, dict[str, int]]
    segment_moves: dict[str, Movements]
    segment_mrr: dict[str, IntArray]


def _series_parts(inputs: RevenueInputs, months: list[str], as_of: datetime) -> _SeriesParts:
    matrix = build_matrix(inputs.subscriptions, months, as_of)
    segment_of = np.array(
        [inputs.segments.get(c, "unknown") for c in matrix.customers], dtype=object
    )
    segment_moves = {
        seg: movements(matrix.mrr[:, segment_of == seg])
        for seg in SEGMENTS
        if (segment_of == seg).any()
    }
    return _SeriesParts(
        inputs=inputs,
        as_of=as_of,
        matrix=matrix,
        moves=movements(matrix.mrr),
        retention_1=retention(matrix.mrr, 1),
        retention_12=retention(matrix.mrr, 12),
        trials=trial_counts(inputs.subscriptions, as_of),
        segment_moves=segment_moves,
        segment_mrr={seg: matrix.mrr[:, segment_of == seg] for seg in segment_moves},
    )


def _revenue_row(parts: _SeriesParts, i: int, month: str) -> dict[str, Any]:
    """MRR, its movements, the churn rates and retention of month ``i``."""
    matrix, moves = parts.matrix, parts.moves
    mrr_now = int(matrix.mrr[i].sum())
    start_mrr = int(matrix.mrr[i - 1].sum()) if i else 0
    start_customers = int((matrix.mrr[i - 1] > 0).sum()) if i else 0
    row: dict[str, Any] = {
        "month": month,
        "mrr": mrr_now,
        "arr": mrr_now * 12,
        "customers": int((matrix.mrr[i] > 0).sum()),
    }
    for name in MOVEMENTS:
        row[name] = int(getattr(moves, name)[i])
    row["net_new_mrr"] = (
        row["new"] + row["expansion"] + row["reactivation"] - row["contraction"] - row["churn"]
    )
    row["new_customers"] = int(moves.new_customers[i])
    row["churned_customers"] = int(moves.churned_customers[i])
    row["reactivated_customers"] = int(moves.reactivated_customers[i])
    row["mrr_growth_rate"] = rate(mrr_now - start_mrr, start_mrr)
    row["logo_churn_rate"] = rate(row["churned_customers"], start_customers)
    row["revenue_churn_rate"] = rate(row["churn"] + row["contraction"], start_mrr)
    row["net_revenue_churn_rate"] = rate(
        row["churn"] + row["contraction"] - row["expansion"], start_mrr
    )
    row["nrr"], row["grr"] = parts.retention_1[0][i], parts.retention_1[1][i]
    row["nrr_12m"], row["grr_12m"] = parts.retention_12[0][i], parts.retention_12[1][i]
    return row


def _unit_economics(parts: _SeriesParts, i: int, row: dict[str, Any]) -> dict[str, Any]:
    """ARPA, LTV, quick ratio, CAC and its payback of month ``i`` (``row``: its revenue)."""
    matrix, moves = parts.matrix, parts.moves
    customers = row["customers"]
    arpa = row["mrr"] / customers if customers else None
    out: dict[str, Any] = {"arpa": round(arpa) if arpa is not None else None}
    window = range(max(0, i - LTV_CHURN_WINDOW + 1), i + 1)
    churned = sum(int(moves.churned_customers[k]) for k in window)
    starting = sum(int((matrix.mrr[k - 1] > 0).sum()) for k in window if k > 0)
    churn_rate = churned / starting if starting else 0.0
    out["ltv"] = round(arpa / churn_rate) if arpa is not None and churn_rate > 0 else None
    gains = row["new"] + row["expansion"] + row["reactivation"]
    losses = row["churn"] + row["contraction"]
    out["quick_ratio"] = rate(gains, losses, 2)
    spend = int(parts.inputs.marketing_spend.get(row["month"], 0))
    out["marketing_spend"] = spend
    # CAC needs both a spend and customers it bought: a month without recorded spend is
    # undefined ("–"), not a free acquisition of 0 (the spend may just not be loaded).
    out["cac"] = round(spend / row["new_customers"]) if spend and row["new_customers"] else None
    out["cac_note"] = (
        None
        if out["cac"] is not None
        else "no marketing spend recorded this month"
        if not spend
        else "no new customers this month"
    )
    out["cac_payback_months"] = rate(spend, row["new"], 2) if spend else None
    return out


def _trials_and_activity(parts: _SeriesParts, month: str) -> dict[str, Any]:
    """The month's trial funnel and its daily and monthly active users."""
    t = parts.trials.get(month, _trial_zero())
    out: dict[str, Any] = {**t}
    out["trial_conversion_rate"] = rate(t["trials_converted"], t["trials_ended"])
    days = days_counted(month, parts.as_of)
    daily = sum(n for d, n in parts.inputs.daily_active_users.items() if month_of(d) == month)
    mau = int(parts.inputs.monthly_active_users.get(month, 0))
    dau = daily / days if days else 0.0
    out["dau"] = round(dau, 2)
    out["mau"] = mau
    out["dau_mau"] = rate(dau, mau)
    return out


def _breakdowns(parts: _SeriesParts, i: int) -> dict[str, Any]:
    """Month ``i``'s MRR and customers by plan, and MRR and movements by segment."""
    matrix = parts.matrix
    return {
        "mrr_by_plan": {p: int(matrix.plan_mrr[i, k]) for k, p in enumerate(matrix.plans)},
        "customers_by_plan": {
            p: int(matrix.plan_customers[i, k]) for k, p in enumerate(matrix.plans)
        },
        "by_segment": {
            seg: {
                "mrr": int(parts.segment_mrr[seg][i].sum()),
                "customers": int((parts.segment_mrr[seg][i] > 0).sum()),
                **{name: int(getattr(sm, name)[i]) for name in MOVEMENTS},
            }
            for seg, sm in parts.segment_moves.items()
        },
    }


def revenue_series(inputs: RevenueInputs, as_of: datetime) -> list[dict[str, Any]]:
    """One dict per month, from the first month any subscription started to ``as_of``'s month:
    its revenue and movements, unit economics, trials and activity, and breakdowns."""
    first = first_month(inputs)
    last = month_of(as_of)
    if first is None or first > last:
        return []
    months = month_range(first, last)
    parts = _series_parts(inputs, months, as_of)
    series: list[dict[str, Any]] = []
    for i, month in enumerate(months):
        row = _revenue_row(parts, i, month)
        row.update(_unit_economics(parts, i, row))
        row.update(_trials_and_activity(parts, month))
        row.update(_breakdowns(parts, i))
        series.append(row)
    return series


def cmgr(first: int, last: int, periods: int) -> float | None:
    """Compound monthly growth rate between two values ``periods`` months apart."""
    if periods <= 0 or first <= 0 or last <= 0:
        return None
    return round(float((last / first) ** (1 / periods) - 1), 4)
