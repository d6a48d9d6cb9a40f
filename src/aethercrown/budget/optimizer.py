"""The globally optimal split of a budget across channels with fitted response curves.

Problem: maximise ``Σ f_i(x_i)`` subject to ``Σ x_i = B`` and ``lo_i ≤ x_i ≤ hi_i``, where each
``f_i`` is concave (exponential, Hill with k ≤ 1) or S-shaped (Hill with k > 1: convex up to its
inflection point, concave after). With S-shaped curves the problem is not concave and a gradient
method started once stops at whichever local optimum is nearest.

Method (exact to a stated tolerance):

1. **Concave envelope relaxation.** Replace each ``f_i`` on ``[lo_i, hi_i]`` by its concave
   envelope ``ĝ_i``: the chord from ``lo_i`` to the tangent ("knee") point ``t_i`` where a line
   from ``(lo_i, f(lo_i))`` touches the curve, then the curve itself. The relaxed problem is
   concave and separable, so its optimum equalises marginal returns: for a Lagrange multiplier
   λ each channel takes ``x_i(λ) = argmax ĝ_i(x) − λx`` (``lo_i`` if λ exceeds the envelope
   slope, else the root of ``f_i'(x) = λ`` on the concave branch, clipped to ``hi_i``). ``Σ
   x_i(λ)`` is monotone in λ; its breakpoints are located by bisection over the sorted
   breakpoint list and λ between two breakpoints by safeguarded Newton (log–log Newton for the
   inner roots, closed form for the exponential). Its value is an upper bound on the true optimum.
2. **Branch and bound.** Where the relaxed solution sits on a chord (``f < ĝ`` there; generically
   one channel), the interval of that channel is split at its value and both halves are solved
   again (best-first). The relaxed solution is always feasible for the true problem, so every node
   also gives a lower bound; search stops when the best lower bound is within ``rel_tol`` of the
   highest remaining upper bound. The answer carries that certified upper bound.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from aethercrown.budget.curves import HILL, ResponseCurve

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

TINY = 1e-300


class CurveArrays:
    """Vectorised parameters of many curves (Hill or exponential)."""

    def __init__(
        self,
        hill: BoolArray,
        beta: FloatArray,
        scale: FloatArray,
        shape: FloatArray,
        inflection: FloatArray | None = None,
    ):
        self.hill = hill
        self.beta = beta
        self.scale = scale
        self.shape = np.where(hill, shape, 1.0)
        self.all_hill = bool(hill.all())
        self.no_hill = not bool(hill.any())
        s = self.shape
        if inflection is None:
            inflection = np.where(
                hill & (s > 1), scale * np.power(np.maximum(s - 1, 0) / (s + 1), 1 / s), 0.0
            )
        self.inflection = inflection

    @classmethod
    def of(cls, curves: list[ResponseCurve]) -> CurveArrays:
        return cls(
            np.array([c.family == HILL for c in curves], dtype=bool),
            np.array([c.beta for c in curves], dtype=float),
            np.array([c.scale for c in curves], dtype=float),
            np.array([c.shape for c in curves], dtype=float),
        )

    def take(self, idx: NDArray[np.intp] | BoolArray) -> CurveArrays:
        return CurveArrays(
            self.hill[idx],
            self.beta[idx],
            self.scale[idx],
            self.shape[idx],
            self.inflection[idx],
        )

    def __len__(self) -> int:
        return len(self.beta)

    def _mix(self, hill_part: FloatArray | None, exp_part: FloatArray | None) -> FloatArray:
        if hill_part is None:
            return exp_part if exp_part is not None else np.zeros(len(self.beta))
        if exp_part is None:
            return hill_part
        return np.where(self.hill, hill_part, exp_part)

    def value(self, x: FloatArray) -> FloatArray:
        x = np.maximum(x, 0.0)
        h = e = None
        if not self.no_hill:
            u = np.power(x / self.scale, self.shape)
            h = self.beta * u / (1.0 + u)
        if not self.all_hill:
            e = self.beta * -np.expm1(-x / self.scale)
        return self._mix(h, e)

    def slope(self, x: FloatArray) -> FloatArray:
        x = np.maximum(x, TINY)
        h = e = None
        if not self.no_hill:
            u = np.power(x / self.scale, self.shape)
            h = self.beta * self.shape * u / (x * (1.0 + u) ** 2)
        if not self.all_hill:
            e = self.beta / self.scale * np.exp(-x / self.scale)
        return self._mix(h, e)

    def slope_and_curvature(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        x = np.maximum(x, TINY)
        hs = hc = es = ec = None
        if not self.no_hill:
            k = self.shape
            u = np.power(x / self.scale, k)
            hs = self.beta * k * u / (x * (1.0 + u) ** 2)
            hc = hs / (x * (1.0 + u)) * ((k - 1.0) - (k + 1.0) * u)
        if not self.all_hill:
            es = self.beta / self.scale * np.exp(-x / self.scale)
            ec = -es / self.scale
        return self._mix(hs, es), self._mix(hc, ec)

    def slope_root(
        self, lam: float, lo: FloatArray, hi: FloatArray, guess: FloatArray | None = None
    ) -> FloatArray:
        """x in [lo, hi] with f'(x) = lam, for curves concave and decreasing in slope there
        (callers guarantee f'(lo) ≥ lam ≥ f'(hi))."""
        out = np.empty(len(lo))
        if not self.all_hill:
            e = ~self.hill
            with np.errstate(divide="ignore"):
                root = self.scale[e] * np.log(self.beta[e] / (self.scale[e] * lam))
            out[e] = np.clip(root, lo[e], hi[e])
            if self.no_hill:
                return out
        h = self.hill if not self.all_hill else slice(None)
        out[h] = _hill_slope_root(
            lam,
            self.beta[h],
            self.scale[h],
            self.shape[h],
            lo[h],
            hi[h],
            None if guess is None else guess[h],
        )
        return out


def _hill_slope_root(
    lam: float,
    beta: FloatArray,
    scale: FloatArray,
    k: FloatArray,
    lo: FloatArray,
    hi: FloatArray,
    guess: FloatArray | None = None,
) -> FloatArray:
    """Newton on ln f'(x) = ln λ in ln x (nearly linear for Hill), kept inside a bisection
    bracket so that it cannot leave [lo, hi]."""
    a = np.log(np.maximum(lo, hi * 1e-12 + TINY))
    b = np.log(np.maximum(hi, TINY))
    target = math.log(lam)
    log_scale = np.log(scale)
    # ln f'(x) − ln λ = c + (k − 1)·y − 2·ln(1 + u), with y = ln x and u = (x/K)^k.
    c = np.log(beta * k) - k * log_scale - target
    km1 = k - 1.0
    if guess is None:
        # The power-law tail f'(x) ≈ β k K^k x^{−k−1} (x ≫ K) as the start.
        start = (np.log(beta * k) + k * log_scale - target) / (k + 1.0)
    else:
        start = np.log(np.maximum(guess, TINY))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # A root beyond an end of the bracket (e.g. below the smallest spend considered) is that
        # end: close the bracket there instead of bisecting towards it.
        g_a = c + km1 * a - 2.0 * np.log1p(np.exp(k * (a - log_scale)))
        g_b = c + km1 * b - 2.0 * np.log1p(np.exp(k * (b - log_scale)))
        b = np.where(g_a <= 0, a, b)
        a = np.where(g_b >= 0, b, a)
        y = np.clip(start, a, b)
        for _ in range(60):
            u = np.exp(k * (y - log_scale))
            g = c + km1 * y - 2.0 * np.log1p(u)
            # Done where f'(x) matches λ to 1e-12 (relative) or the bracket has closed (a root
            # at, or by rounding just beyond, an end of the bracket).
            if bool(np.all((np.abs(g) < 1e-12) | (b - a < 1e-13 * np.maximum(1.0, np.abs(y))))):
                break
            dg = km1 - 2.0 * k * u / (1.0 + u)  # d ln f'/d ln x, < 0 on the concave branch
            right = g > 0  # f' decreasing: the root lies to the right
            a = np.where(right, y, a)
            b = np.where(right, b, y)
            y_new = y - g / dg
            inside = (y_new >= a) & (y_new <= b)
            y = np.where(inside, y_new, 0.5 * (a + b))
    return np.asarray(np.clip(np.exp(y), lo, hi))


@dataclass
class Envelope:
    """The concave envelope of each curve on its [lo, hi]."""

    lo: FloatArray
    hi: FloatArray
    knee: FloatArray  # where the chord from lo meets the curve (= lo when concave there)
    slope: FloatArray  # the envelope's slope on the chord (= f'(lo) when concave)
    f_lo: FloatArray
    slope_hi: FloatArray  # f'(hi)


def envelope(curves: CurveArrays, lo: FloatArray, hi: FloatArray) -> Envelope:
    knee = lo.copy()
    f_lo = curves.value(lo)
    slope_lo = curves.slope(lo)
    slope = slope_lo.copy()
    sig = curves.inflection > lo
    if sig.any():
        idx = np.flatnonzero(sig)
        sub = curves.take(idx)
        lo_s, hi_s, flo = lo[idx], hi[idx], f_lo[idx]
        p = np.minimum(curves.inflection[idx], hi_s)

        def excess(t: FloatArray) -> FloatArray:
            # f'(t)(t − lo) − (f(t) − f(lo)): ≥ 0 until the tangent point, < 0 after.
            return np.asarray(sub.slope(t) * (t - lo_s) - (sub.value(t) - flo))

        chord = excess(hi_s) >= 0
        # Safeguarded Newton on the excess (its derivative is f''(t)(t − lo) < 0 past p).
        a, b = p.copy(), hi_s.copy()
        # From the origin the Hill tangent point is K(k − 1)^{1/k}; from lo > 0 it lies beyond.
        k = sub.shape
        from_origin = sub.scale * np.power(np.maximum(k - 1.0, TINY), 1.0 / k)
        t = np.clip(np.maximum(from_origin, p), a, b)
        for _ in range(200):
            h = excess(t)
            a = np.where(h >= 0, t, a)
            b = np.where(h >= 0, b, t)
            _, curv = sub.slope_and_curvature(t)
            dh = curv * (t - lo_s)
            newton = t - h / np.where(dh < 0, dh, -1.0)
            bad = (dh >= 0) | (newton <= a) | (newton >= b)
            t_new = np.where(bad, 0.5 * (a + b), newton)
            if np.all(np.abs(t_new - t) <= 1e-14 * t) or np.all(b - a <= 1e-15 * b):
                t = t_new
                break
            t = t_new
        t = np.where(chord, hi_s, t)
        knee[idx] = t
        width = np.maximum(t - lo_s, TINY)
        slope[idx] = np.where(t > lo_s, (sub.value(t) - flo) / width, slope_lo[idx])
    return Envelope(lo, hi, knee, slope, f_lo, curves.slope(hi))


def envelope_value(curves: CurveArrays, env: Envelope, x: FloatArray) -> FloatArray:
    on_chord = x < env.knee
    chord = env.f_lo + env.slope * (x - env.lo)
    return np.where(on_chord, chord, curves.value(x))


def _response(
    curves: CurveArrays,
    env: Envelope,
    lam: float,
    ties_on: bool,
    guess: FloatArray | None = None,
) -> tuple[FloatArray, BoolArray]:
    """Each channel's argmax of ĝ(x) − λx; returns x and which channels are interior."""
    on = env.slope >= lam if ties_on else env.slope > lam
    at_hi = on & (env.slope_hi >= lam)
    interior = on & ~at_hi
    x = np.where(at_hi, env.hi, env.lo)
    if interior.any():
        idx = np.flatnonzero(interior)
        x[idx] = curves.take(idx).slope_root(
            lam, env.knee[idx], env.hi[idx], None if guess is None else guess[idx]
        )
    return x, interior


