"""From per-channel histories and constraints to a recommended budget split. Pure: plain values in,
plain values out; the service feeds it from requests or stored data.

Every amount here is *per period* of the history (a day for daily rows); the service scales to a
horizon. Channels whose history supports no curve (see ``curves.fit_channel``) are not given an
invented curve: they keep their share under the original ROI-proportional rule, are labelled as
fallbacks, and their expected return is their historical ROI times the amount.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aethercrown.budget.curves import ChannelFit, ResponseCurve, fit_channel
from aethercrown.budget.optimizer import CurveArrays, best_at_margin, maximise

FloatArray = NDArray[np.float64]

# A change smaller than this share of the current amount is "maintain".
MAINTAIN_BAND = 0.05
# Without a maximum, flexible-budget scenarios never spend more than this multiple of the largest
# spend a channel has seen: the curve says nothing reliable far beyond its data.
EXTRAPOLATION_CAP = 3.0


class PlanError(ValueError):
    """A constraint set that cannot be met; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ChannelHistory:
    channel: str
    spend: Sequence[float]  # per period, oldest first
    returns: Sequence[float]
    consecutive: bool  # the periods form a gap-free series
    days: Sequence[date] | None = None  # the periods' dates, for daily data (seasonality)
    # Conversions per period when the return is revenue and they are known: the robust fit
    # models their counts (far less noisy than revenue) and prices them at revenue per count.
    counts: Sequence[float] | None = None


@dataclass(frozen=True)
class Limits:
    min_share: float = 0.05
    channel_min_share: Mapping[str, float] = field(default_factory=dict)
    min_amount: Mapping[str, float] = field(default_factory=dict)
    max_amount: Mapping[str, float] = field(default_factory=dict)
    fixed: Mapping[str, float] = field(default_factory=dict)


@dataclass
class Plan:
    channels: list[str]
    fits: list[ChannelFit]
    budget: float
    allocation: FloatArray
    expected: float
    expected_low: float
    expected_high: float
    marginal: FloatArray  # f'(x) at the allocation (historical ROI for fallbacks)
    multiplier: float | None  # the common marginal return of the free curve channels
    upper_bound: float
    nodes: int
    current: FloatArray  # the current split scaled to the same budget
    current_expected: float
    proportional: FloatArray
    proportional_expected: float
    scenario: dict[str, Any]
    lower: FloatArray
    upper: FloatArray


def fit_all(histories: Sequence[ChannelHistory], bootstrap: int, seed: int = 0) -> list[ChannelFit]:
    return [
        fit_channel(
            h.channel,
            np.asarray(h.spend, dtype=float),
            np.asarray(h.returns, dtype=float),
            consecutive=h.consecutive,
            bootstrap=bootstrap,
            seed=seed + i,
            calendar=_calendar(h.days) if h.days is not None else None,
        )
        for i, h in enumerate(histories)
    ]


def _calendar(days: Sequence[date]) -> tuple[FloatArray, FloatArray]:
    weekday = np.array([d.weekday() for d in days], dtype=float)
    day_of_year = np.array([d.timetuple().tm_yday - 1 for d in days], dtype=float)
    return weekday, day_of_year


def response(fit: ChannelFit, amount: float) -> float:
    """Expected return per period of spending ``amount`` on the channel."""
    if fit.curve is not None:
        return fit.curve.at(amount)
    return fit.roi * amount


def marginal(fit: ChannelFit, amount: float) -> float:
    if fit.curve is not None:
        return fit.curve.slope_at(max(amount, 1e-12))
    return fit.roi


def bounds(
    fits: Sequence[ChannelFit], budget: float, limits: Limits
) -> tuple[FloatArray, FloatArray]:
    """Per-channel [lower, upper] for a fixed budget; raises PlanError naming what cannot hold."""
    names = [f.channel for f in fits]
    shares = [limits.channel_min_share.get(n, limits.min_share) for n in names]
    unfixed_share = sum(s for n, s in zip(names, shares, strict=True) if n not in limits.fixed)
    if unfixed_share > 1 + 1e-12:
        raise PlanError(
            "min_share",
            f"minimum shares add up to {unfixed_share:.1%} of the budget, more than 100%",
        )
    lower = np.empty(len(fits))
    upper = np.empty(len(fits))
    for i, (name, share) in enumerate(zip(names, shares, strict=True)):
        if name in limits.fixed:
            lower[i] = upper[i] = limits.fixed[name]
            continue
        lower[i] = max(share * budget, limits.min_amount.get(name, 0.0))
        upper[i] = min(limits.max_amount.get(name, math.inf), budget)
        if lower[i] > upper[i] * (1 + 1e-12):
            raise PlanError(
                f"channel_limits.{name}",
                f"{name}: its minimum {lower[i]:,.2f} (share or amount) is above its maximum "
                f"{upper[i]:,.2f}",
            )
        upper[i] = max(upper[i], lower[i])
    if lower.sum() > budget * (1 + 1e-12):
        raise PlanError(
            "total_budget",
            f"the minimums and fixed amounts add up to {lower.sum():,.2f}, "
            f"more than the budget {budget:,.2f}",
        )
    if upper.sum() < budget * (1 - 1e-12):
        raise PlanError(
            "channel_limits",
            f"the maximums and fixed amounts add up to {upper.sum():,.2f}, "
            f"less than the budget {budget:,.2f}",
        )
    return lower, upper


