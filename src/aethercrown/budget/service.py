"""Budget optimisation: gathers the history (request rows or stored data), runs the planner, shapes
the answer, and keeps the automated allocations in the decision ledger. Never commits."""

from __future__ import annotations

import hashlib
import itertools
import statistics
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from aethercrown.budget import planner, repository, robust, schemas
from aethercrown.budget.curves import ChannelFit, ResponseCurve
from aethercrown.budget.repository import (
    DECISION_KIND,
    DecisionRepository,
    FitCacheRepository,
    MarketingRepository,
)
from aethercrown.clock import utcnow
from aethercrown.core.errors import InvalidInput, field_error
from aethercrown.core.ledger import record_decision, record_outcome
from aethercrown.core.models import Decision
from aethercrown.webhooks.service import enqueue_webhook

MODEL = "aethercrown.budget.grid-posterior"
MODEL_VERSION = "2"
# The webhook (and alert) each daily allocation sends.
ALLOCATION_EVENT = "budget.allocation.recorded"
ROBUST_METHOD = (
    "per-channel grid posterior over Hill/exponential curves with carry-over (weekly conversion "
    "counts, quasi-Poisson, priced at revenue per conversion; or weekly returns, normal), "
    "trusted up to the highest spend sustained for a week and flat beyond; weak fits held at "
    "current spend; the split maximising the 97.5% lower bound of the gain over the current "
    "split, candidates solved exactly on a spend grid by dynamic programming"
)
METHOD = (
    "fitted Hill/exponential response curves with geometric carry-over; concave-envelope "
    "relaxation solved by marginal-return equalisation, branch and bound on S-shaped channels"
)
# Decimal places the allocations are rounded to (minor units: whole units).
AS_GIVEN_RESOLUTION = 0.01
MINOR_RESOLUTION = 1.0
CURVE_POINTS = 12
# Each channel costs a curve fit with bootstrap; bound the work one request can ask for.
MAX_CHANNELS = 200


@dataclass
class History:
    channels: list[planner.ChannelHistory]
    period_days: int
    money: str  # as_given | minor
    currency: str | None
    first: date
    last: date
    rows: int


def _invalid(loc: Sequence[str | int], message: str) -> InvalidInput:
    return InvalidInput(message, [field_error(list(loc), message)])


def _assemble(
    points: Mapping[str, Mapping[date, tuple[float, float]]],
    money: str,
    currency: str | None,
    rows: int,
    counts: Mapping[str, Mapping[date, float]] | None = None,
) -> History:
    all_days = sorted({d for series in points.values() for d in series})
    gaps = [(b - a).days for a, b in itertools.pairwise(all_days)]
    period = max(1, round(statistics.median(gaps))) if gaps else 1
    channels = []
    for name in sorted(points):
        series = points[name]
        days = sorted(series)
        consecutive = all((b - a).days == period for a, b in itertools.pairwise(days))
        channels.append(
            planner.ChannelHistory(
                name,
                [series[d][0] for d in days],
                [series[d][1] for d in days],
                consecutive,
                days if period == 1 else None,
                [counts[name][d] for d in days] if counts and name in counts else None,
            )
        )
    return History(channels, period, money, currency, all_days[0], all_days[-1], rows)


def history_from_rows(rows: Sequence[schemas.HistoryRow], objective: str) -> History:
    if not rows:
        raise _invalid(["historical_data"], "historical_data has no rows")
    points: dict[str, dict[date, tuple[float, float]]] = defaultdict(dict)
    counts: dict[str, dict[date, float]] = defaultdict(dict)
    uncounted: set[str] = set()
    for i, row in enumerate(rows):
        value = row.revenue if objective == "revenue" else row.conversions
        if value is None:
            raise _invalid(
                ["historical_data", i, objective],
                f"row {i} ({row.channel}, {row.date}) has no {objective}; the objective is "
                f"{objective}",
            )
        spend, ret = points[row.channel].get(row.date, (0.0, 0.0))
        points[row.channel][row.date] = (spend + row.spend, ret + value)
        if objective == "revenue" and row.conversions is not None:
            counts[row.channel][row.date] = counts[row.channel].get(row.date, 0.0) + row.conversions
        else:
            uncounted.add(row.channel)
    known = {name: series for name, series in counts.items() if name not in uncounted}
    return _assemble(points, "as_given", None, len(rows), known)