@dataclass
class Relaxed:
    x: FloatArray
    upper_bound: float
    multiplier: float


def solve_relaxed(curves: CurveArrays, env: Envelope, budget: float) -> Relaxed:
    """The optimum of Σ ĝ_i(x_i) with Σ x_i = budget (budget within [Σlo, Σhi])."""
    total_lo, total_hi = float(env.lo.sum()), float(env.hi.sum())
    if budget >= total_hi * (1 - 1e-15):
        x = env.hi.copy()
        return Relaxed(x, float(envelope_value(curves, env, x).sum()), float(env.slope_hi.min()))
    if budget <= total_lo * (1 + 1e-15):
        x = env.lo.copy()
        return Relaxed(x, float(envelope_value(curves, env, x).sum()), float(env.slope.max()))

    def total(lam: float, ties_on: bool = True) -> float:
        return float(_response(curves, env, lam, ties_on)[0].sum())

    # Σx(λ) is continuous except where a chord switches on (a jump at the chord's slope): bisect
    # over those jump points, then solve the smooth piece around λ*.
    jumps = env.slope[(env.knee > env.lo) & np.isfinite(env.slope)]
    finite = env.slope[np.isfinite(env.slope)]
    top = float(finite.max()) * 2 if len(finite) else 1.0
    while total(top) > budget:
        top *= 4
    positive_hi = env.slope_hi[env.slope_hi > 0]
    bottom = float(positive_hi.min()) / 2 if len(positive_hi) else top * 1e-12
    while total(bottom) < budget and bottom > TINY:
        bottom /= 4
    points = np.concatenate([[top], np.unique(jumps[(jumps < top) & (jumps > bottom)])[::-1]])
    points = np.concatenate([points, [bottom]])
    # Smallest j with total(points[j]) ≥ budget (totals grow with j; the last is ≥ budget).
    lo_j, hi_j = 1, len(points) - 1
    while lo_j < hi_j:
        mid = (lo_j + hi_j) // 2
        if total(float(points[mid])) >= budget:
            hi_j = mid
        else:
            lo_j = mid + 1
    j = lo_j
    lam_at = float(points[j])
    x_on, _ = _response(curves, env, lam_at, True)
    x_off, _ = _response(curves, env, lam_at, False)
    if x_off.sum() <= budget:
        # λ* is this breakpoint: channels whose chord slope equals it take the remainder.
        x = x_off.copy()
        remainder = budget - float(x.sum())
        for i in np.flatnonzero(x_on > x_off):
            take = min(remainder, float(x_on[i] - x_off[i]))
            x[i] += take
            remainder -= take
        x = _settle(x, env, budget)
        return Relaxed(x, float(envelope_value(curves, env, x).sum()), lam_at)
    # λ* lies strictly between points[j] and points[j-1], where the total is smooth.
    lam_lo, lam_hi = lam_at, float(points[j - 1])
    lam = math.sqrt(lam_lo * lam_hi)
    x = x_off
    previous_excess = math.inf
    for _ in range(200):
        x, interior = _response(curves, env, lam, False, x)
        excess = float(x.sum()) - budget
        if abs(excess) <= 1e-13 * max(budget, 1.0):
            break
        if excess > 0:
            lam_lo = lam
        else:
            lam_hi = lam
        idx = np.flatnonzero(interior)
        _, curv = curves.take(idx).slope_and_curvature(x[idx])
        # dΣx/dλ = Σ 1/f''(x_i) over interior channels (negative).
        derivative = float(np.sum(1.0 / np.minimum(curv, -TINY)))
        candidate = lam - excess / derivative if derivative < 0 else math.nan
        # Newton while it converges; a geometric bisection whenever the excess stops halving.
        if not (lam_lo < candidate < lam_hi) or abs(excess) > 0.5 * previous_excess:
            candidate = math.sqrt(lam_lo * lam_hi)
        previous_excess = abs(excess)
        if lam_hi - lam_lo <= 1e-15 * lam_hi:
            break
        lam = candidate
    x = _settle(x, env, budget)
    return Relaxed(x, float(envelope_value(curves, env, x).sum()), lam)


