"""The demo company: a SaaS business generated from known mechanisms (pure numpy, no database).

How it works, in order (every random draw comes from its own stream of one SeedSequence, so the
same seed gives the same company bit for bit):

1. **Marketing.** Seven channels with daily spend in flights (varied 0–3× a base, some paused
   days) so their curves are identifiable. Expected new customers a day = β·shape(adstock(spend))
   · seasonality (weekly and yearly), with Hill (some S-shaped) or exponential-saturation shapes
   and geometric adstock. The window's acquisitions are a multinomial draw over (channel, day)
   cells proportional to that rate — exactly independent Poisson counts conditioned on the total.
2. **Customers.** An existing base (signed up before the window) plus the acquired ones; plan mix
   by channel, annual plans, discounts, trials, seats (users).
3. **Latent health.** Per customer an AR(1) around a baseline, with a drifting decline for some
   and improvement for others. Everything observable (sessions, their length, feature breadth,
   tickets and their satisfaction, payment failures, usage) is drawn from it.
4. **Potential paths.** Activity, tickets, plan changes (driven by usage against plan capacity and
   by health), subscriptions, billing and payment failures are drawn for every day as if the
   customer never left.
5. **Churn.** The daily hazard exp(α + Σ β_k x_k) is a function of features computed from the
   potential data strictly before each day; the churn day is the first day the cumulative hazard
   passes an Exp(1) draw. Data before the churn day does not depend on it, so the hazard is
   exactly the one that generated the observed churn. Monthly plans end on the churn day; annual
   ones at the next anniversary (dormant meanwhile) — a renewal lost.
6. **Truncation and rows.** Everything after a customer's end is dropped; rows follow the data
   contract.

**The window** is ``[start, end)`` (``config.py``): whole days from ``start``, and, when ``end`` is
not a midnight, the part of ``end``'s day before it. Every draw is made on whole days (the last
day too, so the draws of a midnight end are those of the same window always had), then nothing
at or after ``end`` is kept: a session, ticket, payment, usage event or plan change after it did
not happen yet, a churn after it is not a churn, a subscription scheduled to end after it is open.
Acquisitions on a partial last day are drawn in proportion to the part of the day's acquisition
hours (08:00–20:00) that has passed, at times before ``end``. The marketing row of a partial day
is not emitted: a day's spend is reported once the day is over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from dateutil.relativedelta import relativedelta
from numpy.typing import NDArray

from aethercrown.simulate.config import SimConfig, iso_end
from aethercrown.simulate.curves import Curve, adstock
from aethercrown.simulate.rowtable import EPOCH_DAY, Column, RowTable
from aethercrown.simulate.truth import Truth, monthly_value

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

BURN_IN_DAYS = 60  # history simulated (and emitted) before the window for the existing base
# Acquisitions (signups) happen between these seconds of the day.
SIGNUP_HOURS = (8 * 3600, 20 * 3600)
DAY = 86_400
NEVER = 1 << 30  # a churn day that never comes

PLANS = ("starter", "professional", "enterprise")
PLAN_PRICE = np.array([2900, 9900, 49900])  # minor units a month; annual = 10× monthly
ANNUAL_MULTIPLIER = 10
ANNUAL_SHARE = np.array([0.12, 0.22, 0.45])
TRIAL_SHARE = np.array([0.40, 0.35, 0.0])  # of customers acquired inside the window
TRIAL_DAYS = 14
# Whether a trial converts: logistic in the customer's latent health on the trial's last day
# (P ≈ 0.6 on average, the usual range for card-up-front SaaS trials). One that does not converts
# cancels in the trial's last week, so it never pays.
TRIAL_CONVERSION_INTERCEPT = 0.1
TRIAL_CONVERSION_HEALTH = 1.5
TRIAL_CANCEL_WINDOW = (3600, 7 * DAY)  # seconds before the trial's end the cancellation lands
USERS_RANGE = ((1, 4), (3, 12), (8, 40))
SIZE_MEDIAN = np.array([12.0, 60.0, 600.0])
FAIL_BASE = np.array([0.06, 0.04, 0.02])  # first-attempt payment failure by plan
PERCENT_DISCOUNTS = np.array([10.0, 20.0, 25.0])
PERCENT_DISCOUNT_SHARE = 0.12
AMOUNT_DISCOUNT_SHARE = 0.04
AMOUNT_DISCOUNT = {"month": 1000, "year": 10000}

# Per-plan monthly capacities of the metered metrics (seats is a gauge of distinct users).
CAPACITY = {
    "api_calls": np.array([50_000.0, 500_000.0, 5_000_000.0]),
    "storage_gb": np.array([10.0, 100.0, 1000.0]),
    "compute_units": np.array([200.0, 2000.0, 20_000.0]),
    "seats": np.array([3.0, 15.0, 100.0]),
}

FEATURES = (
    "dashboards",
    "reports",
    "api",
    "integrations",
    "automations",
    "alerts",
    "exports",
    "sso",
    "audit_log",
    "workflows",
    "forecasting",
    "collaboration",
)

COUNTRIES = ("US", "GB", "DE", "FR", "CA", "AU", "NL", "IN", "BR", "JP", "SE", "ES")
COUNTRY_WEIGHTS = np.array([0.42, 0.1, 0.09, 0.06, 0.07, 0.05, 0.04, 0.05, 0.04, 0.03, 0.03, 0.02])

NAME_HEADS = (
    "Acme",
    "Blue",
    "Bright",
    "Cedar",
    "Delta",
    "Echo",
    "Flux",
    "Granite",
    "Harbor",
    "Iron",
    "Juniper",
    "Kite",
    "Lumen",
    "Maple",
    "Nimbus",
    "Orbit",
    "Pine",
    "Quartz",
    "River",
    "Summit",
    "Tidal",
    "Umbra",
    "Vertex",
    "Willow",
    "Zenith",
    "Atlas",
    "Nova",
)
NAME_TAILS = (
    "Labs",
    "Systems",
    "Analytics",
    "Works",
    "Cloud",
    "Logistics",
    "Health",
    "Retail",
    "Media",
    "Finance",
    "Robotics",
    "Foods",
    "Studio",
    "Networks",
    "Energy",
    "Bio",
)

TICKET_SUBJECTS = (
    "Cannot log in",
    "Export is slow",
    "Billing question",
    "API rate limit",
    "Integration broken",
    "Feature request",
    "Data looks wrong",
    "SSO setup",
    "Invoice copy",
    "Dashboard error",
)
FAIL_REASONS = ("card_declined", "insufficient_funds", "expired_card")

# name, base spend (minor units/day), curve kind, half-saturation as a share of base spend,
# slope, adstock carryover, relative weight, plan mix, CPM (minor units), CTR
CHANNEL_SPECS: tuple[
    tuple[str, float, str, float, float, float, float, tuple[float, float, float], float, float],
    ...,
] = (
    ("google_ads", 60_000, "hill", 0.9, 2.2, 0.3, 1.0, (0.55, 0.35, 0.10), 2500, 0.035),
    ("facebook_ads", 45_000, "hill", 1.1, 1.6, 0.5, 0.7, (0.75, 0.20, 0.05), 900, 0.012),
    ("linkedin_ads", 50_000, "hill", 1.4, 1.0, 0.4, 0.45, (0.25, 0.45, 0.30), 3500, 0.006),
    ("seo", 25_000, "exponential", 1.2, 1.0, 0.85, 0.6, (0.60, 0.30, 0.10), 300, 0.03),
    ("content", 20_000, "exponential", 1.25, 1.0, 0.75, 0.4, (0.50, 0.38, 0.12), 500, 0.02),
    ("events", 35_000, "hill", 1.7, 3.0, 0.6, 0.35, (0.20, 0.45, 0.35), 6000, 0.01),
    ("referral", 15_000, "exponential", 1.0, 1.0, 0.0, 0.5, (0.60, 0.30, 0.10), 400, 0.05),
)
EXISTING_MIX = np.array([0.55, 0.33, 0.12])

# Acquisition seasonality: Monday..Sunday, and a yearly cosine peaking in late January.
ACQ_WEEKLY = np.array([1.12, 1.15, 1.1, 1.05, 0.98, 0.82, 0.78])
ACQ_WEEKLY = ACQ_WEEKLY / ACQ_WEEKLY.mean()
ACQ_YEARLY_AMPLITUDE = 0.15
ACQ_YEARLY_PEAK_DOY = 25
# Activity seasonality: quiet weekends, a summer and year-end dip.
ACT_WEEKLY = np.array([1.0, 1.05, 1.05, 1.0, 0.9, 0.3, 0.25])
ACT_YEARLY_AMPLITUDE = 0.1
ACT_YEARLY_PEAK_DOY = 80

# The hazard: daily churn hazard = exp(intercept + Σ coefficient · feature), features computed
# from data strictly before the day.
HAZARD_COEFFICIENTS = {
    "weeks_since_last_login": 0.35,
    "log_sessions_30d": -0.45,
    "session_trend": -0.6,
    "avg_session_minutes_30d": -0.04,
    "feature_breadth_30d": -0.15,
    "tickets_60d": 0.15,
    "low_satisfaction_tickets_60d": 0.6,
    "payment_failures_60d": 1.1,
    "log_tenure_months": -0.35,
    "plan_starter": 0.4,
    "plan_enterprise": -0.5,
}
HAZARD_FEATURES = {
    "weeks_since_last_login": "min(days since the last login before the day, 60) / 7; "
    "signup counts as a login",
    "log_sessions_30d": "ln(1 + sessions in the 30 days before the day)",
    "session_trend": "ln((sessions in the last 14 days + 1) / (sessions in the 14 days "
    "before those + 1))",
    "avg_session_minutes_30d": "mean session duration in minutes over the last 30 days (0 if none)",
    "feature_breadth_30d": "distinct features used in the last 30 days",
    "tickets_60d": "support tickets opened in the last 60 days",
    "low_satisfaction_tickets_60d": "tickets opened in the last 60 days rated 1 or 2",
    "payment_failures_60d": "failed payment attempts in the last 60 days",
    "log_tenure_months": "ln(1 + days since signup / 30.44)",
    "plan_starter": "1 if the plan in force on the day is starter",
    "plan_enterprise": "1 if the plan in force on the day is enterprise",
}

STREAMS = (
    "marketing",
    "customers",
    "health",
    "usage",
    "plans",
    "sessions",
    "tickets",
    "billing",
    "churn",
    "experiments",
    "names",
    "dormancy",
    "trials",  # last, so the streams before it draw exactly what they drew without trials
)


@dataclass
class SimulatedCompany:
    config: SimConfig
    rows: dict[str, RowTable]
    truth: Truth

    # Kinds of the business-data contract, in an order where references resolve.
    CONTRACT_KINDS = ("customers", "subscriptions", "activity", "tickets", "payments", "marketing")

    def counts(self) -> dict[str, int]:
        return {kind: len(table) for kind, table in self.rows.items()}

    def summary(self) -> dict[str, Any]:
        months = sorted(self.truth.mrr_by_month)
        return {
            "customers": len(self.rows["customers"]),
            "churned": len(self.truth.churn),
            "mrr_now": self.truth.mrr_by_month[months[-1]] if months else 0,
            "window": [self.truth.start.isoformat(), iso_end(self.truth.end)],
            "rows": self.counts(),
        }


def _sigmoid(x: FloatArray) -> FloatArray:
    return 1.0 / (1.0 + np.exp(-x))


def _window_sum(cum: NDArray[Any], width: int) -> NDArray[Any]:
    """cum has a leading zero column (cum[:, t] = sum over days < t); the sum over [t-w, t)."""
    days = cum.shape[1] - 1
    t = np.arange(days)
    return cum[:, t] - cum[:, np.maximum(t - width, 0)]


def _cumulative(daily: NDArray[Any]) -> NDArray[Any]:
    out = np.zeros((daily.shape[0], daily.shape[1] + 1), dtype=np.float64)
    np.cumsum(daily, axis=1, out=out[:, 1:])
    return out


def _bincount2(rows: IntArray, cols: IntArray, shape: tuple[int, int], weights: Any = None) -> Any:
    flat = np.bincount(rows * shape[1] + cols, weights=weights, minlength=shape[0] * shape[1])
    return flat.reshape(shape)


def generate(config: SimConfig) -> SimulatedCompany:
    streams = np.random.SeedSequence(config.seed).spawn(len(STREAMS))
    rng = {name: np.random.default_rng(s) for name, s in zip(STREAMS, streams, strict=True)}

    end = config.end
    start = config.start
    # Whole days of the window, and the partial last day (seconds of it before the end) if any.
    full_days = (end.date() - start).days
    cut = int((end - datetime.combine(end.date(), datetime.min.time(), UTC)).total_seconds())
    window_days = full_days + (1 if cut else 0)
    origin = start - timedelta(days=BURN_IN_DAYS)
    days = BURN_IN_DAYS + window_days
    # The end in seconds from the origin's midnight: nothing is kept at or after it.
    horizon = (BURN_IN_DAYS + full_days) * DAY + cut
    epoch_day = origin.toordinal() - EPOCH_DAY + np.arange(days)  # days since 1970-01-01
    weekday = (epoch_day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    dates64 = np.datetime64("1970-01-01", "D") + epoch_day.astype("timedelta64[D]")
    day_of_year = (dates64 - dates64.astype("datetime64[Y]")).astype(np.int64)

    # ---- 1. marketing ------------------------------------------------------------------
    mk = rng["marketing"]
    n_channels = len(CHANNEL_SPECS)
    win = slice(BURN_IN_DAYS, days)
    acq_season = ACQ_WEEKLY[weekday[win]] * (
        1
        + ACQ_YEARLY_AMPLITUDE
        * np.cos(2 * np.pi * (day_of_year[win] - ACQ_YEARLY_PEAK_DOY) / 365.25)
    )
    spend = np.zeros((n_channels, window_days))
    shapes = np.zeros((n_channels, window_days))
    curves: list[Curve] = []
    for c, (_, base, kind, half, slope, carry, _w, _mix, _cpm, _ctr) in enumerate(CHANNEL_SPECS):
        # Flights of 10–42 days; their levels are stratified over 0.1–3× the base (each run of
        # six flights visits every stratum once), so each curve is seen across its whole range.
        level = np.empty(window_days)
        t = 0
        strata: list[float] = []
        while t < window_days:
            if not strata:
                edges = np.linspace(0.1, 3.0, 7)
                strata = list(mk.permutation(mk.uniform(edges[:-1], edges[1:])))
            length = int(mk.integers(10, 43))
            multiplier = strata.pop()
            level[t : t + length] = 0.0 if mk.random() < 0.08 else multiplier
            t += length
        noise = np.exp(mk.normal(0.0, 0.12, window_days))
        weekend = np.where(weekday[win] >= 5, 0.8, 1.0) if kind == "hill" else 1.0
        spend[c] = np.round(base * level * noise * weekend)
        curve = Curve(kind, 1.0, base * half, slope, carry)
        shapes[c] = curve.shape(adstock(spend[c], carry))
        curves.append(curve)
    weights = np.array([spec[6] for spec in CHANNEL_SPECS])
    raw_rate = weights[:, None] * shapes * acq_season[None, :]
    # A partial last day acquires only in the share of its signup hours already passed.
    signup_share = float(
        np.clip((cut - SIGNUP_HOURS[0]) / (SIGNUP_HOURS[1] - SIGNUP_HOURS[0]), 0, 1)
    )
    if cut:
        raw_rate[:, -1] *= signup_share
    n_existing = round(config.customers * config.existing_share)
    n_new = config.customers - n_existing
    scale = n_new / raw_rate.sum() if raw_rate.sum() > 0 else 0.0
    betas = weights * scale
    curves = [
        Curve(cv.kind, float(b), cv.half_saturation, cv.slope, cv.carryover)
        for cv, b in zip(curves, betas, strict=True)
    ]
    acquired = mk.multinomial(n_new, (raw_rate / raw_rate.sum()).ravel()).reshape(raw_rate.shape)

    # ---- 2. customers ------------------------------------------------------------------
    cr = rng["customers"]
    cell = np.repeat(np.arange(acquired.size), acquired.ravel())
    new_channel = cell // window_days
    new_signup = BURN_IN_DAYS + cell % window_days
    existing_signup = BURN_IN_DAYS - cr.integers(60, 1100, n_existing)
    signup = np.concatenate([existing_signup, new_signup]).astype(np.int64)
    channel_idx = np.concatenate([cr.integers(0, n_channels, n_existing), new_channel])
    is_new = np.concatenate([np.zeros(n_existing, bool), np.ones(n_new, bool)])
    order = np.lexsort((channel_idx, signup))  # chronological ids
    signup, channel_idx, is_new = signup[order], channel_idx[order], is_new[order]
    n = config.customers
    mixes = np.array([spec[7] for spec in CHANNEL_SPECS])
    plan_probs = np.where(is_new[:, None], mixes[channel_idx], EXISTING_MIX[None, :])
    plan0 = (cr.random(n)[:, None] > np.cumsum(plan_probs, axis=1)).sum(axis=1)
    plan0 = np.minimum(plan0, 2)
    annual = cr.random(n) < ANNUAL_SHARE[plan0]
    interval = np.where(annual, "year", "month")
    u = cr.random(n)
    discount_percent = np.where(
        u < PERCENT_DISCOUNT_SHARE, PERCENT_DISCOUNTS[cr.integers(0, 3, n)], 0.0
    )
    has_amount_discount = (u >= PERCENT_DISCOUNT_SHARE) & (
        u < PERCENT_DISCOUNT_SHARE + AMOUNT_DISCOUNT_SHARE
    )
    discount_amount = np.where(
        has_amount_discount, np.where(annual, AMOUNT_DISCOUNT["year"], AMOUNT_DISCOUNT["month"]), 0
    )
    trial = is_new & (cr.random(n) < TRIAL_SHARE[plan0])
    lo = np.array([r[0] for r in USERS_RANGE])[plan0]
    hi = np.array([r[1] for r in USERS_RANGE])[plan0]
    users = cr.integers(lo, hi + 1)
    company_size = np.maximum(1, np.round(SIZE_MEDIAN[plan0] * np.exp(cr.normal(0, 0.7, n))))
    annual_revenue = np.round(company_size * 15_000_000 * np.exp(cr.normal(0, 0.5, n)))
    country = cr.choice(len(COUNTRIES), n, p=COUNTRY_WEIGHTS / COUNTRY_WEIGHTS.sum())
    signup_offset = cr.integers(SIGNUP_HOURS[0], SIGNUP_HOURS[1], n)
    if cut:
        # Signups of the partial last day fall in its hours before the end (same draws, scaled).
        last = signup == days - 1
        signup_offset[last] = SIGNUP_HOURS[0] + (
            (signup_offset[last] - SIGNUP_HOURS[0]) * signup_share
        ).astype(np.int64)
    signup_seconds = signup * DAY + signup_offset

    # ---- 3. latent health --------------------------------------------------------------
    hr = rng["health"]
    day_grid = np.arange(days)[None, :]
    exists = day_grid >= signup[:, None]
    baseline = hr.normal(0.3, 0.6, n)
    declining = hr.random(n) < 0.3
    improving = ~declining & (hr.random(n) < 0.12)
    onset = signup + hr.integers(30, max(31, days), n)
    slope_down = hr.uniform(0.004, 0.02, n)
    since_onset = np.maximum(day_grid - onset[:, None], 0)
    drift = np.where(declining[:, None], -np.minimum(slope_down[:, None] * since_onset, 2.5), 0.0)
    drift += np.where(
        improving[:, None], np.minimum(0.003 * np.maximum(day_grid - signup[:, None], 0), 1.0), 0.0
    )
    phi, sigma = 0.97, 0.12
    shocks = hr.normal(0.0, sigma, (n, days))
    ar = np.empty((n, days))
    ar[:, 0] = shocks[:, 0] / np.sqrt(1 - phi**2)
    for t in range(1, days):
        ar[:, t] = phi * ar[:, t - 1] + shocks[:, t]
    health = baseline[:, None] + drift + ar

    # ---- usage demand (in api_calls a month) -------------------------------------------
    ur = rng["usage"]
    initial_utilisation = ur.beta(2.0, 3.5, n)
    growing = ur.random(n) < 0.2
    monthly_growth = np.where(growing, ur.uniform(0.03, 0.10, n), ur.normal(0.0, 0.01, n))
    months_on = np.maximum(day_grid - np.maximum(signup, 0)[:, None], 0) / 30.44
    demand = (
        initial_utilisation[:, None]
        * CAPACITY["api_calls"][plan0][:, None]
        * np.exp(monthly_growth[:, None] * months_on + 0.25 * health)
    )
    metric_ratio = {m: np.exp(ur.normal(0.0, 0.25, n)) for m in ("storage_gb", "compute_units")}

    # ---- 4a. plan changes (potential path) ---------------------------------------------
    pr = rng["plans"]
    plan_at = np.repeat(plan0[:, None], days, axis=1).astype(np.int8)
    changes: list[tuple[int, int, int, int]] = []  # customer, day, from, to
    # Monthly checks on the window's anniversaries; a change lands within 19 days of one, so
    # at least 9 days before the end (the last check is a month before the end's day).
    check_days = [
        BURN_IN_DAYS + (start + relativedelta(months=m) - start).days
        for m in range(1, config.months)
    ]
    for tau in check_days:
        current = plan_at[:, tau].astype(np.int64)
        util = demand[:, tau] / CAPACITY["api_calls"][current]
        h = health[:, tau]
        eligible = exists[:, tau] & (tau - signup >= 30)
        p_up = np.where(util > 1.0, 0.35, np.where(util > 0.85, 0.12, 0.004)) * (h > -0.5)
        p_up = np.where((current < 2) & eligible, p_up, 0.0)
        p_down = np.where((h < -0.8) & (util < 0.35), 0.10, 0.003)
        p_down = np.where((current > 0) & eligible, p_down, 0.0)
        draw = pr.random(n)
        offset = pr.integers(0, 20, n)
        for i in np.flatnonzero(draw < p_up + p_down).tolist():
            new_plan = current[i] + (1 if draw[i] < p_up[i] else -1)
            day = tau + int(offset[i])
            plan_at[i, day:] = new_plan
            changes.append((i, day, int(current[i]), int(new_plan)))

    # ---- 4b. sessions, logins, features (potential path) -------------------------------
    sr = rng["sessions"]
    act_season = ACT_WEEKLY[weekday] * (
        1 + ACT_YEARLY_AMPLITUDE * np.cos(2 * np.pi * (day_of_year - ACT_YEARLY_PEAK_DOY) / 365.25)
    )
    rate = (
        0.17
        * config.activity_scale
        * users[:, None] ** 0.8
        * np.exp(0.6 * health)
        * act_season[None, :]
        * exists
    )
    sessions_daily = sr.poisson(rate)
    s_cust, s_day = np.nonzero(sessions_daily)
    reps = sessions_daily[s_cust, s_day]
    s_cust = np.repeat(s_cust, reps)
    s_day = np.repeat(s_day, reps)
    n_sessions = s_cust.size
    s_user = np.floor(users[s_cust] * sr.random(n_sessions) ** 1.7).astype(np.int64)
    s_second = np.clip(sr.normal(14.5 * 3600, 3.2 * 3600, n_sessions), 0, DAY - 4 * 3600)
    s_time = s_day * DAY + s_second.astype(np.int64)
    s_duration = np.clip(
        np.exp(sr.normal(6.2 + 0.25 * health[s_cust, s_day], 0.8)), 10, 4 * 3600
    ).astype(np.int64)
    s_login = sr.random(n_sessions) < 0.35
    # Feature use: per session a Poisson number of events, each on one of the customer's
    # currently adopted features (breadth grows with health and plan).
    plan_offset = np.array([-0.5, 0.0, 0.5])
    breadth = 2 + np.floor(
        10 * _sigmoid(1.2 * health[s_cust, s_day] + plan_offset[plan_at[s_cust, s_day]])
    ).astype(np.int64)
    per_session = sr.poisson(0.5 * np.exp(0.3 * health[s_cust, s_day]))
    f_session = np.repeat(np.arange(n_sessions), per_session)
    permutation = np.argsort(sr.random((n, len(FEATURES))), axis=1)
    f_rank = np.floor(sr.random(f_session.size) * breadth[f_session]).astype(np.int64)
    f_cust = s_cust[f_session]
    f_feature = permutation[f_cust, f_rank]
    f_time = s_time[f_session] + (sr.random(f_session.size) * s_duration[f_session]).astype(
        np.int64
    )
    f_day = s_day[f_session]

    # ---- 4c. tickets -------------------------------------------------------------------
    tr = rng["tickets"]
    ticket_rate = 0.006 * users[:, None] ** 0.4 * np.exp(-0.7 * health) * exists
    tickets_daily = tr.poisson(ticket_rate)
    t_cust, t_day = np.nonzero(tickets_daily)
    reps = tickets_daily[t_cust, t_day]
    t_cust, t_day = np.repeat(t_cust, reps), np.repeat(t_day, reps)
    n_tickets = t_cust.size
    t_open = t_day * DAY + tr.integers(6 * 3600, 22 * 3600, n_tickets)
    t_close = t_open + np.exp(tr.normal(np.log(18 * 3600), 1.0, n_tickets)).astype(np.int64)
    t_priority = tr.choice(4, n_tickets, p=[0.3, 0.5, 0.15, 0.05])
    rated = tr.random(n_tickets) < 0.7
    t_satisfaction = np.clip(
        np.round(3.6 + 0.9 * health[t_cust, t_day] + tr.normal(0, 0.9, n_tickets)), 1, 5
    ).astype(np.int64)
    t_satisfaction = np.where(rated, t_satisfaction, -1)
    t_subject = tr.integers(0, len(TICKET_SUBJECTS), n_tickets)

    # ---- 4d. subscriptions and billing (potential path) --------------------------------
    br = rng["billing"]
    changes.sort()
    by_customer: dict[int, list[tuple[int, int, int, int]]] = {}
    for ch in changes:
        by_customer.setdefault(ch[0], []).append(ch)
    segments: list[tuple[int, int, int, int]] = []  # customer, plan, start second, end second
    for i in range(n):
        begin = int(signup_seconds[i])
        plan = int(plan0[i])
        for _, day, _, to in by_customer.get(i, []):
            at = day * DAY + 9 * 3600
            segments.append((i, plan, begin, at))
            begin, plan = at, to
        segments.append((i, plan, begin, NEVER * DAY))
    seg_cust = np.array([s[0] for s in segments], dtype=np.int64)
    seg_plan = np.array([s[1] for s in segments], dtype=np.int64)
    seg_start = np.array([s[2] for s in segments], dtype=np.int64)
    seg_end = np.array([s[3] for s in segments], dtype=np.int64)
    seg_first = np.r_[True, seg_cust[1:] != seg_cust[:-1]]
    has_trial = seg_first & trial[seg_cust]
    seg_trial_end = np.where(has_trial, seg_start + TRIAL_DAYS * DAY, seg_start).astype(np.int64)
    step = np.where(annual[seg_cust], 12, 1)
    seg_amount = PLAN_PRICE[seg_plan] * np.where(annual[seg_cust], ANNUAL_MULTIPLIER, 1)
    seg_charge = (
        np.round(seg_amount * (1 - discount_percent[seg_cust] / 100)).astype(np.int64)
        - discount_amount[seg_cust]
    )
    # Bills: the first at the start (or the trial's end), then every interval on the same
    # day of the month (capped at the 28th), while the segment lasts.
    bill_seg: list[IntArray] = []
    bill_time: list[IntArray] = []
    first = seg_trial_end  # the start, or the trial's end
    first_day64 = np.datetime64(origin, "D") + (first // DAY).astype("timedelta64[D]")
    first_month = first_day64.astype("datetime64[M]")
    day_in_month = np.minimum(
        (first_day64 - first_month.astype("datetime64[D]")).astype(np.int64), 27
    )
    origin64 = np.datetime64(origin, "D")
    for k in range(0, (days + 1100) // 28 + 2):
        month = first_month + (k * step).astype("timedelta64[M]")
        bill_day = (month.astype("datetime64[D]") - origin64).astype(np.int64) + day_in_month
        when = np.where(k == 0, first, bill_day * DAY + first % DAY)
        live = (when < seg_end) & (when < horizon)
        if not live.any():
            break
        keep = live & (when >= 0)
        bill_seg.append(np.flatnonzero(keep))
        bill_time.append(when[keep])
    b_seg = np.concatenate(bill_seg) if bill_seg else np.zeros(0, np.int64)
    b_time = np.concatenate(bill_time) if bill_time else np.zeros(0, np.int64)
    b_order = np.lexsort((b_time, b_seg))
    b_seg, b_time = b_seg[b_order], b_time[b_order]
    b_cust = seg_cust[b_seg]
    b_day = b_time // DAY
    n_bills = b_seg.size
    p_fail = FAIL_BASE[seg_plan[b_seg]] * np.exp(-0.4 * health[b_cust, np.minimum(b_day, days - 1)])
    fail1 = br.random(n_bills) < p_fail
    fail2 = fail1 & (br.random(n_bills) >= 0.6)
    fail3 = fail2 & (br.random(n_bills) >= 0.5)
    # Attempts: (bill, attempt number 0..2, time, failed)
    att_bill = np.concatenate([np.arange(n_bills), np.flatnonzero(fail1), np.flatnonzero(fail2)])
    att_no = np.concatenate(
        [np.zeros(n_bills, np.int64), np.ones(fail1.sum(), np.int64), np.full(fail2.sum(), 2)]
    )
    att_time = b_time[att_bill] + np.where(att_no == 0, 0, np.where(att_no == 1, 3, 10)) * DAY
    att_failed = np.where(
        att_no == 0, fail1[att_bill], np.where(att_no == 1, fail2[att_bill], fail3[att_bill])
    )
    att_keep = att_time < horizon
    att_bill, att_no, att_time, att_failed = (
        att_bill[att_keep],
        att_no[att_keep],
        att_time[att_keep],
        att_failed[att_keep],
    )
    att_cust = b_cust[att_bill]
    att_reason = br.integers(0, len(FAIL_REASONS), att_bill.size)
    refunded = ~att_failed & (br.random(att_bill.size) < 0.012)
    refund_time = att_time + br.integers(2, 11, att_bill.size) * DAY

    # ---- 5. the hazard and churn -------------------------------------------------------
    shape = (n, days)
    sessions_cum = _cumulative(sessions_daily)
    s30 = _window_sum(sessions_cum, 30)
    s14 = _window_sum(sessions_cum, 14)
    s28 = _window_sum(sessions_cum, 28)
    duration_cum = _cumulative(_bincount2(s_cust, s_day, shape, s_duration))
    d30 = _window_sum(duration_cum, 30)
    login_daily = _bincount2(s_cust[s_login], s_day[s_login], shape)
    day_idx = np.broadcast_to(np.arange(days)[None, :], shape)
    last_login = np.where(login_daily > 0, day_idx, -NEVER)
    last_login = np.maximum(last_login, signup[:, None])
    last_login = np.maximum.accumulate(last_login, axis=1)
    # strictly before the day: shift right by one
    last_before = np.concatenate([signup[:, None], last_login[:, :-1]], axis=1)
    used = np.zeros((n, days, len(FEATURES)), dtype=np.int16)
    used[f_cust, f_day, f_feature] = 1
    used_cum = np.zeros((n, days + 1, len(FEATURES)), dtype=np.int16)
    np.cumsum(used, axis=1, out=used_cum[:, 1:, :])
    t_arr = np.arange(days)
    breadth30 = ((used_cum[:, t_arr, :] - used_cum[:, np.maximum(t_arr - 30, 0), :]) > 0).sum(
        axis=2
    )
    del used, used_cum
    tickets_cum = _cumulative(tickets_daily)
    low_sat = (t_satisfaction >= 1) & (t_satisfaction <= 2)
    low_cum = _cumulative(_bincount2(t_cust[low_sat], t_day[low_sat], shape))
    fail_daily = _bincount2(att_cust[att_failed], att_time[att_failed] // DAY, shape)
    fail_cum = _cumulative(fail_daily)
    features: dict[str, NDArray[np.float32]] = {
        "weeks_since_last_login": (np.minimum(day_idx - last_before, 60) / 7.0).astype(np.float32),
        "log_sessions_30d": np.log1p(s30).astype(np.float32),
        "session_trend": np.log((s14 + 1) / (s28 - s14 + 1)).astype(np.float32),
        "avg_session_minutes_30d": (d30 / np.maximum(s30, 1) / 60.0).astype(np.float32),
        "feature_breadth_30d": breadth30.astype(np.float32),
        "tickets_60d": _window_sum(tickets_cum, 60).astype(np.float32),
        "low_satisfaction_tickets_60d": _window_sum(low_cum, 60).astype(np.float32),
        "payment_failures_60d": _window_sum(fail_cum, 60).astype(np.float32),
        "log_tenure_months": np.log1p(np.maximum(day_idx - signup[:, None], 0) / 30.44).astype(
            np.float32
        ),
        "plan_starter": (plan_at == 0).astype(np.float32),
        "plan_enterprise": (plan_at == 2).astype(np.float32),
    }
    eta = np.zeros(shape)
    for name, coefficient in HAZARD_COEFFICIENTS.items():
        eta += coefficient * features[name]
    at_risk = (day_idx >= BURN_IN_DAYS) & (day_idx > signup[:, None])
    intercept = _calibrate_intercept(eta, at_risk, config.target_monthly_churn)
    hazard = np.where(at_risk, np.exp(intercept + eta), 0.0)
    exposure = rng["churn"].exponential(1.0, n)
    crossed = np.cumsum(hazard, axis=1) >= exposure[:, None]
    churn_day = np.where(crossed.any(axis=1), crossed.argmax(axis=1), NEVER).astype(np.int64)
    churn_second = np.where(
        churn_day < NEVER, churn_day * DAY + rng["churn"].integers(9 * 3600, 18 * 3600, n), -1
    )
    # A churn drawn on the partial last day after the end has not happened: the customer is
    # alive when the window closes, like one who would churn any later day.
    late = churn_second >= horizon
    churn_day = np.where(late, NEVER, churn_day)
    churn_second = np.where(late, -1, churn_second)
    # Trials: one that does not convert is cancelled before its end (unless the hazard's churn
    # came first); its subscription ends then and the customer leaves like any churned one.
    trial_second = np.where(trial, signup_seconds + TRIAL_DAYS * DAY, -1)
    trial_day = np.minimum(np.maximum(trial_second // DAY, 0), days - 1)
    p_convert = _sigmoid(
        TRIAL_CONVERSION_INTERCEPT + TRIAL_CONVERSION_HEALTH * health[np.arange(n), trial_day]
    )
    trial_draw = rng["trials"].random(n)
    cancel_second = np.maximum(
        trial_second - rng["trials"].integers(*TRIAL_CANCEL_WINDOW, n), signup_seconds + 3600
    )
    abandons = trial & (trial_draw >= p_convert)
    # A trial whose cancellation moment lies after the window's end is still undecided then.
    trial_cancelled = abandons & (cancel_second < horizon)
    trial_cancelled &= cancel_second < np.where(churn_day < NEVER, churn_second, NEVER * DAY)
    # The hazard's own events stay the truth's churn days; a cancelled trial is a departure
    # of another kind (truth.trials, left_day), which ends the data like a churn.
    hazard_churn_day = churn_day.copy()
    left_day = np.where(trial_cancelled, cancel_second // DAY, NEVER).astype(np.int64)
    churn_second = np.where(trial_cancelled, cancel_second, churn_second)
    churn_day = np.where(trial_cancelled, cancel_second // DAY, churn_day)

    # ---- 6. truncation -----------------------------------------------------------------
    # The segment in force at the churn, and the customer's end: the churn moment for monthly
    # plans, the segment's next anniversary for annual ones.
    churned = churn_day < NEVER
    end_second = np.full(n, NEVER * DAY, dtype=np.int64)
    renewals_lost: dict[int, int] = {}
    for i in np.flatnonzero(churned).tolist():
        moment = int(churn_second[i])
        # A monthly plan ends at the churn; so does a trial cancelled before it ever billed.
        if not annual[i] or trial_cancelled[i]:
            end_second[i] = moment
            continue
        segs = np.flatnonzero((seg_cust == i) & (seg_start <= moment))
        s = int(segs[-1])
        anniversaries = b_time[(b_seg == s) & (b_time >= moment)]
        if anniversaries.size:
            end_second[i] = int(anniversaries[0])
        else:  # the anniversary lies past the simulated horizon
            start_day = np.datetime64(origin, "D") + np.timedelta64(int(seg_start[s] // DAY), "D")
            after = start_day.astype("datetime64[M]")
            years = 1
            while True:
                month = after + np.timedelta64(12 * years, "M")
                dom = min(int((start_day - after.astype("datetime64[D]")).astype(int)), 27)
                candidate = (
                    (month.astype("datetime64[D]") - np.datetime64(origin, "D")).astype(np.int64)
                    + dom
                ) * DAY + int(seg_start[s] % DAY)
                if candidate >= moment:
                    end_second[i] = int(candidate)
                    break
                years += 1
        renewals_lost[i] = int(end_second[i])
    end_day = np.minimum(end_second // DAY, NEVER)
    dormant_keep = rng["dormancy"]

    def alive_filter(cust: IntArray, day: IntArray, dormant_share: float) -> NDArray[np.bool_]:
        before = day < churn_day[cust]
        dormant = (day >= churn_day[cust]) & (day < end_day[cust])
        return before | (dormant & (dormant_keep.random(cust.size) < dormant_share))

    keep_s = alive_filter(s_cust, s_day, 0.05) & (s_time < horizon)
    keep_f = keep_s[f_session] & (f_time < horizon)
    keep_t = (t_day < churn_day[t_cust]) & (t_open < horizon)
    # Nothing is billed after the churn (annual plans are not billed again at their end).
    keep_pay = ~churned[att_cust] | (att_time < churn_second[att_cust])
    # final segments: drop those starting after the churn moment; cut the last one at the end
    seg_keep = (~churned[seg_cust] | (seg_start < churn_second[seg_cust])) & (seg_start < horizon)
    seg_final_end = np.minimum(
        seg_end, np.where(churned[seg_cust], end_second[seg_cust], NEVER * DAY)
    )

    # ---- rows --------------------------------------------------------------------------
    origin_epoch_second = (origin.toordinal() - EPOCH_DAY) * DAY
    abs_s = lambda seconds: np.asarray(seconds, dtype=np.int64) + origin_epoch_second  # noqa: E731
    customer_ids = [f"cus_{i + 1:05d}" for i in range(n)]
    nm = rng["names"]
    heads = nm.integers(0, len(NAME_HEADS), n)
    tails = nm.integers(0, len(NAME_TAILS), n)
    names = [
        f"{NAME_HEADS[h]} {NAME_TAILS[t]} {i + 1}"
        for i, (h, t) in enumerate(zip(heads, tails, strict=True))
    ]
    emails = [
        f"billing@{NAME_HEADS[h].lower()}{NAME_TAILS[t].lower()}{i + 1}.example"
        for i, (h, t) in enumerate(zip(heads, tails, strict=True))
    ]
    channel_names = [spec[0] for spec in CHANNEL_SPECS]
    segment_names = np.array(["smb", "mid_market", "enterprise"])
    attributes = [
        {
            "acquisition_channel": channel_names[c],
            "segment": str(segment_names[p]),
            "acquired_in_window": bool(w),
        }
        for c, p, w in zip(channel_idx.tolist(), plan0.tolist(), is_new.tolist(), strict=True)
    ]
    customers = RowTable(
        n,
        {
            "external_id": Column("value", np.array(customer_ids, dtype=object)),
            "name": Column("value", np.array(names, dtype=object)),
            "email": Column("value", np.array(emails, dtype=object)),
            "company_size": Column("value", company_size.astype(np.int64)),
            "annual_revenue": Column("value", annual_revenue.astype(np.int64)),
            "currency": Column("constant", config.currency),
            "country": Column("value", np.array(COUNTRIES, dtype=object)[country]),
            "signup_date": Column("day", signup + (origin.toordinal() - EPOCH_DAY)),
            "attributes": Column("value", np.array(attributes, dtype=object)),
        },
    )

    sk = np.flatnonzero(seg_keep)
    ended = np.where(seg_final_end[sk] < horizon, abs_s(seg_final_end[sk]), -1)
    subscriptions = RowTable(
        sk.size,
        {
            "external_id": Column("prefixed", sk + 1, "sub_", 6),
            "customer": Column("value", np.array(customer_ids, dtype=object)[seg_cust[sk]]),
            "plan": Column("value", np.array(PLANS, dtype=object)[seg_plan[sk]]),
            "amount": Column("value", seg_amount[sk].astype(np.int64)),
            "currency": Column("constant", config.currency),
            "interval": Column("value", interval[seg_cust[sk]].astype(object)),
            "quantity": Column("constant", 1),
            "started_at": Column("timestamp", abs_s(seg_start[sk])),
            "ended_at": Column("timestamp", ended),
            "discount_percent": Column("value", discount_percent[seg_cust[sk]]),
            "discount_amount": Column("value", discount_amount[seg_cust[sk]].astype(np.int64)),
            "trial_end": Column("timestamp", np.where(has_trial[sk], abs_s(seg_trial_end[sk]), -1)),
        },
    )

    # Activity: sessions, the logins that opened some of them, and feature events, in time order.
    ks, kf = np.flatnonzero(keep_s), np.flatnonzero(keep_f)
    kl = ks[s_login[ks]]
    kinds = np.concatenate([np.zeros(ks.size), np.ones(kl.size), np.full(kf.size, 2)]).astype(
        np.int64
    )
    a_cust = np.concatenate([s_cust[ks], s_cust[kl], f_cust[kf]])
    a_user = np.concatenate([s_user[ks], s_user[kl], s_user[f_session[kf]]])
    a_time = np.concatenate([s_time[ks], np.maximum(s_time[kl] - 5, 0), f_time[kf]])
    a_duration = np.concatenate([s_duration[ks], np.full(kl.size, -1), np.full(kf.size, -1)])
    a_feature = np.concatenate([np.full(ks.size + kl.size, -1), f_feature[kf]])
    a_order = np.lexsort((kinds, a_cust, a_time))
    a_cust, a_user, a_time, kinds = (
        a_cust[a_order],
        a_user[a_order],
        a_time[a_order],
        kinds[a_order],
    )
    a_duration, a_feature = a_duration[a_order], a_feature[a_order]
    user_ids = np.char.add(
        np.char.add(np.array(customer_ids)[a_cust], "-u"), np.char.zfill(a_user.astype(str), 2)
    ).astype(object)
    feature_names = np.array((None, *FEATURES), dtype=object)
    activity = RowTable(
        a_cust.size,
        {
            "external_id": Column("prefixed", np.arange(1, a_cust.size + 1), "act_", 8),
            "customer": Column("value", np.array(customer_ids, dtype=object)[a_cust]),
            "user_id": Column("value", user_ids),
            "kind": Column("value", np.array(["session", "login", "feature"], dtype=object)[kinds]),
            "occurred_at": Column("timestamp", abs_s(a_time)),
            "duration_seconds": Column("value", _or_none(a_duration >= 0, a_duration)),
            "feature": Column("value", feature_names[a_feature + 1]),
        },
    )

    kt = np.flatnonzero(keep_t)
    kt = kt[np.argsort(t_open[kt], kind="stable")]
    closed = np.where(t_close[kt] < horizon, abs_s(t_close[kt]), -1)
    tickets = RowTable(
        kt.size,
        {
            "external_id": Column("prefixed", np.arange(1, kt.size + 1), "tkt_", 6),
            "customer": Column("value", np.array(customer_ids, dtype=object)[t_cust[kt]]),
            "opened_at": Column("timestamp", abs_s(t_open[kt])),
            "closed_at": Column("timestamp", closed),
            "priority": Column(
                "value", np.array(["low", "normal", "high", "urgent"], dtype=object)[t_priority[kt]]
            ),
            "satisfaction": Column(
                "value",
                _or_none((t_satisfaction[kt] >= 1) & (closed >= 0), t_satisfaction[kt]),
            ),
            "subject": Column("value", np.array(TICKET_SUBJECTS, dtype=object)[t_subject[kt]]),
        },
    )

    kp = np.flatnonzero(keep_pay)
    p_kind = np.concatenate([np.where(att_failed[kp], 1, 0), np.full(int(refunded[kp].sum()), 2)])
    p_src = np.concatenate([kp, kp[refunded[kp]]])
    p_time = np.where(p_kind == 2, refund_time[p_src], att_time[p_src])
    p_live = p_time < horizon
    p_kind, p_src, p_time = p_kind[p_live], p_src[p_live], p_time[p_live]
    p_order = np.lexsort((p_kind, p_time))
    p_kind, p_src, p_time = p_kind[p_order], p_src[p_order], p_time[p_order]
    p_seg = b_seg[att_bill[p_src]]
    reasons = np.array(FAIL_REASONS, dtype=object)[att_reason[p_src]]
    payments = RowTable(
        p_src.size,
        {
            "external_id": Column("prefixed", np.arange(1, p_src.size + 1), "pay_", 7),
            "customer": Column("value", np.array(customer_ids, dtype=object)[att_cust[p_src]]),
            "subscription": Column("prefixed", p_seg + 1, "sub_", 6),
            "occurred_at": Column("timestamp", abs_s(p_time)),
            "status": Column(
                "value", np.array(["succeeded", "failed", "refunded"], dtype=object)[p_kind]
            ),
            "amount": Column("value", seg_charge[p_seg].astype(np.int64)),
            "currency": Column("constant", config.currency),
            "reason": Column(
                "value",
                _or_none(
                    p_kind > 0, np.where(p_kind == 1, reasons, "customer_request").astype(object)
                ),
            ),
        },
    )

    # Marketing: spend, impressions and clicks from the channel's CPM and CTR, and the
    # conversions the acquisitions above really were, with their first-year value.
    initial_value = np.zeros(n)
    first_seg = np.flatnonzero(seg_first)
    initial_value[seg_cust[first_seg]] = seg_charge[first_seg] * np.where(
        annual[seg_cust[first_seg]], 1, 12
    )
    new_idx = np.flatnonzero(is_new)
    conv = _bincount2(
        channel_idx[new_idx], signup[new_idx] - BURN_IN_DAYS, (n_channels, window_days)
    )
    conv_value = _bincount2(
        channel_idx[new_idx],
        signup[new_idx] - BURN_IN_DAYS,
        (n_channels, window_days),
        initial_value[new_idx],
    )
    cpm = np.array([spec[8] for spec in CHANNEL_SPECS])
    ctr = np.array([spec[9] for spec in CHANNEL_SPECS])
    impressions = mk.poisson(spend / cpm[:, None] * 1000 * np.exp(mk.normal(0, 0.15, spend.shape)))
    clicks = mk.binomial(
        impressions, np.clip(ctr[:, None] * np.exp(mk.normal(0, 0.1, spend.shape)), 0, 1)
    )
    # Carryover converts on paused days too: those conversions came through some click.
    clicks = np.maximum(clicks, conv)
    impressions = np.maximum(impressions, clicks)
    # Complete days only: a partial last day's spend is not reported yet.
    m_channel = np.repeat(np.arange(n_channels), full_days)
    m_day = np.tile(np.arange(full_days), n_channels) + (start.toordinal() - EPOCH_DAY)

    def reported(values: NDArray[Any]) -> NDArray[np.int64]:
        return np.asarray(np.round(values[:, :full_days]).ravel(), dtype=np.int64)

    marketing = RowTable(
        n_channels * full_days,
        {
            "channel": Column("value", np.array(channel_names, dtype=object)[m_channel]),
            "day": Column("day", m_day),
            "spend": Column("value", reported(spend)),
            "currency": Column("constant", config.currency),
            "impressions": Column("value", reported(impressions)),
            "clicks": Column("value", reported(clicks)),
            "conversions": Column("value", reported(conv)),
            "attributed_revenue": Column("value", reported(conv_value)),
        },
    )

    usage, usage_truth = _usage_events(
        n,
        plan_at,
        demand,
        metric_ratio,
        signup_seconds,
        s_cust[ks],
        s_time[ks],
        s_user[ks],
        churn_day,
        end_day,
        customer_ids,
        origin_epoch_second,
        horizon,
        ur,
    )
    experiment_rows, experiment_truth = _experiments(
        rng["experiments"], config, full_days, origin_epoch_second
    )

    # ---- truth -------------------------------------------------------------------------
    sub_dicts = subscriptions[:]
    truth_subs = [
        {
            k: row.get(k)
            for k in (
                "external_id",
                "customer",
                "plan",
                "amount",
                "interval",
                "quantity",
                "started_at",
                "ended_at",
                "discount_percent",
                "discount_amount",
                "trial_end",
            )
        }
        for row in sub_dicts
    ]
    # Pending cancellations (annual plans past the window) carry their true end in the truth.
    for row, s in zip(truth_subs, sk.tolist(), strict=True):
        if row["ended_at"] is None and seg_final_end[s] < NEVER * DAY:
            row["ended_at"] = (
                f"{np.datetime_as_string(np.datetime64(int(abs_s(seg_final_end[s])), 's'))}Z"
            )
    mrr_by_month = _mrr_by_month(truth_subs, start, end)
    churn_list = []
    for i in np.flatnonzero(churned & ~trial_cancelled).tolist():
        recent_failure = fail_cum[i, churn_day[i]] - fail_cum[i, max(churn_day[i] - 30, 0)] > 0
        churn_list.append(
            {
                "customer": customer_ids[i],
                "decided_at": _iso_second(int(abs_s(churn_second[i]))),
                "ended_at": _iso_second(int(abs_s(end_second[i]))),
                "interval": str(interval[i]),
                "plan": PLANS[int(plan_at[i, churn_day[i]])],
                "reason": "payment_failed" if recent_failure else "voluntary",
                "ended_within_window": bool(end_second[i] < horizon),
            }
        )
    # Every trial with its known outcome: converted when its subscription outlived the trial's
    # end (None while the trial is still running when the window ends).
    first_segment = np.flatnonzero(seg_first)
    trials_truth = [
        {
            "customer": customer_ids[i],
            "subscription": f"sub_{int(first_segment[i]) + 1:06d}",
            "trial_end": _iso_second(int(abs_s(trial_second[i]))),
            "converted": None
            if trial_second[i] >= horizon and not trial_cancelled[i]
            else bool(end_second[i] > trial_second[i]),
            "probability": round(float(p_convert[i]), 4),
        }
        for i in np.flatnonzero(trial).tolist()
    ]
    renewals = []
    for s_idx in np.flatnonzero(annual[seg_cust] & seg_keep).tolist():
        i = int(seg_cust[s_idx])
        times = b_time[b_seg == s_idx][1:]  # anniversaries after the first bill
        times = times[times >= BURN_IN_DAYS * DAY]
        if i in renewals_lost:
            times = np.append(times[times < renewals_lost[i]], renewals_lost[i])
        for when in times.tolist():
            if when >= horizon:
                continue
            renewals.append(
                {
                    "customer": customer_ids[i],
                    "subscription": f"sub_{s_idx + 1:06d}",
                    "renewal_at": _iso_second(int(abs_s(when))),
                    "renewed": not (i in renewals_lost and when >= renewals_lost[i]),
                }
            )
    plan_changes = [
        {
            "customer": customer_ids[i],
            "at": _iso_second(int(abs_s(day * DAY + 9 * 3600))),
            "from": PLANS[a],
            "to": PLANS[b],
            "kind": "upgrade" if b > a else "downgrade",
        }
        for i, day, a, b in changes
        if day * DAY + 9 * 3600 < (churn_second[i] if churned[i] else NEVER * DAY)
    ]
    value_per_conversion = _value_per_conversion()
    channels_truth = {
        name: {
            "curve": curves[c].to_dict(),
            "s_shaped": curves[c].s_shaped,
            "base_daily_spend": CHANNEL_SPECS[c][1],
            "plan_mix": dict(zip(PLANS, CHANNEL_SPECS[c][7], strict=True)),
            "revenue_per_conversion": value_per_conversion[c],
            "cpm": CHANNEL_SPECS[c][8],
            "ctr": CHANNEL_SPECS[c][9],
        }
        for c, name in enumerate(channel_names)
    }
    truth = Truth(
        seed=config.seed,
        config=config.to_dict(),
        origin=origin,
        start=start,
        end=end,
        hazard={
            "form": "daily hazard = exp(intercept + Σ coefficient·feature); P(churn within H days "
            "from d) = 1 − exp(−Σ hazard over [d, d+H))",
            "intercept": intercept,
            "coefficients": dict(HAZARD_COEFFICIENTS),
            "features": dict(HAZARD_FEATURES),
            "latent_health": {"ar1_phi": phi, "ar1_sigma": sigma, "declining_share": 0.3},
        },
        churn=churn_list,
        trials=trials_truth,
        channels=channels_truth,
        acquisition_seasonality={
            "weekly_monday_first": ACQ_WEEKLY.tolist(),
            "yearly_amplitude": ACQ_YEARLY_AMPLITUDE,
            "yearly_peak_day_of_year": ACQ_YEARLY_PEAK_DOY,
            "form": "rate × weekly[weekday] × (1 + amplitude·cos(2π(doy − peak)/365.25))",
        },
        activity_seasonality={
            "weekly_monday_first": ACT_WEEKLY.tolist(),
            "yearly_amplitude": ACT_YEARLY_AMPLITUDE,
            "yearly_peak_day_of_year": ACT_YEARLY_PEAK_DOY,
        },
        experiments=experiment_truth,
        mrr_by_month=mrr_by_month,
        renewals=renewals,
        plan_changes=plan_changes,
        plans={
            name: {
                "monthly_price": int(PLAN_PRICE[p]),
                "annual_price": int(PLAN_PRICE[p] * ANNUAL_MULTIPLIER),
                "capacities": {m: float(CAPACITY[m][p]) for m in CAPACITY},
            }
            for p, name in enumerate(PLANS)
        },
        usage=usage_truth,
        subscriptions=truth_subs,
        customers=customer_ids,
        signup_day=signup.tolist(),
        daily_hazard=hazard,
        features=features,
        churn_day=hazard_churn_day,
        left_day=left_day,
    )
    rows = {
        "customers": customers,
        "subscriptions": subscriptions,
        "activity": activity,
        "tickets": tickets,
        "payments": payments,
        "marketing": marketing,
        "usage": usage,
        "experiment_assignments": experiment_rows,
    }
    return SimulatedCompany(config=config, rows=rows, truth=truth)


def _calibrate_intercept(
    eta: FloatArray, at_risk: NDArray[np.bool_], target_monthly: float
) -> float:
    """The intercept at which the expected churned share per customer-month at risk — churns
    over survival-weighted months — is the target (bisection; the rate rises with it)."""
    relative = np.where(at_risk, np.exp(eta), 0.0)
    before = np.cumsum(relative, axis=1) - relative  # cumulative hazard before each day
    total = before[:, -1] + relative[:, -1]

    def monthly_rate(alpha: float) -> float:
        scale = np.exp(alpha)
        churns = (1.0 - np.exp(-scale * total)).sum()
        months = (np.exp(-scale * before) * at_risk).sum() / 30.44
        return float(churns / months) if months > 0 else 0.0

    low, high = -20.0, 5.0
    for _ in range(40):
        mid = (low + high) / 2
        if monthly_rate(mid) < target_monthly:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def _or_none(mask: NDArray[np.bool_], values: NDArray[Any]) -> NDArray[Any]:
    """An object column holding ``values`` where ``mask`` holds and None elsewhere."""
    out = values.astype(object)
    out[~mask] = None
    return out


def _iso_second(epoch_second: int) -> str:
    return f"{np.datetime_as_string(np.datetime64(epoch_second, 's'))}Z"


def _value_per_conversion() -> list[float]:
    """Expected first-year value (12 × initial net MRR) of one conversion, by channel."""
    e_percent = PERCENT_DISCOUNT_SHARE * PERCENT_DISCOUNTS.mean() / 100
    values = []
    for spec in CHANNEL_SPECS:
        total = 0.0
        for p, share in enumerate(spec[7]):
            price = PLAN_PRICE[p]
            monthly = price * (1 - e_percent) - AMOUNT_DISCOUNT_SHARE * AMOUNT_DISCOUNT["month"]
            yearly = (
                price * ANNUAL_MULTIPLIER * (1 - e_percent)
                - AMOUNT_DISCOUNT_SHARE * AMOUNT_DISCOUNT["year"]
            )
            total += share * ((1 - ANNUAL_SHARE[p]) * 12 * monthly + ANNUAL_SHARE[p] * yearly)
        values.append(float(total))
    return values


def _mrr_by_month(subs: list[dict[str, Any]], start: date, end: datetime) -> dict[str, int]:
    """MRR at the end of each month the window touches: the first instant of the next month,
    or the window's end for the month it ends in (the analytics definition read at that end)."""
    starts = np.array([_epoch(s["started_at"]) for s in subs], dtype=np.int64)
    ends = np.array([_epoch(s["ended_at"]) if s.get("ended_at") else 1 << 62 for s in subs])
    trials = np.array([_epoch(s["trial_end"]) if s.get("trial_end") else 0 for s in subs])
    values = np.array([monthly_value(s) for s in subs], dtype=np.int64)
    out: dict[str, int] = {}
    month = start.replace(day=1)
    last = int(end.timestamp())
    while datetime.combine(month, datetime.min.time(), UTC) < end:
        after = month + relativedelta(months=1)
        instant = min(int(datetime.combine(after, datetime.min.time(), UTC).timestamp()), last)
        active = (starts <= instant) & (instant < ends) & (trials <= instant)
        out[f"{month.year:04d}-{month.month:02d}"] = int(values[active].sum())
        month = after
    return out