def history_from_store(
    session: Session, tenant_id: uuid.UUID, window_days: int, end: date | None, objective: str
) -> History:
    repo = MarketingRepository(session, tenant_id)
    last = end or repo.latest_day()
    if last is None:
        raise _invalid(
            ["historical_data"],
            "no historical_data given and the tenant has no stored marketing data",
        )
    first = last - timedelta(days=window_days - 1)
    stored = repo.points_between(first, last)
    if not stored:
        raise _invalid(
            ["window_days"], f"the tenant has no marketing data between {first} and {last}"
        )
    currencies = sorted({r.currency for r in stored})
    if len(currencies) > 1:
        raise _invalid(
            ["window_days"],
            f"the window mixes currencies {', '.join(currencies)}; amounts cannot be compared",
        )
    points: dict[str, dict[date, tuple[float, float]]] = defaultdict(dict)
    counts: dict[str, dict[date, float]] = defaultdict(dict)
    for r in stored:
        ret = r.attributed_revenue if objective == "revenue" else r.conversions
        points[r.channel][r.day] = (float(r.spend), float(ret))
        counts[r.channel][r.day] = float(r.conversions)
    return _assemble(
        points, "minor", currencies[0], len(stored), counts if objective == "revenue" else None
    )


def _select_channels(history: History, wanted: list[str] | None) -> None:
    if wanted is None:
        return
    known = {c.channel for c in history.channels}
    for i, name in enumerate(wanted):
        if name not in known:
            raise _invalid(["channels", i], f"channel {name!r} has no rows in the data")
    history.channels = [c for c in history.channels if c.channel in set(wanted)]


def _limits(body: schemas.OptimizeRequest, names: set[str], periods: float) -> planner.Limits:
    for name in body.channel_limits:
        if name not in names:
            raise _invalid(["channel_limits", name], f"channel {name!r} has no rows in the data")
    for name in body.fixed:
        if name not in names:
            raise _invalid(["fixed", name], f"fixed channel {name!r} has no rows in the data")
    for name, amount in body.fixed.items():
        limit = body.channel_limits.get(name)
        if limit and (
            (limit.min_amount is not None and amount < limit.min_amount)
            or (limit.max_amount is not None and amount > limit.max_amount)
        ):
            raise _invalid(["fixed", name], f"fixed amount of {name} is outside its limits")
    limits = body.channel_limits
    return planner.Limits(
        min_share=body.min_share,
        channel_min_share={n: v.min_share for n, v in limits.items() if v.min_share is not None},
        min_amount={
            n: v.min_amount / periods for n, v in limits.items() if v.min_amount is not None
        },
        max_amount={
            n: v.max_amount / periods for n, v in limits.items() if v.max_amount is not None
        },
        fixed={n: v / periods for n, v in body.fixed.items()},
    )


def optimize(
    session: Session, tenant_id: uuid.UUID, body: schemas.OptimizeRequest
) -> schemas.OptimizeResult:
    if body.historical_data is not None:
        history = history_from_rows(body.historical_data, body.objective)
    else:
        history = history_from_store(
            session, tenant_id, body.window_days, body.end_date, body.objective
        )
    return plan_from_history(history, body, cache=FitCacheRepository(session, tenant_id))


