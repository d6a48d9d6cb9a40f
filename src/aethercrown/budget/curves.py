"""Response curves of marketing spend, fitted from a channel's history.

A channel's return in one period is ``f(a_t)`` where ``a_t`` is the *adstocked* spend: a geometric
carry-over ``a_t = (1 - θ)·x_t + θ·a_{t-1}``. The carry-over is normalised so that a steady spend
``x`` per period gives ``a = x``: the steady-state return of spending ``x`` every period is then
``f(x)`` itself, which is what the optimiser allocates on.

Families:

* Hill ``f(x) = β·u/(1+u)``, ``u = (x/K)^k``: concave for ``k ≤ 1``, S-shaped (convex, then
  concave past the inflection point) for ``k > 1``;
* exponential saturation ``f(x) = β·(1 − e^{−x/λ})``: concave.

Fitting is nonlinear least squares (``scipy.optimize.least_squares``, several starts per family
and carry-over rate; the model with the lowest AIC wins), with a residual bootstrap for the
uncertainty and in-sample R² / MAPE as the fit-quality figures. A channel whose history cannot
support a curve (too few periods, no spend variation, or a curve that explains nothing) is
reported as a fallback and handled by the ROI-proportional rule; no curve is invented for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import least_squares, minimize_scalar
from scipy.stats import f as f_distribution

FloatArray = NDArray[np.float64]

HILL = "hill"
EXPONENTIAL = "exponential"
FAMILIES = (HILL, EXPONENTIAL)

# A curve needs at least this many periods with data, ...
MIN_POINTS = 8
# ... spend that varies (coefficient of variation) and takes several distinct values, ...
MIN_SPEND_CV = 0.05
MIN_DISTINCT_SPEND = 4
# ... and must explain at least this share of the return's variance.
MIN_R2 = 0.1
# ... and beat "spend has no effect" in an F-test at this level (strict: several fits are tried).
MAX_P_VALUE = 0.01
# Carry-over rates tried when the history is a gap-free daily or weekly series long enough.
ADSTOCK_GRID = (0.0, 0.3, 0.5, 0.7, 0.85)
MAX_ADSTOCK = 0.95
# Day-of-week / yearly factors are fitted on gap-free daily series at least this long.
MIN_POINTS_FOR_SEASONALITY = 56
SEASONAL_ROUNDS = 2
MIN_POINTS_FOR_ADSTOCK = 28
HILL_SHAPE_BOUNDS = (0.5, 6.0)


@dataclass(frozen=True)
class ResponseCurve:
    """``family`` with saturation level ``beta`` (return per period as spend grows without
    bound), ``scale`` (Hill's half-saturation K or the exponential's λ, in spend units),
    ``shape`` (Hill's k; 1 for the exponential) and the carry-over rate ``adstock``."""

    family: str
    beta: float
    scale: float
    shape: float = 1.0
    adstock: float = 0.0

    def value(self, x: float | FloatArray) -> FloatArray:
        return np.asarray(hill_or_exp_value(self.family, self.beta, self.scale, self.shape, x))

    def slope(self, x: float | FloatArray) -> FloatArray:
        return np.asarray(hill_or_exp_slope(self.family, self.beta, self.scale, self.shape, x))

    def at(self, x: float) -> float:
        return float(self.value(x))

    def slope_at(self, x: float) -> float:
        return float(self.slope(x))

    @property
    def inflection(self) -> float:
        """Spend where the curve turns from convex to concave (0 when concave throughout)."""
        if self.family == HILL and self.shape > 1:
            return self.scale * ((self.shape - 1) / (self.shape + 1)) ** (1 / self.shape)
        return 0.0

    @property
    def s_shaped(self) -> bool:
        return self.family == HILL and self.shape > 1

    def as_dict(self) -> dict[str, float | str]:
        return {
            "family": self.family,
            "beta": self.beta,
            "scale": self.scale,
            "shape": self.shape,
            "adstock": self.adstock,
        }


def hill_or_exp_value(
    family: str, beta: float, scale: float, shape: float, x: float | FloatArray
) -> FloatArray:
    x = np.maximum(np.asarray(x, dtype=float), 0.0)
    if family == HILL:
        u = np.power(x / scale, shape)
        return np.asarray(beta * u / (1.0 + u))
    return np.asarray(beta * -np.expm1(-x / scale))


def hill_or_exp_slope(
    family: str, beta: float, scale: float, shape: float, x: float | FloatArray
) -> FloatArray:
    x = np.maximum(np.asarray(x, dtype=float), 1e-300)
    if family == HILL:
        u = np.power(x / scale, shape)
        return np.asarray(beta * shape * u / (x * (1.0 + u) ** 2))
    return np.asarray(beta / scale * np.exp(-x / scale))


def adstock(spend: FloatArray, rate: float) -> FloatArray:
    """Normalised geometric carry-over; starts in steady state at the first period's spend."""
    if rate == 0.0:
        return spend.astype(float)
    out = np.empty(len(spend), dtype=float)
    level = float(spend[0]) if len(spend) else 0.0
    for i, x in enumerate(spend):
        level = (1.0 - rate) * float(x) + rate * level
        out[i] = level
    return out


@dataclass(frozen=True)
class FitQuality:
    r2: float
    mape: float | None  # mean absolute percentage error over periods with a positive return
    points: int
    aic: float | None = None


@dataclass
class ChannelFit:
    """What the history of one channel supports: a curve with uncertainty, or a fallback."""

    channel: str
    points: int
    total_spend: float
    total_return: float
    mean_spend: float  # per period: the channel's current level
    curve: ResponseCurve | None = None
    quality: FitQuality | None = None
    # Bootstrap replicates of the curve (same family and carry-over), for intervals.
    replicates: list[ResponseCurve] = field(default_factory=list)
    fallback_reason: str | None = None
    season_adjusted: bool = False
    # The history itself (per period), kept for the fallback's ROI interval.
    spend_series: list[float] = field(default_factory=list)
    return_series: list[float] = field(default_factory=list)

    @property
    def is_fallback(self) -> bool:
        return self.curve is None

    @property
    def roi(self) -> float:
        return self.total_return / self.total_spend if self.total_spend > 0 else 0.0


def _model(family: str, params: FloatArray, x: FloatArray) -> FloatArray:
    if family == HILL:
        return hill_or_exp_value(HILL, params[0], params[1], params[2], x)
    return hill_or_exp_value(EXPONENTIAL, params[0], params[1], 1.0, x)


def _jacobian(family: str, params: FloatArray, x: FloatArray) -> FloatArray:
    x = np.maximum(x, 0.0)
    if family == HILL:
        beta, scale, shape = params
        ratio = x / scale
        u = np.power(ratio, shape)
        common = beta / (1.0 + u) ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            log_ratio = np.where(x > 0, np.log(np.where(x > 0, ratio, 1.0)), 0.0)
        return np.column_stack([u / (1.0 + u), -common * shape * u / scale, common * u * log_ratio])
    beta, scale = params
    decay = np.exp(-x / scale)
    return np.column_stack([-np.expm1(-x / scale), -beta * decay * x / scale**2])


def _starts(family: str, x_scale: float, y_scale: float) -> list[list[float]]:
    if family == HILL:
        return [
            [y_scale * b, x_scale * kk, k]
            for b, kk, k in ((2.0, 1.0, 1.0), (1.5, 0.7, 2.5), (4.0, 3.0, 1.0), (1.2, 0.5, 4.0))
        ]
    return [[y_scale * b, x_scale * lam] for b, lam in ((2.0, 1.0), (1.2, 0.4), (5.0, 4.0))]


def _bounds(family: str, x: FloatArray, y: FloatArray) -> tuple[list[float], list[float]]:
    x_max = float(np.max(x))
    x_pos = float(np.min(x[x > 0])) if np.any(x > 0) else x_max
    y_top = max(float(np.max(y)), 1e-9)
    if family == HILL:
        return (
            [1e-12, x_pos * 1e-2, HILL_SHAPE_BOUNDS[0]],
            [y_top * 1e3, x_max * 1e3, HILL_SHAPE_BOUNDS[1]],
        )
    return ([1e-12, x_pos * 1e-2], [y_top * 1e3, x_max * 1e3])


def _least_squares(
    family: str, x: FloatArray, y: FloatArray, starts: list[list[float]]
) -> tuple[FloatArray, float] | None:
    lower, upper = _bounds(family, x, y)
    best: tuple[FloatArray, float] | None = None
    for start in starts:
        p0 = np.clip(np.asarray(start, dtype=float), lower, upper)
        p0 = np.where(p0 <= np.asarray(lower), np.asarray(lower) * 1.0001 + 1e-12, p0)
        try:
            result = least_squares(
                lambda p: _model(family, p, x) - y,
                p0,
                jac=lambda p: _jacobian(family, p, x),
                bounds=(lower, upper),
                x_scale="jac",
                max_nfev=400,
            )
        except (ValueError, FloatingPointError):
            continue
        rss = float(np.sum(result.fun**2))
        if math.isfinite(rss) and (best is None or rss < best[1]):
            best = (result.x, rss)
    return best


def _curve(family: str, params: FloatArray, rate: float) -> ResponseCurve:
    if family == HILL:
        return ResponseCurve(HILL, float(params[0]), float(params[1]), float(params[2]), rate)
    return ResponseCurve(EXPONENTIAL, float(params[0]), float(params[1]), 1.0, rate)


def fit_channel(
    channel: str,
    spend: FloatArray,
    returns: FloatArray,
    *,
    consecutive: bool,
    bootstrap: int = 40,
    seed: int = 0,
    calendar: tuple[FloatArray, FloatArray] | None = None,
) -> ChannelFit:
    """Fit one channel's curve from per-period spend and return (same order, oldest first).

    ``consecutive`` says the periods form a gap-free series, so that carry-over can be fitted;
    ``calendar`` (weekday 0–6 and day of year of each period, daily data) lets day-of-week and
    yearly seasonality be separated from the spend's effect."""
    spend = np.asarray(spend, dtype=float)
    returns = np.asarray(returns, dtype=float)
    n = len(spend)
    total_spend = float(spend.sum())
    fit = ChannelFit(
        channel=channel,
        points=n,
        total_spend=total_spend,
        total_return=float(returns.sum()),
        mean_spend=total_spend / n if n else 0.0,
        spend_series=[float(v) for v in spend],
        return_series=[float(v) for v in returns],
    )
    fit.fallback_reason = _unfittable(spend)
    if fit.fallback_reason is not None:
        return fit

    rates = ADSTOCK_GRID if consecutive and n >= MIN_POINTS_FOR_ADSTOCK else (0.0,)
    x_scale = float(np.median(spend[spend > 0])) if np.any(spend > 0) else 1.0
    y_scale = max(float(np.mean(returns)), 1e-9)
    tss = float(np.sum((returns - returns.mean()) ** 2))
    found = _search(spend, returns, rates, x_scale, y_scale)
    if found is None:
        fit.fallback_reason = "no curve could be fitted to this history"
        return fit
    family, rate, params, rss = found
    season = np.ones(n)
    if calendar is not None and consecutive and n >= MIN_POINTS_FOR_SEASONALITY:
        seasonal = _seasonal_fit(spend, returns, rates, x_scale, y_scale, found, calendar)
        if seasonal is not None:
            family, rate, params, season = seasonal
            fit.season_adjusted = True
    rss = float(np.sum((returns - _model(family, params, adstock(spend, rate)) * season) ** 2))
    r2 = 1.0 - rss / tss if tss > 0 else 0.0
    fit.fallback_reason = _insignificant(r2, n, len(params) + (1 if rate else 0))
    if fit.fallback_reason is not None:
        return fit
    x = adstock(spend, rate)
    curve_only = _model(family, params, x)
    fitted = curve_only * season
    positive = returns > 0
    mape = (
        float(np.mean(np.abs(returns[positive] - fitted[positive]) / returns[positive]))
        if positive.any()
        else None
    )
    aic = n * math.log(max(rss, 1e-300) / n) + 2 * (len(params) + (1 if rate else 0))
    fit.curve = _curve(family, params, rate)
    fit.quality = FitQuality(r2=r2, mape=mape, points=n, aic=aic)
    fit.replicates = _bootstrap(
        family, rate, params, x, returns / season, curve_only, bootstrap, seed
    )
    return fit


def _unfittable(spend: FloatArray) -> str | None:
    """Why no curve can be fitted to this spend (too few periods, too little variation)."""
    n = len(spend)
    if n < MIN_POINTS:
        return f"only {n} periods of data; a curve needs at least {MIN_POINTS}"
    mean = float(spend.mean())
    cv = float(spend.std() / mean) if mean > 0 else 0.0
    distinct = len(np.unique(np.round(spend, 9)))
    if mean <= 0 or cv < MIN_SPEND_CV or distinct < MIN_DISTINCT_SPEND:
        return (
            f"spend barely varies (coefficient of variation {cv:.3f}, {distinct} distinct "
            f"levels); a curve needs variation of at least {MIN_SPEND_CV} and "
            f"{MIN_DISTINCT_SPEND} levels"
        )
    return None


def _seasonal_fit(
    spend: FloatArray,
    returns: FloatArray,
    rates: tuple[float, ...],
    x_scale: float,
    y_scale: float,
    found: tuple[str, float, FloatArray, float],
    calendar: tuple[FloatArray, FloatArray],
) -> tuple[str, float, FloatArray, FloatArray] | None:
    """The curve and calendar factors fitted together, or None if they explain the returns no
    better than the curve alone (``found``).

    Alternates: calendar factors from the returns relative to the curve, then the curve on the
    returns with the calendar divided out (the curve is at average seasonality)."""
    s_family, s_rate, s_params, rss = found
    s_season = np.ones(len(spend))
    for _ in range(SEASONAL_ROUNDS):
        s_season = _seasonality(
            returns, _model(s_family, s_params, adstock(spend, s_rate)), calendar
        )
        refit = _search(
            spend, returns / s_season, rates, x_scale, y_scale, (s_family, s_rate, s_params)
        )
        if refit is not None:
            s_family, s_rate, s_params, _ = refit
    seasonal_fit = _model(s_family, s_params, adstock(spend, s_rate)) * s_season
    if float(np.sum((returns - seasonal_fit) ** 2)) < rss:
        return s_family, s_rate, s_params, s_season
    return None


def _insignificant(r2: float, n: int, parameters: int) -> str | None:
    """Why a fitted curve is not used: it explains too little, or no more than no effect."""
    if r2 < MIN_R2:
        return (
            f"the best curve explains {max(r2, 0.0):.0%} of the return's variance "
            f"(R² {r2:.3f} < {MIN_R2})"
        )
    p_value = _f_test(r2, n, parameters)
    if p_value > MAX_P_VALUE:
        return (
            f"the curve's fit (R² {r2:.3f}) is not distinguishable from spend having no effect "
            f"(F-test p = {p_value:.3f} > {MAX_P_VALUE})"
        )
    return None


def _search(
    spend: FloatArray,
    target: FloatArray,
    rates: tuple[float, ...],
    x_scale: float,
    y_scale: float,
    warm: tuple[str, float, FloatArray] | None = None,
) -> tuple[str, float, FloatArray, float] | None:
    """The best (family, carry-over rate, parameters, RSS) by AIC over the grid — or, given a
    warm start, that family refitted from its parameters — with the rate then refined."""
    n = len(spend)
    best: tuple[float, str, float, FloatArray, float] | None = None  # aic, family, rate, p, rss
    candidates = (
        [(rate, family, _starts(family, x_scale, y_scale)) for rate in rates for family in FAMILIES]
        if warm is None
        else [(warm[1], warm[0], [list(warm[2])])]
    )
    for rate, family, starts in candidates:
        found = _least_squares(family, adstock(spend, rate), target, starts)
        if found is None:
            continue
        params, rss = found
        aic = n * math.log(max(rss, 1e-300) / n) + 2 * (len(params) + (1 if rate else 0))
        if best is None or aic < best[0]:
            best = (aic, family, rate, params, rss)
    if best is None:
        return None
    _, family, rate, params, rss = best
    if len(rates) > 1:
        # The grid only brackets the carry-over rate: refine it around the winner, starting
        # each refit from the winner's parameters.
        refined = _refine_adstock(family, rate, params, spend, target)
        if refined is not None and refined[2] < rss:
            rate, params, rss = refined
    return family, rate, params, rss


def _seasonality(
    returns: FloatArray, fitted: FloatArray, calendar: tuple[FloatArray, FloatArray]
) -> FloatArray:
    """Multiplicative calendar factors: day of week (and a yearly cycle over ≥ 300 days), by
    least squares on log(return / curve), normalised to a geometric mean of one."""
    weekday, day_of_year = calendar
    # Where the curve predicts next to nothing the ratio says nothing about the calendar.
    floor = 0.05 * float(np.median(fitted[fitted > 0])) if np.any(fitted > 0) else 0.0
    ok = (returns > 0) & (fitted > floor)
    if ok.sum() < MIN_POINTS_FOR_SEASONALITY:
        return np.ones(len(returns))
    columns = [(weekday == d).astype(float) for d in range(7)]
    yearly = len(returns) >= 300
    if yearly:
        angle = 2 * np.pi * day_of_year / 365.25
        columns += [np.cos(angle), np.sin(angle)]
    design = np.column_stack(columns)
    coef, *_ = np.linalg.lstsq(design[ok], np.log(returns[ok] / fitted[ok]), rcond=None)
    weekly = coef[:7] - coef[:7].mean()
    log_factor = weekly[weekday.astype(int)]
    if yearly:
        log_factor = log_factor + coef[7] * np.cos(angle) + coef[8] * np.sin(angle)
    return np.asarray(np.exp(np.clip(log_factor, -1.0, 1.0)))


def _refine_adstock(
    family: str, rate: float, params: FloatArray, spend: FloatArray, returns: FloatArray
) -> tuple[float, FloatArray, float] | None:
    fitted: dict[float, tuple[FloatArray, float]] = {}

    def rss_at(r: float) -> float:
        found = _least_squares(family, adstock(spend, r), returns, [list(params)])
        if found is None:
            return math.inf
        fitted[r] = found
        return found[1]

    low, high = max(0.0, rate - 0.15), min(MAX_ADSTOCK, rate + 0.15)
    result = minimize_scalar(
        rss_at, bounds=(low, high), method="bounded", options={"xatol": 0.005, "maxiter": 20}
    )
    best_rate = float(result.x)
    if best_rate not in fitted:
        return None
    best_params, best_rss = fitted[best_rate]
    return best_rate, best_params, best_rss


def _f_test(r2: float, n: int, params: int) -> float:
    """p-value of the curve against a constant return (spend has no effect)."""
    if n <= params or r2 >= 1.0:
        return 0.0 if r2 >= 1.0 else 1.0
    statistic = (r2 / (params - 1)) / ((1.0 - r2) / (n - params))
    return float(f_distribution.sf(statistic, params - 1, n - params))


def _bootstrap(
    family: str,
    rate: float,
    params: FloatArray,
    x: FloatArray,
    y: FloatArray,
    fitted: FloatArray,
    count: int,
    seed: int,
) -> list[ResponseCurve]:
    """Residual bootstrap: refit on fitted + resampled residuals, starting from the fit."""
    rng = np.random.default_rng(seed)
    residuals = y - fitted
    replicates: list[ResponseCurve] = []
    for _ in range(count):
        y_star = fitted + rng.choice(residuals, size=len(residuals), replace=True)
        found = _least_squares(family, x, y_star, [list(params)])
        if found is not None:
            replicates.append(_curve(family, found[0], rate))
    return replicates