def _settle(x: FloatArray, env: Envelope, budget: float) -> FloatArray:
    """Spread the last rounding residual over channels with room, so Σx equals the budget."""
    x = np.clip(x, env.lo, env.hi)
    for _ in range(3):
        residual = budget - float(x.sum())
        if residual == 0.0:
            break
        room = env.hi - x if residual > 0 else x - env.lo
        total_room = float(room.sum())
        if total_room <= 0:
            break
        x = np.clip(x + residual * room / total_room, env.lo, env.hi)
    return x


@dataclass
class Allocation:
    x: FloatArray
    value: float
    upper_bound: float  # certified: no feasible split returns more
    nodes: int

    @property
    def gap(self) -> float:
        return max(self.upper_bound - self.value, 0.0) / max(abs(self.upper_bound), TINY)


def maximise(
    curves: CurveArrays,
    lo: FloatArray,
    hi: FloatArray,
    budget: float,
    *,
    rel_tol: float = 1e-9,
    max_nodes: int = 5000,
) -> Allocation:
    """The split of ``budget`` maximising total return within [lo, hi] (Σlo ≤ budget ≤ Σhi)."""
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    free = hi > lo
    x_all = lo.copy()
    fixed_total = float(lo[~free].sum())
    if not free.any():
        value = float(curves.value(x_all).sum())
        return Allocation(x_all, value, value, 0)
    sub = curves.take(np.flatnonzero(free)) if not free.all() else curves
    fixed_value = 0.0
    if not free.all():
        fixed_value = float(curves.take(np.flatnonzero(~free)).value(lo[~free]).sum())
    remaining = budget - fixed_total

    root = envelope(sub, lo[free].copy(), hi[free].copy())
    relaxed = solve_relaxed(sub, root, remaining)
    best_x = relaxed.x
    best_value = float(sub.value(best_x).sum())
    counter = 0
    heap: list[tuple[float, int, Envelope, FloatArray]] = [
        (-relaxed.upper_bound, counter, root, relaxed.x)
    ]
    nodes = 1
    # The highest bound of any node set aside (pruned, or solved exactly by its relaxation).
    set_aside = best_value
    exhausted = False

    def close_enough(bound: float) -> bool:
        return bound - best_value <= rel_tol * max(abs(best_value), TINY)

    while heap:
        neg_ub, _, env, x = heapq.heappop(heap)
        if close_enough(-neg_ub):
            set_aside = max(set_aside, -neg_ub)  # and every node left has a lower bound
            break
        gaps = envelope_value(sub, env, x) - sub.value(x)
        i = int(np.argmax(gaps))
        if gaps[i] <= 0 or not (env.lo[i] < x[i] < env.hi[i]):
            set_aside = max(set_aside, -neg_ub)
            continue
        if nodes >= max_nodes:
            heapq.heappush(heap, (neg_ub, -1, env, x))
            exhausted = True
            break
        for lo_i, hi_i in ((env.lo[i], x[i]), (x[i], env.hi[i])):
            child = _with_interval(sub, env, i, float(lo_i), float(hi_i))
            solved = solve_relaxed(sub, child, remaining)
            nodes += 1
            value = float(sub.value(solved.x).sum())
            if value > best_value:
                best_value, best_x = value, solved.x
            if close_enough(solved.upper_bound):
                set_aside = max(set_aside, solved.upper_bound)
            else:
                counter += 1
                heapq.heappush(heap, (-solved.upper_bound, counter, child, solved.x))
    upper_bound = max(set_aside, best_value)
    if exhausted and heap:
        upper_bound = max(upper_bound, -min(item[0] for item in heap))
    x_all[free] = best_x
    return Allocation(x_all, best_value + fixed_value, upper_bound + fixed_value, nodes)