def plan_from_history(
    history: History,
    body: schemas.OptimizeRequest,
    seed: int = 0,
    cache: FitCacheRepository | None = None,
) -> schemas.OptimizeResult:
    _select_channels(history, body.channels)
    if len(history.channels) > MAX_CHANNELS:
        raise _invalid(
            ["channels"],
            f"{len(history.channels)} channels; at most {MAX_CHANNELS} can be fitted in one "
            "request (choose them with `channels`)",
        )
    horizon = body.horizon_days or history.period_days
    periods = horizon / history.period_days
    limits = _limits(body, {c.channel for c in history.channels}, periods)
    if body.target_marginal_roi is None and body.target_roas is None:
        assert body.total_budget is not None
        posteriors = fit_posteriors(history, cache)
        try:
            return shape_robust(
                posteriors,
                history,
                limits,
                body.total_budget / periods,
                periods,
                horizon,
                body.interval,
            )
        except planner.PlanError as exc:
            raise _invalid(exc.field.split("."), exc.message) from exc
    fits = planner.fit_all(history.channels, body.bootstrap, seed)
    cap = body.total_budget / periods if body.total_budget is not None else None
    try:
        if body.target_marginal_roi is not None:
            plan = planner.at_target_margin(
                fits, body.target_marginal_roi, limits, cap=cap, interval=body.interval
            )
        elif body.target_roas is not None:
            plan = planner.at_target_roas(
                fits, body.target_roas, limits, cap=cap, interval=body.interval
            )
        else:
            assert cap is not None
            plan = planner.optimise(fits, cap, limits, interval=body.interval)
    except planner.PlanError as exc:
        raise _invalid(exc.field.split("."), exc.message) from exc
    return shape(plan, history, limits, periods, horizon, body.interval)


def fit_posteriors(
    history: History, cache: FitCacheRepository | None = None
) -> list[robust.ChannelPosterior]:
    """Each channel's grid posterior, read from the cache when its data is unchanged.

    On daily gap-free history the channels share a yearly season fitted from all of them, so a
    channel's fit depends on the others' data too: its cache key covers the whole history."""
    shared = _season_days(history)
    context = ""
    if shared is not None:
        digest = hashlib.sha256()
        for c in history.channels:
            digest.update(
                robust.fingerprint(
                    c.channel, c.spend, [*c.returns, *(c.counts or [])], True, 1
                ).encode()
            )
        context = f"season:{digest.hexdigest()}"
    keys = [
        robust.fingerprint(
            c.channel,
            c.spend,
            [*c.returns, *(c.counts or [])],
            c.consecutive,
            history.period_days,
            context,
        )
        for c in history.channels
    ]
    cached = cache.payloads(keys) if cache is not None else {}
    out: list[robust.ChannelPosterior] = []
    fresh: list[tuple[str, str, dict[str, Any]]] = []
    season: list[float] | None = None
    if shared is not None and any(key not in cached for key in keys):
        cos, sin = robust.fit_season(
            shared,
            [robust.SeasonSeries(c.spend, c.returns, c.counts) for c in history.channels],
        )
        season = robust.season_multipliers(shared, cos, sin).tolist()
    for i, (c, key) in enumerate(zip(history.channels, keys, strict=True)):
        if key in cached:
            out.append(robust.ChannelPosterior.from_dict(cached[key]))
            continue
        post = robust.fit_channel(
            c.channel,
            c.spend,
            c.returns,
            consecutive=c.consecutive,
            period_days=history.period_days,
            counts=c.counts,
            seed=i,
            season=season,
        )
        out.append(post)
        fresh.append((key, c.channel, post.to_dict()))
    if cache is not None:
        cache.store(fresh)
    return out


def _season_days(history: History) -> list[date] | None:
    """The days of a daily, gap-free history whose channels all cover the same days — what a
    shared yearly season is fitted on — or None."""
    if history.period_days != 1 or not history.channels:
        return None
    first = history.channels[0].days
    if first is None:
        return None
    for c in history.channels:
        if not c.consecutive or c.days is None or list(c.days) != list(first):
            return None
    return list(first)