def _epoch(iso: str) -> int:
    return int(np.datetime64(iso.rstrip("Z"), "s").astype(np.int64))


def _usage_events(
    n: int,
    plan_at: NDArray[np.int8],
    demand: FloatArray,
    metric_ratio: dict[str, FloatArray],
    signup_seconds: IntArray,
    s_cust: IntArray,
    s_time: IntArray,
    s_user: IntArray,
    churn_day: IntArray,
    end_day: IntArray,
    customer_ids: list[str],
    origin_epoch_second: int,
    horizon: int,
    rng: np.random.Generator,
) -> tuple[RowTable, dict[str, Any]]:
    """Weekly metered usage per customer: api_calls and compute_units (counters summed over the
    week), storage_gb (gauge at the week's end) and seats (distinct active users that week).

    Weeks are counted back from the window's end: the last report is stamped an hour before it,
    the others 7, 14, … days earlier, each covering the 7 days up to its stamp. So the latest
    usage is always recent, whatever day the window ends on."""
    report = horizon - 3600  # seconds from the origin of the last report
    week_ends = np.arange(report // DAY, 5, -7)[::-1]  # days of the reports, oldest first
    n_weeks = week_ends.size
    stamps = week_ends * DAY + report % DAY
    weeks_back = (report - s_time) // (7 * DAY)
    week_of_session = np.where(s_time <= report, n_weeks - 1 - weeks_back, -1)
    counted = week_of_session >= 0
    distinct = np.unique(
        (s_cust[counted] * n_weeks + week_of_session[counted]) * 64
        + np.minimum(s_user[counted], 63)
    )
    seats = np.bincount(distinct // 64, minlength=n * n_weeks).reshape(n, n_weeks)
    alive = (stamps[None, :] >= signup_seconds[:, None]) & (week_ends[None, :] < churn_day[:, None])
    dormant = (week_ends[None, :] >= churn_day[:, None]) & (week_ends[None, :] < end_day[:, None])
    weekly_demand = demand[:, week_ends] / 4.345 * np.where(dormant, 0.1, 1.0)
    noise = np.exp(rng.normal(0, 0.1, (4, n, n_weeks)))
    plan_week = plan_at[:, week_ends].astype(np.int64)
    api = np.round(weekly_demand * noise[0])
    util = weekly_demand * 4.345 / CAPACITY["api_calls"][plan_week]
    compute = np.round(
        util
        * CAPACITY["compute_units"][plan_week]
        / 4.345
        * metric_ratio["compute_units"][:, None]
        * noise[1]
    )
    storage = np.round(
        util * CAPACITY["storage_gb"][plan_week] * metric_ratio["storage_gb"][:, None] * noise[2], 2
    )
    live = alive | dormant
    cust, week = np.nonzero(live)
    metric_values = [
        api[cust, week],
        storage[cust, week],
        compute[cust, week],
        seats[cust, week].astype(np.float64),
    ]
    names = ("api_calls", "storage_gb", "compute_units", "seats")
    m_idx = np.repeat(np.arange(4), cust.size)
    all_cust = np.tile(cust, 4)
    all_week = np.tile(week, 4)
    values = np.concatenate(metric_values)
    order = np.lexsort((m_idx, all_cust, all_week))
    m_idx, all_cust, all_week, values = (
        m_idx[order],
        all_cust[order],
        all_week[order],
        values[order],
    )
    stamp = origin_epoch_second + stamps[all_week]
    table = RowTable(
        values.size,
        {
            "id": Column("prefixed", np.arange(1, values.size + 1), "use_", 8),
            "customer": Column("value", np.array(customer_ids, dtype=object)[all_cust]),
            "metric": Column("value", np.array(names, dtype=object)[m_idx]),
            "value": Column("value", values),
            "timestamp": Column("timestamp", stamp),
        },
    )
    monthly_api = demand[:, week_ends] * np.where(live, 1.0, np.nan)
    over = np.nanmax(monthly_api / CAPACITY["api_calls"][plan_week], axis=1, initial=0.0)
    truth = {
        "granularity": "weekly events, the last an hour before the window's end and the others "
        "7, 14, … days earlier; counters (api_calls, compute_units) sum over the 7 days up to "
        "the event, gauges (storage_gb, seats) at it",
        "capacities_per_month": {m: CAPACITY[m].tolist() for m in CAPACITY},
        "plans_order": list(PLANS),
        "customers_over_capacity": [customer_ids[i] for i in np.flatnonzero(over > 1.0).tolist()],
        "customers_near_capacity": [
            customer_ids[i] for i in np.flatnonzero((over > 0.8) & (over <= 1.0)).tolist()
        ],
    }
    return table, truth


def _experiments(
    rng: np.random.Generator, config: SimConfig, window_days: int, origin_epoch_second: int
) -> tuple[RowTable, list[dict[str, Any]]]:
    """Three experiments on site visitors with known true effects."""
    specs = (
        # key, kind, start share of the window, control p, treatment p, control mean, treatment mean
        ("pricing_page_cta", "conversion", 0.2, 0.080, 0.092, 0.0, 0.0),
        ("homepage_hero_aa", "aa", 0.35, 0.050, 0.050, 0.0, 0.0),
        ("checkout_annual_nudge", "revenue", 0.5, 0.080, 0.080, 12000.0, 14400.0),
    )
    duration = max(7, min(56, int(window_days * 0.3)))
    cols: dict[str, list[Any]] = {k: [] for k in ("experiment", "variant", "time", "conv", "rev")}
    truth = []
    sigma = 0.6
    for key, kind, share, p_c, p_t, mean_c, mean_t in specs:
        first = BURN_IN_DAYS + int(window_days * share)
        first = min(first, BURN_IN_DAYS + window_days - duration)
        visitors = rng.poisson(config.experiment_daily_visitors, duration)
        day = np.repeat(np.arange(first, first + duration), visitors)
        m = day.size
        treated = rng.random(m) < 0.5
        converted = rng.random(m) < np.where(treated, p_t, p_c)
        if kind == "revenue":
            mean = np.where(treated, mean_t, mean_c)
            # lognormal with the given mean: mu = ln(mean) − σ²/2
            value = np.exp(rng.normal(np.log(mean) - sigma**2 / 2, sigma))
            revenue = np.where(converted, np.round(value), 0).astype(np.int64)
        else:
            revenue = np.zeros(m, dtype=np.int64)
        cols["experiment"] += [key] * m
        cols["variant"].append(np.where(treated, "treatment", "control"))
        cols["time"].append(origin_epoch_second + day * DAY + rng.integers(0, DAY, m))
        cols["conv"].append(converted)
        cols["rev"].append(revenue)
        rpv_c, rpv_t = p_c * mean_c, p_t * mean_t
        truth.append(
            {
                "key": key,
                "kind": kind,
                "unit": "visitor",
                "start": _iso_second(int(origin_epoch_second + first * DAY)),
                "end": _iso_second(int(origin_epoch_second + (first + duration) * DAY)),
                "allocation": {"control": 0.5, "treatment": 0.5},
                "conversion_rate": {"control": p_c, "treatment": p_t},
                "true_absolute_lift": p_t - p_c,
                "true_relative_lift": (p_t - p_c) / p_c,
                **(
                    {
                        "mean_order_value": {"control": mean_c, "treatment": mean_t},
                        "revenue_per_visitor": {"control": rpv_c, "treatment": rpv_t},
                        "true_revenue_relative_lift": (rpv_t - rpv_c) / rpv_c,
                        "order_value_distribution": f"lognormal, sigma {sigma}",
                    }
                    if kind == "revenue"
                    else {}
                ),
                "has_real_effect": p_t != p_c or mean_c != mean_t,
            }
        )
    variant = np.concatenate(cols["variant"])
    times = np.concatenate(cols["time"])
    count = variant.size
    exp_names = np.array(cols["experiment"], dtype=object)
    table = RowTable(
        count,
        {
            "experiment": Column("value", exp_names),
            "user_id": Column("prefixed", np.arange(1, count + 1), "vis_", 7),
            "variant": Column("value", variant.astype(object)),
            "assigned_at": Column("timestamp", times.astype(np.int64)),
            "converted": Column("value", np.concatenate(cols["conv"])),
            "revenue": Column("value", np.concatenate(cols["rev"])),
        },
    )
    return table, truth