def proportional_split(
    fits: Sequence[ChannelFit], budget: float, lower: FloatArray, upper: FloatArray
) -> FloatArray:
    """The original rule: every channel its minimum, the rest in proportion to historical ROI —
    here kept within each channel's [lower, upper] by a scalar search on the proportional part."""
    roi = np.array([max(f.roi, 0.0) for f in fits])
    weights = roi / roi.sum() if roi.sum() > 0 else np.full(len(fits), 1.0 / len(fits))
    return _fill(lower, upper, weights, budget)


def _fill(lower: FloatArray, upper: FloatArray, weights: FloatArray, budget: float) -> FloatArray:
    """x_i = clip(lower_i + w_i·t, lower_i, upper_i) with Σx = budget (t by bisection)."""
    if upper.sum() <= budget:
        return upper.copy()
    spare = budget - lower.sum()
    if spare <= 0:
        return lower.copy()
    weights = np.where(upper > lower, np.maximum(weights, 1e-12), 0.0)
    lo_t, hi_t = 0.0, spare / weights[weights > 0].min() + 1.0
    for _ in range(200):
        t = 0.5 * (lo_t + hi_t)
        if np.minimum(lower + weights * t, upper).sum() > budget:
            hi_t = t
        else:
            lo_t = t
    x = np.minimum(lower + weights * lo_t, upper)
    residual = budget - x.sum()
    room = upper - x
    if residual > 0 and room.sum() > 0:
        x = x + residual * room / room.sum()
    return np.asarray(x)


def current_split(fits: Sequence[ChannelFit], budget: float) -> FloatArray:
    levels = np.array([f.mean_spend for f in fits])
    if levels.sum() <= 0:
        return np.full(len(fits), budget / len(fits))
    return np.asarray(levels / levels.sum() * budget)


def total_response(fits: Sequence[ChannelFit], x: FloatArray) -> float:
    return float(sum(response(f, float(a)) for f, a in zip(fits, x, strict=True)))