def shape_robust(
    posteriors: list[robust.ChannelPosterior],
    history: History,
    limits: planner.Limits,
    budget: float,
    periods: float,
    horizon: int,
    interval: float,
) -> schemas.OptimizeResult:
    """The split maximising the lower bound of the gain over the current split, as an answer."""
    stand_ins = [
        ChannelFit(p.channel, p.blocks, 1.0, 0.0, p.current) for p in posteriors
    ]  # bounds() reads only the channel names
    lower, upper = planner.bounds(stand_ins, budget, limits)
    fixed = [p.channel in limits.fixed for p in posteriors]
    plan = robust.optimise(posteriors, budget, lower, upper, fixed=fixed, interval=interval)
    fmt = _money_format(history)
    names = plan.channels
    split = _splitter(history, names, budget * periods, periods)
    allocations = split(plan.allocation)
    expected = plan.expected * periods
    roi = _historical_roi(history, names)
    weights = roi / roi.sum() if roi.sum() > 0 else np.full(len(names), 1.0 / len(names))
    proportional = planner._fill(lower, upper, weights, budget)

    def comparison(x: np.ndarray) -> schemas.SplitComparison:
        value = sum(p.mean(float(a)) for p, a in zip(posteriors, x, strict=True)) * periods
        return _comparison(split(x), value, expected)

    answers = [
        _robust_channel(
            p, i, plan, fixed[i], allocations[p.channel], float(roi[i]), periods, fmt, interval
        )
        for i, p in enumerate(posteriors)
    ]
    return schemas.OptimizeResult(
        allocations=allocations,
        recommendations=[recommendation for recommendation, _ in answers],
        total_budget=sum(allocations.values()),
        expected_return=_expected_return(plan, budget, periods, interval),
        marginal_roi={n: float(m) for n, m in zip(names, plan.marginal, strict=True)},
        comparison={
            "current_split": comparison(plan.current),
            "proportional_rule": comparison(proportional),
        },
        channels=[channel for _, channel in answers],
        scenario={"kind": "budget"},
        units=_units(
            history,
            horizon,
            periods,
            "allocations, expected return and comparisons cover horizon_days; curve points, "
            "trusted_max_spend and current_spend_per_period are per period of the history; ",
        ),
        optimizer=schemas.OptimizerOut(
            method=ROBUST_METHOD,
            upper_bound=expected,
            relative_gap=0.0,
            nodes=robust.DP_STEPS,
        ),
        data_window=_data_window(history),
        confidence=robust.confidence(plan, posteriors, fmt, periods),
        gain_over_current=schemas.GainOut(
            value=plan.gain_mean * periods,
            low=plan.gain_low * periods,
            high=plan.gain_high * periods,
            interval=interval,
            probability_positive=plan.gain_positive,
        ),
    )


def _robust_channel(
    p: robust.ChannelPosterior,
    i: int,
    plan: robust.RobustPlan,
    fixed: bool,
    allocated: float,
    historical_roi: float,
    periods: float,
    fmt: str,
    interval: float,
) -> tuple[schemas.Recommendation, schemas.ChannelOut]:
    """Channel ``i``'s recommendation, with its reason in words, and its fit and curve."""
    money = fmt.format
    x, cur = float(plan.allocation[i]), float(plan.current[i])
    change = x - cur
    band = planner.MAINTAIN_BAND * max(cur, x, 1e-12)
    action = "maintain" if abs(change) <= band else ("increase" if change > 0 else "decrease")
    m_cur, m_new = p.marginal(cur), float(plan.marginal[i])
    gain = p.mean(x) - p.mean(cur)
    if fixed:
        reason = f"held fixed at {money(x * periods)} as asked"
    elif p.weak:
        reason = f"held at its current spend: {p.weak_reason}"
    elif action == "maintain":
        reason = (
            "kept near its current spend: no move is better than it with enough certainty "
            f"(marginal ROI {m_cur:.2f} there)"
        )
    else:
        reason = (
            f"marginal ROI {m_cur:.2f} at the current {money(cur * periods)}, {m_new:.2f} at "
            f"{money(x * periods)}; the move {'adds' if gain >= 0 else 'gives up'} "
            f"{money(abs(gain) * periods)} expected return"
        )
        if plan.beyond_trusted[i] or x >= p.trusted_max * 0.98:
            reason += (
                f" (at the edge of its trusted range, {money(p.trusted_max)} a period: "
                "no further return is credited)"
            )
    recommendation = schemas.Recommendation(
        channel=p.channel,
        action=action,
        reason=reason,
        current_amount=cur * periods,
        recommended_amount=allocated,
        change=allocated - cur * periods,
        marginal_roi_current=m_cur,
        marginal_roi_recommended=m_new,
        expected_return_change=gain * periods,
    )
    channel = schemas.ChannelOut(
        channel=p.channel,
        model=str(p.representative()["family"]),
        fallback=p.weak,
        fallback_reason=p.weak_reason,
        parameters={**p.representative(), "draws": len(p.beta)},
        fit=schemas.FitOut(r2=p.r2, mape=None, points=p.blocks),
        historical_roi=historical_roi,
        current_spend_per_period=p.current,
        marginal_roi=m_new,
        curve=_posterior_points(p, x, interval),
        trusted_max_spend=p.trusted_max,
        held=plan.held[i],
        beyond_trusted=plan.beyond_trusted[i],
    )
    return recommendation, channel