def _with_interval(
    curves: CurveArrays, env: Envelope, i: int, lo_i: float, hi_i: float
) -> Envelope:
    lo = env.lo.copy()
    hi = env.hi.copy()
    lo[i], hi[i] = lo_i, hi_i
    one = envelope(curves.take(np.array([i])), lo[i : i + 1], hi[i : i + 1])
    knee, slope, f_lo, slope_hi = (
        env.knee.copy(),
        env.slope.copy(),
        env.f_lo.copy(),
        env.slope_hi.copy(),
    )
    knee[i], slope[i], f_lo[i], slope_hi[i] = (
        one.knee[0],
        one.slope[0],
        one.f_lo[0],
        one.slope_hi[0],
    )
    return Envelope(lo, hi, knee, slope, f_lo, slope_hi)


def best_at_margin(
    curves: CurveArrays, lo: FloatArray, hi: FloatArray, margin: float
) -> FloatArray:
    """Per channel, the spend in [lo, hi] maximising f(x) − margin·x: spend while the next unit
    returns at least ``margin``. Exact: channels are independent once the budget is free."""
    candidates = [lo, hi]
    start = np.maximum(lo, np.minimum(curves.inflection, hi))
    interior = (curves.slope(start) > margin) & (curves.slope(hi) < margin)
    root = hi.copy()
    if interior.any():
        idx = np.flatnonzero(interior)
        root[idx] = curves.take(idx).slope_root(margin, start[idx], hi[idx])
    candidates.append(root)
    stacked = np.vstack(candidates)
    gains = np.vstack([curves.value(c) - margin * c for c in candidates])
    return np.asarray(stacked[np.argmax(gains, axis=0), np.arange(len(lo))])