def _interval(
    fits: Sequence[ChannelFit], x: FloatArray, level: float, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of the total return at x across bootstrap replicates."""
    draws = max((len(f.replicates) for f in fits), default=0)
    rng = np.random.default_rng(seed)
    if draws == 0:
        draws = 200
    totals = np.zeros(draws)
    for f, amount in zip(fits, x, strict=True):
        if f.curve is not None and f.replicates:
            reps = f.replicates
            values = np.array([reps[b % len(reps)].at(float(amount)) for b in range(draws)])
        elif f.curve is not None:
            values = np.full(draws, f.curve.at(float(amount)))
        else:
            values = _roi_draws(f, draws, rng) * float(amount)
        totals += values
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(totals, [tail, 100 - tail])
    return float(low), float(high)


def _roi_draws(fit: ChannelFit, draws: int, rng: np.random.Generator) -> FloatArray:
    """Bootstrap of the channel's ROI over its periods (ratio of resampled sums)."""
    spend, returns = np.asarray(fit.spend_series), np.asarray(fit.return_series)
    if len(spend) == 0:
        return np.full(draws, fit.roi)
    idx = rng.integers(0, len(spend), size=(draws, len(spend)))
    s = spend[idx].sum(axis=1)
    r = returns[idx].sum(axis=1)
    return np.asarray(np.where(s > 0, r / np.maximum(s, 1e-300), 0.0))


def _curve_arrays(fits: Sequence[ChannelFit]) -> CurveArrays:
    curves: list[ResponseCurve] = [f.curve for f in fits if f.curve is not None]
    return CurveArrays.of(curves)


def optimise(
    fits: Sequence[ChannelFit],
    budget: float,
    limits: Limits,
    *,
    interval: float = 0.9,
    rel_tol: float = 1e-9,
) -> Plan:
    """The best split of ``budget`` per period under ``limits``."""
    lower, upper = bounds(fits, budget, limits)
    proportional = proportional_split(fits, budget, lower, upper)
    solved = _optimal_with_fallbacks(fits, budget, lower, upper, proportional, rel_tol)
    return _plan(
        fits, budget, limits, solved, lower, upper, proportional, interval, {"kind": "budget"}
    )


def _optimal_with_fallbacks(
    fits: Sequence[ChannelFit],
    budget: float,
    lower: FloatArray,
    upper: FloatArray,
    proportional: FloatArray,
    rel_tol: float,
) -> tuple[FloatArray, float, int]:
    curve_idx = np.array([i for i, f in enumerate(fits) if f.curve is not None], dtype=int)
    x = proportional.copy()  # fallbacks keep their ROI-proportional amounts
    if len(curve_idx) == 0:
        return x, math.nan, 0
    remaining = budget - float(np.delete(x, curve_idx).sum())
    result = maximise(
        _curve_arrays(fits),
        lower[curve_idx],
        upper[curve_idx],
        remaining,
        rel_tol=rel_tol,
    )
    x[curve_idx] = result.x
    fallback_value = total_response([f for f in fits if f.curve is None], np.delete(x, curve_idx))
    return x, result.upper_bound + fallback_value, result.nodes


def _plan(
    fits: Sequence[ChannelFit],
    budget: float,
    limits: Limits,
    solved: tuple[FloatArray, float, int],
    lower: FloatArray,
    upper: FloatArray,
    proportional: FloatArray,
    interval: float,
    scenario: dict[str, Any],
) -> Plan:
    x, upper_bound, nodes = solved
    expected = total_response(fits, x)
    low, high = _interval(fits, x, interval)
    margins = np.array([marginal(f, float(a)) for f, a in zip(fits, x, strict=True)])
    free = [
        i
        for i, f in enumerate(fits)
        if f.curve is not None and lower[i] + 1e-9 * budget < x[i] < upper[i] - 1e-9 * budget
    ]
    multiplier = float(np.median(margins[free])) if free else None
    current = current_split(fits, budget)
    return Plan(
        channels=[f.channel for f in fits],
        fits=list(fits),
        budget=budget,
        allocation=x,
        expected=expected,
        expected_low=min(low, expected),
        expected_high=max(high, expected),
        marginal=margins,
        multiplier=multiplier,
        upper_bound=expected if math.isnan(upper_bound) else max(upper_bound, expected),
        nodes=nodes,
        current=current,
        current_expected=total_response(fits, current),
        proportional=proportional,
        proportional_expected=total_response(fits, proportional),
        scenario=scenario,
        lower=lower,
        upper=upper,
    )


def _flexible_upper(fits: Sequence[ChannelFit], limits: Limits) -> FloatArray:
    caps = []
    for f in fits:
        if f.channel in limits.fixed:
            caps.append(limits.fixed[f.channel])
            continue
        seen = max(f.spend_series, default=0.0)
        caps.append(limits.max_amount.get(f.channel, EXTRAPOLATION_CAP * max(seen, f.mean_spend)))
    return np.array(caps, dtype=float)


def at_target_margin(
    fits: Sequence[ChannelFit],
    margin: float,
    limits: Limits,
    *,
    cap: float | None = None,
    interval: float = 0.9,
) -> Plan:
    """Flexible budget: each curve channel spends while its next unit returns at least
    ``margin``. Fallback channels (no curve, so no marginal return) stay at their current level.
    Minimum shares do not apply (the budget is the output); min/max amounts and fixed do."""
    lower, upper = _flexible_bounds(fits, limits)
    x = np.clip(np.array([f.mean_spend for f in fits]), lower, upper)
    curve_idx = np.array([i for i, f in enumerate(fits) if f.curve is not None], dtype=int)
    if len(curve_idx):
        x[curve_idx] = best_at_margin(
            _curve_arrays(fits), lower[curve_idx], upper[curve_idx], margin
        )
    scenario: dict[str, Any] = {"kind": "target_marginal_roi", "target": margin}
    budget = float(x.sum())
    if cap is not None and budget > cap:
        scenario["capped_by_total_budget"] = True
        amounts_only = Limits(
            min_share=0.0,
            min_amount=limits.min_amount,
            max_amount=limits.max_amount,
            fixed=limits.fixed,
        )
        capped = optimise(fits, cap, amounts_only, interval=interval)
        capped.scenario = scenario
        return capped
    proportional = proportional_split(fits, budget, lower, np.maximum(upper, lower))
    return _plan(
        fits, budget, limits, (x, math.nan, 0), lower, upper, proportional, interval, scenario
    )


def at_target_roas(
    fits: Sequence[ChannelFit],
    roas: float,
    limits: Limits,
    *,
    cap: float | None = None,
    interval: float = 0.9,
) -> Plan:
    """Flexible budget: the largest budget whose optimal split still returns ``roas`` per unit
    spent (searched over the budget, each candidate split optimally)."""
    lower, upper = _flexible_bounds(fits, limits)
    smallest = max(float(lower.sum()), 1e-9 * float(upper.sum()))
    largest = float(upper.sum()) if cap is None else min(float(upper.sum()), cap)

    def achieved(budget: float) -> tuple[float, Plan | None]:
        try:
            plan = optimise(fits, budget, limits, interval=interval, rel_tol=1e-7)
        except PlanError:
            return -math.inf, None
        return plan.expected / budget, plan

    grid = np.geomspace(max(smallest, largest * 1e-4), largest, 40)
    best: tuple[float, Plan] | None = None
    ok_index = -1
    for i, budget in enumerate(grid):
        ratio, plan = achieved(float(budget))
        if plan is not None and ratio >= roas:
            best, ok_index = (float(budget), plan), i
    if best is None:
        ratios = [achieved(float(b))[0] for b in grid[::8]]
        raise PlanError(
            "target_roas",
            f"no budget reaches a ROAS of {roas:g}; the best found is {max(ratios):.3g}",
        )
    if ok_index + 1 < len(grid):
        lo_b, hi_b = float(grid[ok_index]), float(grid[ok_index + 1])
        for _ in range(40):
            mid = 0.5 * (lo_b + hi_b)
            ratio, plan = achieved(mid)
            if plan is not None and ratio >= roas:
                lo_b, best = mid, (mid, plan)
            else:
                hi_b = mid
    plan = best[1]
    plan.scenario = {
        "kind": "target_roas",
        "target": roas,
        "achieved_roas": plan.expected / plan.budget,
    }
    return plan


def _flexible_bounds(fits: Sequence[ChannelFit], limits: Limits) -> tuple[FloatArray, FloatArray]:
    """Each channel's least and most spend when the budget is an output: fixed amounts or
    minimum amounts below (minimum shares do not apply), the caps above; a channel whose
    minimum is above its maximum is refused."""
    upper = _flexible_upper(fits, limits)
    lower = np.array(
        [limits.fixed.get(f.channel, limits.min_amount.get(f.channel, 0.0)) for f in fits]
    )
    _check_flexible(fits, lower, upper)
    return lower, upper


def _check_flexible(fits: Sequence[ChannelFit], lower: FloatArray, upper: FloatArray) -> None:
    for f, lo, hi in zip(fits, lower, upper, strict=True):
        if lo > hi * (1 + 1e-12):
            raise PlanError(
                f"channel_limits.{f.channel}",
                f"{f.channel}: its minimum {lo:,.2f} is above its maximum {hi:,.2f}",
            )


@dataclass(frozen=True)
class Recommendation:
    channel: str
    action: str  # increase | decrease | maintain
    reason: str
    current_amount: float
    recommended_amount: float
    marginal_roi_current: float
    marginal_roi_recommended: float
    expected_change: float  # expected return gained (lost) by the move


def recommend(plan: Plan, limits: Limits, *, fmt: str = "{:,.2f}") -> list[Recommendation]:
    """increase / decrease / maintain per channel against the current split, with the numbers
    behind each. Amounts are the plan's, so the suggestions together spend exactly its budget."""
    out: list[Recommendation] = []
    lam = plan.multiplier
    for i, (fit, x, cur) in enumerate(zip(plan.fits, plan.allocation, plan.current, strict=True)):
        x, cur = float(x), float(cur)
        change = x - cur
        band = MAINTAIN_BAND * max(cur, x, 1e-12)
        action = "maintain" if abs(change) <= band else ("increase" if change > 0 else "decrease")
        m_cur, m_new = marginal(fit, cur), float(plan.marginal[i])
        gain = response(fit, x) - response(fit, cur)
        money = fmt.format
        if fit.channel in limits.fixed:
            reason = f"held fixed at {money(x)} as asked (marginal ROI there {m_new:.2f})"
        elif fit.curve is None:
            reason = (
                f"no response curve ({fit.fallback_reason}); ROI-proportional share at "
                f"historical ROI {fit.roi:.2f}"
            )
        else:
            reference = (
                f"against {lam:.2f} for the other channels at the optimum"
                if lam is not None
                else f"against {m_new:.2f} at the recommended {money(x)}"
            )
            if action == "increase":
                reason = (
                    f"marginal ROI {m_cur:.2f} at the current {money(cur)} {reference}; "
                    f"moving to {money(x)} adds {money(gain)} expected return"
                )
            elif action == "decrease":
                bound = " (held at its minimum)" if x <= plan.lower[i] * (1 + 1e-9) else ""
                reason = (
                    f"marginal ROI {m_cur:.2f} at the current {money(cur)} {reference}; "
                    f"moving to {money(x)}{bound} gives up {money(-gain)} expected return, "
                    f"which other channels more than make up"
                )
            else:
                reason = (
                    f"marginal ROI {m_cur:.2f} at the current {money(cur)} is already close to "
                    f"the optimum's {m_new:.2f}"
                )
        out.append(Recommendation(fit.channel, action, reason, cur, x, m_cur, m_new, gain))
    return out