def _expected_return(
    plan: planner.Plan | robust.RobustPlan, budget: float, periods: float, interval: float
) -> schemas.ExpectedReturn:
    """A plan's expected return (and its interval) over the horizon; its ROAS per period."""
    return schemas.ExpectedReturn(
        value=plan.expected * periods,
        low=plan.expected_low * periods,
        high=plan.expected_high * periods,
        interval=interval,
        roas=plan.expected / budget if budget > 0 else None,
    )


def _money_format(history: History) -> str:
    return "{:,.0f}" if history.money == "minor" else "{:,.2f}"


def _splitter(
    history: History, names: Sequence[str], total: float, periods: float
) -> Callable[[np.ndarray], dict[str, float]]:
    """Per-period amounts to amounts over the horizon, per channel, rounded to the money's
    resolution and summing to ``total``."""
    resolution = MINOR_RESOLUTION if history.money == "minor" else AS_GIVEN_RESOLUTION

    def split(x: np.ndarray) -> dict[str, float]:
        return dict(zip(names, _round_split(x * periods, total, resolution), strict=True))

    return split


def _comparison(
    allocations: dict[str, float], value: float, expected: float
) -> schemas.SplitComparison:
    """Another split (its expected return ``value``) against the recommended one's."""
    return schemas.SplitComparison(
        allocations=allocations,
        expected_return=value,
        uplift=expected - value,
        uplift_percent=(expected - value) / value * 100 if value > 0 else None,
    )


def _historical_roi(history: History, names: Sequence[str]) -> np.ndarray:
    series = {c.channel: c for c in history.channels}
    return np.array(
        [
            sum(series[n].returns) / sum(series[n].spend) if sum(series[n].spend) > 0 else 0.0
            for n in names
        ]
    )


def _units(history: History, horizon: int, periods: float, note: str) -> schemas.Units:
    return schemas.Units(
        money=history.money,
        currency=history.currency,
        period_days=history.period_days,
        horizon_days=horizon,
        periods=periods,
        note=note + schemas.MONEY_UNITS,
    )


def _data_window(history: History) -> dict[str, Any]:
    return {
        "first": history.first.isoformat(),
        "last": history.last.isoformat(),
        "rows": history.rows,
    }


def _posterior_points(
    post: robust.ChannelPosterior, chosen: float, interval: float
) -> list[schemas.CurvePoint]:
    top = max(2.0 * chosen, post.trusted_max, 1e-9)
    spends = np.linspace(0.0, top, CURVE_POINTS)
    draws = post.values(spends)
    tail = (1 - interval) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail], axis=0)
    mean = draws.mean(axis=0)
    return [
        schemas.CurvePoint(
            spend=float(x),
            response=float(m),
            low=min(float(lo), float(m)),
            high=max(float(hi), float(m)),
        )
        for x, m, lo, hi in zip(spends, mean, low, high, strict=True)
    ]


def _round_split(values: np.ndarray, total: float, resolution: float) -> list[float]:
    """Largest-remainder rounding to ``resolution`` that keeps the rounded total."""
    units = values / resolution
    floors = np.floor(units + 1e-9)
    target = round(total / resolution)
    short = target - int(floors.sum())
    order = np.argsort(-(units - floors))
    for i in order[: max(short, 0)]:
        floors[i] += 1
    return [round(float(v) * resolution, 10) for v in floors]


def shape(
    plan: planner.Plan,
    history: History,
    limits: planner.Limits,
    periods: float,
    horizon: int,
    interval: float,
) -> schemas.OptimizeResult:
    split = _splitter(history, plan.channels, plan.budget * periods, periods)
    allocations = split(plan.allocation)
    recs = planner.recommend(plan, limits, fmt=_money_format(history))
    expected = plan.expected * periods
    channels = [
        _fitted_channel(fit, float(plan.marginal[i]), float(plan.allocation[i]))
        for i, fit in enumerate(plan.fits)
    ]
    return schemas.OptimizeResult(
        allocations=allocations,
        recommendations=[_recommendation(r, allocations[r.channel], periods) for r in recs],
        total_budget=sum(allocations.values()),
        expected_return=_expected_return(plan, plan.budget, periods, interval),
        marginal_roi={c: float(m) for c, m in zip(plan.channels, plan.marginal, strict=True)},
        comparison={
            "current_split": _comparison(
                split(plan.current), plan.current_expected * periods, expected
            ),
            "proportional_rule": _comparison(
                split(plan.proportional), plan.proportional_expected * periods, expected
            ),
        },
        channels=channels,
        scenario=plan.scenario,
        units=_units(
            history,
            horizon,
            periods,
            "allocations, expected return and comparisons cover horizon_days; curve points "
            "and current_spend_per_period are per period of the history; ",
        ),
        optimizer=schemas.OptimizerOut(
            method=METHOD,
            upper_bound=plan.upper_bound * periods,
            relative_gap=max(plan.upper_bound - plan.expected, 0.0)
            / max(abs(plan.upper_bound), 1e-300),
            nodes=plan.nodes,
        ),
        data_window=_data_window(history),
    )


def _fitted_channel(fit: ChannelFit, marginal_roi: float, chosen: float) -> schemas.ChannelOut:
    """One channel's fitted curve (or why it fell back to ROI-proportional) and its points."""
    return schemas.ChannelOut(
        channel=fit.channel,
        model=fit.curve.family if fit.curve else "roi_proportional_fallback",
        fallback=fit.curve is None,
        fallback_reason=fit.fallback_reason,
        parameters=(
            {**fit.curve.as_dict(), "seasonality_adjusted": fit.season_adjusted}
            if fit.curve
            else None
        ),
        fit=schemas.FitOut(
            r2=fit.quality.r2 if fit.quality else None,
            mape=fit.quality.mape if fit.quality else None,
            points=fit.points,
        ),
        historical_roi=fit.roi,
        current_spend_per_period=fit.mean_spend,
        marginal_roi=marginal_roi,
        curve=_curve_points(fit, chosen),
    )


def _recommendation(
    r: planner.Recommendation, allocated: float, periods: float
) -> schemas.Recommendation:
    """The planner's per-period recommendation over the horizon, against the rounded split."""
    return schemas.Recommendation(
        channel=r.channel,
        action=r.action,
        reason=r.reason,
        current_amount=r.current_amount * periods,
        recommended_amount=allocated,
        change=allocated - r.current_amount * periods,
        marginal_roi_current=r.marginal_roi_current,
        marginal_roi_recommended=r.marginal_roi_recommended,
        expected_return_change=r.expected_change * periods,
    )


def _curve_points(fit: Any, chosen: float) -> list[schemas.CurvePoint]:
    if fit.curve is None:
        return []
    top = max(2.0 * chosen, max(fit.spend_series, default=0.0), 1e-9)
    out = []
    for x in np.linspace(0.0, top, CURVE_POINTS):
        value = fit.curve.at(float(x))
        reps = [r.at(float(x)) for r in fit.replicates] or [value]
        low, high = np.percentile(reps, [5, 95])
        out.append(
            schemas.CurvePoint(
                spend=float(x),
                response=value,
                low=min(float(low), value),
                high=max(float(high), value),
            )
        )
    return out


# ---- closing the loop: the daily allocation and its realised outcome ---------------------------


def record_daily_allocation(
    session: Session, tenant_id: uuid.UUID, period_start: datetime, window_days: int = 548
) -> dict[str, Any]:
    """Close out earlier allocations whose day now has data, then allocate ``period_start``'s
    day: the current daily spend level re-split optimally from the window before it."""
    day = period_start.date()
    closed = close_out(session, tenant_id, max(utcnow().date(), day))
    decisions = DecisionRepository(session, tenant_id)
    if decisions.for_period(day.isoformat()) is not None:
        return {"closed": closed, "skipped": f"an allocation for {day} exists"}
    try:
        history = history_from_store(
            session, tenant_id, window_days, day - timedelta(days=1), "revenue"
        )
    except InvalidInput as exc:
        return {"closed": closed, "skipped": exc.detail}
    if history.period_days != 1:
        return {"closed": closed, "skipped": "stored marketing data is not daily"}
    budget = sum(statistics.fmean(c.spend) for c in history.channels)
    if budget <= 0:
        return {"closed": closed, "skipped": "no spend in the window"}
    body = schemas.OptimizeRequest(total_budget=budget, horizon_days=1)
    try:
        result = plan_from_history(history, body, cache=FitCacheRepository(session, tenant_id))
    except InvalidInput as exc:
        return {"closed": closed, "skipped": exc.detail}
    output = {
        "period_start": day.isoformat(),
        "period_end": day.isoformat(),
        "allocations": result.allocations,
        "total_budget": result.total_budget,
        "expected_return": result.expected_return.model_dump(),
        "currency": history.currency,
        "units": "minor",
        "curves": {
            c.channel: c.parameters if c.parameters else {"roi": c.historical_roi}
            for c in result.channels
        },
    }
    decision = record_decision(
        session,
        tenant_id=tenant_id,
        kind=DECISION_KIND,
        subject_type="marketing_budget",
        subject_id=day.isoformat(),
        inputs={
            "window": [history.first.isoformat(), history.last.isoformat()],
            "series": {c.channel: [c.spend, c.returns] for c in history.channels},
        },
        output=output,
        model=MODEL,
        model_version=MODEL_VERSION,
        predicted_value=result.expected_return.value,
    )
    session.flush()
    enqueue_webhook(
        session,
        tenant_id,
        ALLOCATION_EVENT,
        {
            "decision_id": str(decision.id),
            "period": day.isoformat(),
            "allocations": result.allocations,
            "expected_return": result.expected_return.value,
            "currency": history.currency,
            "units": "minor",
        },
        decision_id=decision.id,
    )
    return {
        "closed": closed,
        "decision_id": str(decision.id),
        "period": day.isoformat(),
        "allocations": result.allocations,
        "expected_return": result.expected_return.value,
        "currency": history.currency,
    }


def _response_at(curve: Mapping[str, Any], spend: float) -> float:
    if "family" in curve:
        c = ResponseCurve(
            str(curve["family"]),
            float(curve["beta"]),
            float(curve["scale"]),
            float(curve["shape"]),
            float(curve.get("adstock", 0.0)),
        )
        trusted = curve.get("trusted_max")
        return c.at(min(spend, float(trusted)) if trusted is not None else spend)
    return float(curve.get("roi", 0.0)) * spend


def close_out(session: Session, tenant_id: uuid.UUID, today: date) -> int:
    """Record realised return next to the prediction for every open allocation whose days are
    over by ``today`` and have data for each allocated channel (or data after them, before
    today: the period is over). Nothing dated today or later is read, so a replay of the past
    with every row already stored closes each allocation as it would have been closed then."""
    marketing = MarketingRepository(session, tenant_id)
    closed = 0
    for decision in DecisionRepository(session, tenant_id).open_allocations():
        first = date.fromisoformat(decision.output["period_start"])
        last = date.fromisoformat(decision.output["period_end"])
        if last >= today:
            continue
        rows = marketing.between(first, last)
        channels = set(decision.output.get("allocations", {}))
        seen = {r.channel for r in rows}
        if not rows or not (channels <= seen or marketing.has_rows_between(last, today)):
            continue
        spend: dict[str, float] = defaultdict(float)
        revenue: dict[str, float] = defaultdict(float)
        for r in rows:
            spend[r.channel] += r.spend
            revenue[r.channel] += r.attributed_revenue
        curves = decision.output.get("curves", {})
        days = (last - first).days + 1
        at_actual = sum(
            _response_at(curves[c], spend[c] / days) * days for c in curves if c in spend
        )
        realised = float(sum(revenue.values()))
        record_outcome(
            decision,
            {
                "realised_return": realised,
                "realised_spend": float(sum(spend.values())),
                "realised_by_channel": {
                    c: {"spend": spend[c], "return": revenue[c]} for c in sorted(spend)
                },
                "predicted_return": decision.predicted_value,
                "predicted_at_actual_spend": at_actual,
            },
            outcome_value=realised,
        )
        closed += 1
    return closed


def allocation_record(decision: Decision) -> schemas.AllocationRecord:
    out = decision.output or {}
    outcome = decision.outcome or {}

    def day(key: str) -> date | None:
        return date.fromisoformat(out[key]) if key in out else None

    return schemas.AllocationRecord(
        id=decision.id,
        created_at=decision.created_at,
        period_start=day("period_start"),
        period_end=day("period_end"),
        allocations=out.get("allocations", {}),
        total_budget=out.get("total_budget"),
        predicted_return=decision.predicted_value,
        realised_return=decision.outcome_value,
        realised_spend=outcome.get("realised_spend"),
        outcome_at=decision.outcome_at,
        model=decision.model,
        model_version=decision.model_version,
        actor=decision.actor,
    )


def recent_allocations(
    session: Session, tenant_id: uuid.UUID, limit: int
) -> list[schemas.AllocationRecord]:
    """The latest daily allocations, newest first, with predicted and realised return."""
    repo = DecisionRepository(session, tenant_id)
    return [
        allocation_record(d) for d in repo.newest(Decision.created_at, limit, repo.allocations())
    ]


class _ReadOnlyFitCache(FitCacheRepository):
    """The fit cache for a read: stored fits are reused, new ones are not stored (the daily
    allocation job stores them in its own write unit)."""

    def store(self, rows: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
        return None


def plan_fingerprint(session: Session, tenant_id: uuid.UUID) -> list[str]:
    """Changes whenever ``current_plan`` could, so a reader may keep the plan meanwhile."""
    return [str(part) for part in repository.plan_fingerprint(session, tenant_id)]


def plan_from(payload: dict[str, Any]) -> schemas.OptimizeResult:
    """A plan kept as JSON (``OptimizeResult.model_dump(mode="json")``) read back."""
    return schemas.OptimizeResult.model_validate(payload)


def observed_points(
    session: Session, tenant_id: uuid.UUID, window_days: int = 548
) -> dict[str, list[tuple[str, float, float]]]:
    """The history ``current_plan`` fits, per channel: each period's (first day, spend,
    return), oldest first, in the stored minor units; empty without stored marketing data."""
    try:
        history = history_from_store(session, tenant_id, window_days, None, "revenue")
    except InvalidInput:
        return {}
    out: dict[str, list[tuple[str, float, float]]] = {}
    for c in history.channels:
        days = [d.isoformat() for d in c.days] if c.days else [""] * len(c.spend)
        out[c.channel] = [
            (d, float(x), float(y)) for d, x, y in zip(days, c.spend, c.returns, strict=True)
        ]
    return out


def current_plan(
    session: Session, tenant_id: uuid.UUID, window_days: int = 548
) -> schemas.OptimizeResult | None:
    """Today's recommendation as the daily allocation computes it (the current daily spend
    level re-split over the stored history), or None without daily marketing data. Reads
    only: for a page."""
    try:
        history = history_from_store(session, tenant_id, window_days, None, "revenue")
    except InvalidInput:
        return None
    if history.period_days != 1:
        return None
    total = sum(statistics.fmean(c.spend) for c in history.channels)
    if total <= 0:
        return None
    body = schemas.OptimizeRequest(total_budget=total, horizon_days=1)
    try:
        return plan_from_history(history, body, cache=_ReadOnlyFitCache(session, tenant_id))
    except InvalidInput:
        return None
