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

One function per part, in that order (``generate`` calls them): ``_window``, ``_marketing``,
``_customers``, ``_latent_health``, ``_usage_demand``, ``_plan_changes``, ``_sessions``,
``_tickets``, ``_billing``, ``_churn`` (with ``_hazard_features``), ``_ends`` and ``_kept`` (the
truncation), then one ``_*_rows`` per kind, ``_usage_events``, ``_experiments`` and ``_truth``.
Each takes the parts it depends on (small frozen dataclasses) and its own random stream.

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


HEALTH_PHI, HEALTH_SIGMA = 0.97, 0.12  # the latent health's AR(1)
DECLINING_SHARE = 0.3
CHANGE_HOUR = 9 * 3600  # plan changes take effect at 09:00 UTC


@dataclass(frozen=True)
class _Window:
    """The simulated days: day 0 is the origin (the burn-in's first day), the window's first
    day is ``BURN_IN_DAYS``; times are seconds from the origin's midnight."""

    start: date
    end: datetime
    origin: date
    full_days: int  # whole days of the window
    cut: int  # seconds of the partial last day before the end (0: the end is a midnight)
    window_days: int  # the window's days, the partial last one included
    days: int  # simulated days (burn-in and window)
    horizon: int  # the end in seconds from the origin: nothing is kept at or after it
    weekday: IntArray  # per simulated day, Monday = 0
    day_of_year: IntArray
    origin_epoch_second: int

    def epoch_seconds(self, seconds: Any) -> IntArray:
        """Seconds from the origin → UTC epoch seconds."""
        return np.asarray(seconds, dtype=np.int64) + self.origin_epoch_second


@dataclass(frozen=True)
class _Marketing:
    spend: FloatArray  # (channel, window day), minor units
    curves: list[Curve]  # each channel's true response, β included
    acquired: IntArray  # new customers per (channel, window day)
    signup_share: float  # the share of the partial last day's signup hours passed
    n_existing: int
    n_new: int


@dataclass(frozen=True)
class _Customers:
    n: int
    signup: IntArray  # day index
    signup_seconds: IntArray
    channel: IntArray
    is_new: NDArray[np.bool_]
    plan0: IntArray
    annual: NDArray[np.bool_]
    interval: NDArray[Any]
    discount_percent: FloatArray
    discount_amount: IntArray
    trial: NDArray[np.bool_]
    users: IntArray
    company_size: FloatArray
    annual_revenue: FloatArray
    country: IntArray


@dataclass(frozen=True)
class _Sessions:
    daily: IntArray  # (customer, day) counts
    cust: IntArray
    day: IntArray
    user: IntArray
    time: IntArray
    duration: IntArray
    login: NDArray[np.bool_]
    # feature events: the session each belongs to, and what it was
    f_session: IntArray
    f_cust: IntArray
    f_day: IntArray
    f_time: IntArray
    f_feature: IntArray


@dataclass(frozen=True)
class _Tickets:
    daily: IntArray
    cust: IntArray
    day: IntArray
    opened: IntArray
    closed: IntArray
    priority: IntArray
    satisfaction: IntArray  # -1 when not rated
    subject: IntArray


@dataclass(frozen=True)
class _Billing:
    # subscription segments (one per plan in force), in customer order
    seg_cust: IntArray
    seg_plan: IntArray
    seg_start: IntArray
    seg_end: IntArray
    seg_first: NDArray[np.bool_]
    has_trial: NDArray[np.bool_]
    seg_trial_end: IntArray
    seg_amount: IntArray
    seg_charge: IntArray
    # bills, by segment then time
    b_seg: IntArray
    b_time: IntArray
    # payment attempts (0..2 per bill)
    att_bill: IntArray
    att_time: IntArray
    att_failed: NDArray[np.bool_]
    att_cust: IntArray
    att_reason: IntArray
    refunded: NDArray[np.bool_]
    refund_time: IntArray


@dataclass(frozen=True)
class _Churn:
    intercept: float
    hazard: FloatArray
    features: dict[str, NDArray[np.float32]]
    fail_cum: FloatArray
    churn_day: IntArray  # the departure day (hazard churn or cancelled trial), NEVER if none
    churn_second: IntArray  # -1 if none
    hazard_churn_day: IntArray  # the hazard's own churn days (the truth's)
    left_day: IntArray  # the day a cancelled trial left, NEVER if none
    trial_second: IntArray
    p_convert: FloatArray
    trial_cancelled: NDArray[np.bool_]


@dataclass(frozen=True)
class _Ends:
    churned: NDArray[np.bool_]
    end_second: IntArray  # when the customer's subscription really ends
    end_day: IntArray
    renewals_lost: dict[int, int]  # annual customer → the anniversary it did not renew at


@dataclass(frozen=True)
class _Kept:
    """What survives the truncation at each customer's end and at the window's end."""

    sessions: NDArray[np.bool_]
    features: NDArray[np.bool_]
    tickets: NDArray[np.bool_]
    payments: NDArray[np.bool_]
    segments: NDArray[np.bool_]
    segment_end: IntArray


def generate(config: SimConfig) -> SimulatedCompany:
    """The company for ``config``: each part drawn from its own stream, in an order where what
    a part depends on exists (a stream used by two parts is drawn from in the same order)."""
    streams = np.random.SeedSequence(config.seed).spawn(len(STREAMS))
    rng = {name: np.random.default_rng(s) for name, s in zip(STREAMS, streams, strict=True)}
    w = _window(config)
    marketing = _marketing(config, w, rng["marketing"])
    cust = _customers(config, w, marketing, rng["customers"])
    exists, health = _latent_health(w, cust, rng["health"])
    demand, metric_ratio = _usage_demand(w, cust, health, rng["usage"])
    plan_at, changes = _plan_changes(config, w, cust, exists, health, demand, rng["plans"])
    sessions = _sessions(config, w, cust, exists, health, plan_at, rng["sessions"])
    tickets = _tickets(cust, exists, health, rng["tickets"])
    billing = _billing(w, cust, health, changes, rng["billing"])
    churn = _churn(config, w, cust, health, plan_at, sessions, tickets, billing, rng)
    ends = _ends(w, cust, billing, churn)
    kept = _kept(w, sessions, tickets, billing, churn, ends, rng["dormancy"])

    customer_ids, customers = _customer_rows(config, w, cust, rng["names"])
    subscriptions = _subscription_rows(config, w, cust, billing, kept, customer_ids)
    ks = np.flatnonzero(kept.sessions)
    usage, usage_truth = _usage_events(
        cust.n,
        plan_at,
        demand,
        metric_ratio,
        cust.signup_seconds,
        sessions.cust[ks],
        sessions.time[ks],
        sessions.user[ks],
        churn.churn_day,
        ends.end_day,
        customer_ids,
        w.origin_epoch_second,
        w.horizon,
        rng["usage"],
    )
    experiment_rows, experiment_truth = _experiments(
        rng["experiments"], config, w.full_days, w.origin_epoch_second
    )
    rows = {
        "customers": customers,
        "subscriptions": subscriptions,
        "activity": _activity_rows(w, sessions, kept, customer_ids),
        "tickets": _ticket_rows(w, tickets, kept, customer_ids),
        "payments": _payment_rows(config, w, billing, kept, customer_ids),
        "marketing": _marketing_rows(config, w, marketing, cust, billing, rng["marketing"]),
        "usage": usage,
        "experiment_assignments": experiment_rows,
    }
    truth = _truth(
        config,
        w,
        marketing,
        cust,
        plan_at,
        changes,
        billing,
        churn,
        ends,
        kept,
        subscriptions,
        customer_ids,
        usage_truth,
        experiment_truth,
    )
    return SimulatedCompany(config=config, rows=rows, truth=truth)


def _window(config: SimConfig) -> _Window:
    end, start = config.end, config.start
    full_days = (end.date() - start).days
    cut = int((end - datetime.combine(end.date(), datetime.min.time(), UTC)).total_seconds())
    window_days = full_days + (1 if cut else 0)
    origin = start - timedelta(days=BURN_IN_DAYS)
    days = BURN_IN_DAYS + window_days
    epoch_day = origin.toordinal() - EPOCH_DAY + np.arange(days)  # days since 1970-01-01
    dates64 = np.datetime64("1970-01-01", "D") + epoch_day.astype("timedelta64[D]")
    return _Window(
        start=start,
        end=end,
        origin=origin,
        full_days=full_days,
        cut=cut,
        window_days=window_days,
        days=days,
        horizon=(BURN_IN_DAYS + full_days) * DAY + cut,
        weekday=(epoch_day + 3) % 7,  # 1970-01-01 was a Thursday
        day_of_year=(dates64 - dates64.astype("datetime64[Y]")).astype(np.int64),
        origin_epoch_second=(origin.toordinal() - EPOCH_DAY) * DAY,
    )


def _spend_levels(mk: np.random.Generator, window_days: int) -> FloatArray:
    """Flights of 10–42 days; their levels are stratified over 0.1–3× the base (each run of six
    flights visits every stratum once), so each curve is seen across its whole range."""
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
    return level


def _marketing(config: SimConfig, w: _Window, mk: np.random.Generator) -> _Marketing:
    """Daily spend per channel and the acquisitions it brought (step 1 of the module doc)."""
    n_channels = len(CHANNEL_SPECS)
    win = slice(BURN_IN_DAYS, w.days)
    acq_season = ACQ_WEEKLY[w.weekday[win]] * (
        1
        + ACQ_YEARLY_AMPLITUDE
        * np.cos(2 * np.pi * (w.day_of_year[win] - ACQ_YEARLY_PEAK_DOY) / 365.25)
    )
    spend = np.zeros((n_channels, w.window_days))
    shapes = np.zeros((n_channels, w.window_days))
    curves: list[Curve] = []
    for c, (_, base, kind, half, slope, carry, _w, _mix, _cpm, _ctr) in enumerate(CHANNEL_SPECS):
        level = _spend_levels(mk, w.window_days)
        noise = np.exp(mk.normal(0.0, 0.12, w.window_days))
        weekend = np.where(w.weekday[win] >= 5, 0.8, 1.0) if kind == "hill" else 1.0
        spend[c] = np.round(base * level * noise * weekend)
        curve = Curve(kind, 1.0, base * half, slope, carry)
        shapes[c] = curve.shape(adstock(spend[c], carry))
        curves.append(curve)
    weights = np.array([spec[6] for spec in CHANNEL_SPECS])
    raw_rate = weights[:, None] * shapes * acq_season[None, :]
    # A partial last day acquires only in the share of its signup hours already passed.
    signup_share = float(
        np.clip((w.cut - SIGNUP_HOURS[0]) / (SIGNUP_HOURS[1] - SIGNUP_HOURS[0]), 0, 1)
    )
    if w.cut:
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
    return _Marketing(spend, curves, acquired, signup_share, n_existing, n_new)


def _customers(
    config: SimConfig, w: _Window, marketing: _Marketing, cr: np.random.Generator
) -> _Customers:
    """The existing base and the acquired customers, in signup order (step 2)."""
    n_existing, n_new = marketing.n_existing, marketing.n_new
    cell = np.repeat(np.arange(marketing.acquired.size), marketing.acquired.ravel())
    existing_signup = BURN_IN_DAYS - cr.integers(60, 1100, n_existing)
    signup = np.concatenate([existing_signup, BURN_IN_DAYS + cell % w.window_days])
    signup = signup.astype(np.int64)
    channel = np.concatenate(
        [cr.integers(0, len(CHANNEL_SPECS), n_existing), cell // w.window_days]
    )
    is_new = np.concatenate([np.zeros(n_existing, bool), np.ones(n_new, bool)])
    order = np.lexsort((channel, signup))  # chronological ids
    signup, channel, is_new = signup[order], channel[order], is_new[order]
    n = config.customers
    mixes = np.array([spec[7] for spec in CHANNEL_SPECS])
    plan_probs = np.where(is_new[:, None], mixes[channel], EXISTING_MIX[None, :])
    plan0 = np.minimum((cr.random(n)[:, None] > np.cumsum(plan_probs, axis=1)).sum(axis=1), 2)
    annual = cr.random(n) < ANNUAL_SHARE[plan0]
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
    if w.cut:
        # Signups of the partial last day fall in its hours before the end (same draws, scaled).
        last = signup == w.days - 1
        signup_offset[last] = SIGNUP_HOURS[0] + (
            (signup_offset[last] - SIGNUP_HOURS[0]) * marketing.signup_share
        ).astype(np.int64)
    return _Customers(
        n=n,
        signup=signup,
        signup_seconds=signup * DAY + signup_offset,
        channel=channel,
        is_new=is_new,
        plan0=plan0,
        annual=annual,
        interval=np.where(annual, "year", "month"),
        discount_percent=discount_percent,
        discount_amount=discount_amount,
        trial=trial,
        users=users,
        company_size=company_size,
        annual_revenue=annual_revenue,
        country=country,
    )


def _latent_health(
    w: _Window, cust: _Customers, hr: np.random.Generator
) -> tuple[NDArray[np.bool_], FloatArray]:
    """Whether each customer exists on each day, and its latent health then (step 3)."""
    n, days, signup = cust.n, w.days, cust.signup
    day_grid = np.arange(days)[None, :]
    exists = day_grid >= signup[:, None]
    baseline = hr.normal(0.3, 0.6, n)
    declining = hr.random(n) < DECLINING_SHARE
    improving = ~declining & (hr.random(n) < 0.12)
    onset = signup + hr.integers(30, max(31, days), n)
    slope_down = hr.uniform(0.004, 0.02, n)
    since_onset = np.maximum(day_grid - onset[:, None], 0)
    drift = np.where(declining[:, None], -np.minimum(slope_down[:, None] * since_onset, 2.5), 0.0)
    drift += np.where(
        improving[:, None], np.minimum(0.003 * np.maximum(day_grid - signup[:, None], 0), 1.0), 0.0
    )
    shocks = hr.normal(0.0, HEALTH_SIGMA, (n, days))
    ar = np.empty((n, days))
    ar[:, 0] = shocks[:, 0] / np.sqrt(1 - HEALTH_PHI**2)
    for t in range(1, days):
        ar[:, t] = HEALTH_PHI * ar[:, t - 1] + shocks[:, t]
    return exists, baseline[:, None] + drift + ar


def _usage_demand(
    w: _Window, cust: _Customers, health: FloatArray, ur: np.random.Generator
) -> tuple[FloatArray, dict[str, FloatArray]]:
    """Each customer's demand in api_calls a month on each day, and the ratios of its other
    counters to it."""
    n = cust.n
    initial_utilisation = ur.beta(2.0, 3.5, n)
    growing = ur.random(n) < 0.2
    monthly_growth = np.where(growing, ur.uniform(0.03, 0.10, n), ur.normal(0.0, 0.01, n))
    day_grid = np.arange(w.days)[None, :]
    months_on = np.maximum(day_grid - np.maximum(cust.signup, 0)[:, None], 0) / 30.44
    demand = (
        initial_utilisation[:, None]
        * CAPACITY["api_calls"][cust.plan0][:, None]
        * np.exp(monthly_growth[:, None] * months_on + 0.25 * health)
    )
    metric_ratio = {m: np.exp(ur.normal(0.0, 0.25, n)) for m in ("storage_gb", "compute_units")}
    return demand, metric_ratio


def _plan_changes(
    config: SimConfig,
    w: _Window,
    cust: _Customers,
    exists: NDArray[np.bool_],
    health: FloatArray,
    demand: FloatArray,
    pr: np.random.Generator,
) -> tuple[NDArray[np.int8], list[tuple[int, int, int, int]]]:
    """The plan in force on each day (potential path), and the changes: (customer, day, from,
    to). Monthly checks on the window's anniversaries; a change lands within 19 days of one, so
    at least 9 days before the end (the last check is a month before the end's day)."""
    n = cust.n
    plan_at = np.repeat(cust.plan0[:, None], w.days, axis=1).astype(np.int8)
    changes: list[tuple[int, int, int, int]] = []
    check_days = [
        BURN_IN_DAYS + (w.start + relativedelta(months=m) - w.start).days
        for m in range(1, config.months)
    ]
    for tau in check_days:
        current = plan_at[:, tau].astype(np.int64)
        util = demand[:, tau] / CAPACITY["api_calls"][current]
        h = health[:, tau]
        eligible = exists[:, tau] & (tau - cust.signup >= 30)
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
    return plan_at, changes


def _sessions(
    config: SimConfig,
    w: _Window,
    cust: _Customers,
    exists: NDArray[np.bool_],
    health: FloatArray,
    plan_at: NDArray[np.int8],
    sr: np.random.Generator,
) -> _Sessions:
    """Sessions, the logins that opened some, and feature events (potential path)."""
    act_season = ACT_WEEKLY[w.weekday] * (
        1
        + ACT_YEARLY_AMPLITUDE * np.cos(2 * np.pi * (w.day_of_year - ACT_YEARLY_PEAK_DOY) / 365.25)
    )
    rate = (
        0.17
        * config.activity_scale
        * cust.users[:, None] ** 0.8
        * np.exp(0.6 * health)
        * act_season[None, :]
        * exists
    )
    daily = sr.poisson(rate)
    s_cust, s_day = np.nonzero(daily)
    reps = daily[s_cust, s_day]
    s_cust, s_day = np.repeat(s_cust, reps), np.repeat(s_day, reps)
    n_sessions = s_cust.size
    s_user = np.floor(cust.users[s_cust] * sr.random(n_sessions) ** 1.7).astype(np.int64)
    s_second = np.clip(sr.normal(14.5 * 3600, 3.2 * 3600, n_sessions), 0, DAY - 4 * 3600)
    s_time = s_day * DAY + s_second.astype(np.int64)
    s_health = health[s_cust, s_day]
    s_duration = np.clip(np.exp(sr.normal(6.2 + 0.25 * s_health, 0.8)), 10, 4 * 3600).astype(
        np.int64
    )
    s_login = sr.random(n_sessions) < 0.35
    # Feature use: per session a Poisson number of events, each on one of the customer's
    # currently adopted features (breadth grows with health and plan).
    plan_offset = np.array([-0.5, 0.0, 0.5])
    breadth = 2 + np.floor(
        10 * _sigmoid(1.2 * s_health + plan_offset[plan_at[s_cust, s_day]])
    ).astype(np.int64)
    per_session = sr.poisson(0.5 * np.exp(0.3 * s_health))
    f_session = np.repeat(np.arange(n_sessions), per_session)
    permutation = np.argsort(sr.random((cust.n, len(FEATURES))), axis=1)
    f_rank = np.floor(sr.random(f_session.size) * breadth[f_session]).astype(np.int64)
    f_cust = s_cust[f_session]
    f_offset = (sr.random(f_session.size) * s_duration[f_session]).astype(np.int64)
    return _Sessions(
        daily=daily,
        cust=s_cust,
        day=s_day,
        user=s_user,
        time=s_time,
        duration=s_duration,
        login=s_login,
        f_session=f_session,
        f_cust=f_cust,
        f_day=s_day[f_session],
        f_time=s_time[f_session] + f_offset,
        f_feature=permutation[f_cust, f_rank],
    )


def _tickets(
    cust: _Customers, exists: NDArray[np.bool_], health: FloatArray, tr: np.random.Generator
) -> _Tickets:
    """Support tickets, more of them (and less satisfied) as health falls (potential path)."""
    ticket_rate = 0.006 * cust.users[:, None] ** 0.4 * np.exp(-0.7 * health) * exists
    daily = tr.poisson(ticket_rate)
    t_cust, t_day = np.nonzero(daily)
    reps = daily[t_cust, t_day]
    t_cust, t_day = np.repeat(t_cust, reps), np.repeat(t_day, reps)
    n_tickets = t_cust.size
    opened = t_day * DAY + tr.integers(6 * 3600, 22 * 3600, n_tickets)
    closed = opened + np.exp(tr.normal(np.log(18 * 3600), 1.0, n_tickets)).astype(np.int64)
    priority = tr.choice(4, n_tickets, p=[0.3, 0.5, 0.15, 0.05])
    rated = tr.random(n_tickets) < 0.7
    satisfaction = np.clip(
        np.round(3.6 + 0.9 * health[t_cust, t_day] + tr.normal(0, 0.9, n_tickets)), 1, 5
    ).astype(np.int64)
    return _Tickets(
        daily=daily,
        cust=t_cust,
        day=t_day,
        opened=opened,
        closed=closed,
        priority=priority,
        satisfaction=np.where(rated, satisfaction, -1),
        subject=tr.integers(0, len(TICKET_SUBJECTS), n_tickets),
    )


def _segments(
    cust: _Customers, changes: list[tuple[int, int, int, int]]
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """One subscription segment per plan a customer holds: (customer, plan, start, end)."""
    by_customer: dict[int, list[tuple[int, int, int, int]]] = {}
    for ch in sorted(changes):
        by_customer.setdefault(ch[0], []).append(ch)
    segments: list[tuple[int, int, int, int]] = []
    for i in range(cust.n):
        begin = int(cust.signup_seconds[i])
        plan = int(cust.plan0[i])
        for _, day, _, to in by_customer.get(i, []):
            at = day * DAY + CHANGE_HOUR
            segments.append((i, plan, begin, at))
            begin, plan = at, to
        segments.append((i, plan, begin, NEVER * DAY))
    table = np.array(segments, dtype=np.int64).reshape(-1, 4)
    return table[:, 0].copy(), table[:, 1].copy(), table[:, 2].copy(), table[:, 3].copy()


def _bills(
    w: _Window, first: IntArray, step: IntArray, seg_end: IntArray
) -> tuple[IntArray, IntArray]:
    """Bills (segment, time), by segment then time: the first at ``first`` (the start, or the
    trial's end), then every ``step`` months on the same day of the month (capped at the 28th),
    while the segment lasts and before the window's end."""
    origin64 = np.datetime64(w.origin, "D")
    first_day64 = origin64 + (first // DAY).astype("timedelta64[D]")
    first_month = first_day64.astype("datetime64[M]")
    day_in_month = np.minimum(
        (first_day64 - first_month.astype("datetime64[D]")).astype(np.int64), 27
    )
    bill_seg: list[IntArray] = []
    bill_time: list[IntArray] = []
    for k in range(0, (w.days + 1100) // 28 + 2):
        month = first_month + (k * step).astype("timedelta64[M]")
        bill_day = (month.astype("datetime64[D]") - origin64).astype(np.int64) + day_in_month
        when = np.where(k == 0, first, bill_day * DAY + first % DAY)
        live = (when < seg_end) & (when < w.horizon)
        if not live.any():
            break
        keep = live & (when >= 0)
        bill_seg.append(np.flatnonzero(keep))
        bill_time.append(when[keep])
    b_seg = np.concatenate(bill_seg) if bill_seg else np.zeros(0, np.int64)
    b_time = np.concatenate(bill_time) if bill_time else np.zeros(0, np.int64)
    order = np.lexsort((b_time, b_seg))
    return b_seg[order], b_time[order]


def _billing(
    w: _Window,
    cust: _Customers,
    health: FloatArray,
    changes: list[tuple[int, int, int, int]],
    br: np.random.Generator,
) -> _Billing:
    """Subscriptions, their bills and the payment attempts: failures by plan and health,
    retried after 3 and 10 days; 1.2 % refunds (potential path)."""
    seg_cust, seg_plan, seg_start, seg_end = _segments(cust, changes)
    seg_first = np.r_[True, seg_cust[1:] != seg_cust[:-1]]
    has_trial = seg_first & cust.trial[seg_cust]
    seg_trial_end = np.where(has_trial, seg_start + TRIAL_DAYS * DAY, seg_start).astype(np.int64)
    annual = cust.annual[seg_cust]
    seg_amount = PLAN_PRICE[seg_plan] * np.where(annual, ANNUAL_MULTIPLIER, 1)
    seg_charge = (
        np.round(seg_amount * (1 - cust.discount_percent[seg_cust] / 100)).astype(np.int64)
        - cust.discount_amount[seg_cust]
    )
    b_seg, b_time = _bills(w, seg_trial_end, np.where(annual, 12, 1), seg_end)
    b_cust = seg_cust[b_seg]
    b_day = b_time // DAY
    n_bills = b_seg.size
    p_fail = FAIL_BASE[seg_plan[b_seg]] * np.exp(
        -0.4 * health[b_cust, np.minimum(b_day, w.days - 1)]
    )
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
    att_keep = att_time < w.horizon
    att_bill, att_time, att_failed = att_bill[att_keep], att_time[att_keep], att_failed[att_keep]
    att_reason = br.integers(0, len(FAIL_REASONS), att_bill.size)
    refunded = ~att_failed & (br.random(att_bill.size) < 0.012)
    refund_time = att_time + br.integers(2, 11, att_bill.size) * DAY
    return _Billing(
        seg_cust=seg_cust,
        seg_plan=seg_plan,
        seg_start=seg_start,
        seg_end=seg_end,
        seg_first=seg_first,
        has_trial=has_trial,
        seg_trial_end=seg_trial_end,
        seg_amount=seg_amount,
        seg_charge=seg_charge,
        b_seg=b_seg,
        b_time=b_time,
        att_bill=att_bill,
        att_time=att_time,
        att_failed=att_failed,
        att_cust=b_cust[att_bill],
        att_reason=att_reason,
        refunded=refunded,
        refund_time=refund_time,
    )


def _hazard_features(
    w: _Window,
    cust: _Customers,
    plan_at: NDArray[np.int8],
    sessions: _Sessions,
    tickets: _Tickets,
    billing: _Billing,
) -> tuple[dict[str, NDArray[np.float32]], FloatArray]:
    """The hazard's features on every (customer, day), from the data strictly before the day
    (``HAZARD_FEATURES``), and the cumulative payment failures (the truth's churn reasons)."""
    n, days = cust.n, w.days
    shape = (n, days)
    sessions_cum = _cumulative(sessions.daily)
    s30 = _window_sum(sessions_cum, 30)
    s14 = _window_sum(sessions_cum, 14)
    s28 = _window_sum(sessions_cum, 28)
    duration_cum = _cumulative(_bincount2(sessions.cust, sessions.day, shape, sessions.duration))
    d30 = _window_sum(duration_cum, 30)
    login = sessions.login
    login_daily = _bincount2(sessions.cust[login], sessions.day[login], shape)
    day_idx = np.broadcast_to(np.arange(days)[None, :], shape)
    last_login = np.where(login_daily > 0, day_idx, -NEVER)
    last_login = np.maximum(last_login, cust.signup[:, None])
    last_login = np.maximum.accumulate(last_login, axis=1)
    # strictly before the day: shift right by one
    last_before = np.concatenate([cust.signup[:, None], last_login[:, :-1]], axis=1)
    used = np.zeros((n, days, len(FEATURES)), dtype=np.int16)
    used[sessions.f_cust, sessions.f_day, sessions.f_feature] = 1
    used_cum = np.zeros((n, days + 1, len(FEATURES)), dtype=np.int16)
    np.cumsum(used, axis=1, out=used_cum[:, 1:, :])
    t_arr = np.arange(days)
    breadth30 = ((used_cum[:, t_arr, :] - used_cum[:, np.maximum(t_arr - 30, 0), :]) > 0).sum(
        axis=2
    )
    del used, used_cum
    tickets_cum = _cumulative(tickets.daily)
    low_sat = (tickets.satisfaction >= 1) & (tickets.satisfaction <= 2)
    low_cum = _cumulative(_bincount2(tickets.cust[low_sat], tickets.day[low_sat], shape))
    failed = billing.att_failed
    fail_daily = _bincount2(billing.att_cust[failed], billing.att_time[failed] // DAY, shape)
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
        "log_tenure_months": np.log1p(np.maximum(day_idx - cust.signup[:, None], 0) / 30.44).astype(
            np.float32
        ),
        "plan_starter": (plan_at == 0).astype(np.float32),
        "plan_enterprise": (plan_at == 2).astype(np.float32),
    }
    return features, fail_cum


def _churn(
    config: SimConfig,
    w: _Window,
    cust: _Customers,
    health: FloatArray,
    plan_at: NDArray[np.int8],
    sessions: _Sessions,
    tickets: _Tickets,
    billing: _Billing,
    rng: dict[str, np.random.Generator],
) -> _Churn:
    """The hazard and the churn it draws, and the trials that were cancelled (step 5)."""
    n, shape = cust.n, (cust.n, w.days)
    features, fail_cum = _hazard_features(w, cust, plan_at, sessions, tickets, billing)
    eta = np.zeros(shape)
    for name, coefficient in HAZARD_COEFFICIENTS.items():
        eta += coefficient * features[name]
    day_idx = np.arange(w.days)[None, :]
    at_risk = (day_idx >= BURN_IN_DAYS) & (day_idx > cust.signup[:, None])
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
    late = churn_second >= w.horizon
    churn_day = np.where(late, NEVER, churn_day)
    churn_second = np.where(late, -1, churn_second)
    # Trials: one that does not convert is cancelled before its end (unless the hazard's churn
    # came first); its subscription ends then and the customer leaves like any churned one.
    trial_second = np.where(cust.trial, cust.signup_seconds + TRIAL_DAYS * DAY, -1)
    trial_day = np.minimum(np.maximum(trial_second // DAY, 0), w.days - 1)
    p_convert = _sigmoid(
        TRIAL_CONVERSION_INTERCEPT + TRIAL_CONVERSION_HEALTH * health[np.arange(n), trial_day]
    )
    trial_draw = rng["trials"].random(n)
    cancel_second = np.maximum(
        trial_second - rng["trials"].integers(*TRIAL_CANCEL_WINDOW, n), cust.signup_seconds + 3600
    )
    abandons = cust.trial & (trial_draw >= p_convert)
    # A trial whose cancellation moment lies after the window's end is still undecided then.
    trial_cancelled = abandons & (cancel_second < w.horizon)
    trial_cancelled &= cancel_second < np.where(churn_day < NEVER, churn_second, NEVER * DAY)
    # The hazard's own events stay the truth's churn days; a cancelled trial is a departure
    # of another kind (truth.trials, left_day), which ends the data like a churn.
    return _Churn(
        intercept=intercept,
        hazard=hazard,
        features=features,
        fail_cum=fail_cum,
        churn_day=np.where(trial_cancelled, cancel_second // DAY, churn_day),
        churn_second=np.where(trial_cancelled, cancel_second, churn_second),
        hazard_churn_day=churn_day,
        left_day=np.where(trial_cancelled, cancel_second // DAY, NEVER).astype(np.int64),
        trial_second=trial_second,
        p_convert=p_convert,
        trial_cancelled=trial_cancelled,
    )


def _anniversary_after(origin: date, segment_start: int, moment: int) -> int:
    """The first anniversary of an annual segment at or after ``moment`` (seconds from the
    origin), for one whose anniversary lies past the simulated bills."""
    origin64 = np.datetime64(origin, "D")
    start_day = origin64 + np.timedelta64(segment_start // DAY, "D")
    after = start_day.astype("datetime64[M]")
    dom = min(int((start_day - after.astype("datetime64[D]")).astype(int)), 27)
    years = 1
    while True:
        month = after + np.timedelta64(12 * years, "M")
        candidate = (
            (month.astype("datetime64[D]") - origin64).astype(np.int64) + dom
        ) * DAY + segment_start % DAY
        if candidate >= moment:
            return int(candidate)
        years += 1


def _ends(w: _Window, cust: _Customers, billing: _Billing, churn: _Churn) -> _Ends:
    """Each customer's end: the churn moment for monthly plans (and cancelled trials), the
    next anniversary of the segment in force for annual ones (step 6)."""
    churned = churn.churn_day < NEVER
    end_second = np.full(cust.n, NEVER * DAY, dtype=np.int64)
    renewals_lost: dict[int, int] = {}
    for i in np.flatnonzero(churned).tolist():
        moment = int(churn.churn_second[i])
        if not cust.annual[i] or churn.trial_cancelled[i]:
            end_second[i] = moment
            continue
        segs = np.flatnonzero((billing.seg_cust == i) & (billing.seg_start <= moment))
        s = int(segs[-1])
        anniversaries = billing.b_time[(billing.b_seg == s) & (billing.b_time >= moment)]
        if anniversaries.size:
            end_second[i] = int(anniversaries[0])
        else:  # the anniversary lies past the simulated horizon
            end_second[i] = _anniversary_after(w.origin, int(billing.seg_start[s]), moment)
        renewals_lost[i] = int(end_second[i])
    return _Ends(churned, end_second, np.minimum(end_second // DAY, NEVER), renewals_lost)


def _kept(
    w: _Window,
    sessions: _Sessions,
    tickets: _Tickets,
    billing: _Billing,
    churn: _Churn,
    ends: _Ends,
    dormant_keep: np.random.Generator,
) -> _Kept:
    """Truncation: nothing after a customer's end (a few sessions while an annual plan runs
    out dormant) and nothing at or after the window's end."""
    churn_day, churn_second, churned = churn.churn_day, churn.churn_second, ends.churned
    s_cust, s_day = sessions.cust, sessions.day
    before = s_day < churn_day[s_cust]
    dormant = (s_day >= churn_day[s_cust]) & (s_day < ends.end_day[s_cust])
    keep_s = before | (dormant & (dormant_keep.random(s_cust.size) < 0.05))
    keep_s &= sessions.time < w.horizon
    seg_cust = billing.seg_cust
    return _Kept(
        sessions=keep_s,
        features=keep_s[sessions.f_session] & (sessions.f_time < w.horizon),
        tickets=(tickets.day < churn_day[tickets.cust]) & (tickets.opened < w.horizon),
        # Nothing is billed after the churn (annual plans are not billed again at their end).
        payments=~churned[billing.att_cust] | (billing.att_time < churn_second[billing.att_cust]),
        # Segments starting after the churn moment are dropped; the last one ends at the end.
        segments=(~churned[seg_cust] | (billing.seg_start < churn_second[seg_cust]))
        & (billing.seg_start < w.horizon),
        segment_end=np.minimum(
            billing.seg_end, np.where(churned[seg_cust], ends.end_second[seg_cust], NEVER * DAY)
        ),
    )


def _customer_rows(
    config: SimConfig, w: _Window, cust: _Customers, nm: np.random.Generator
) -> tuple[list[str], RowTable]:
    n = cust.n
    customer_ids = [f"cus_{i + 1:05d}" for i in range(n)]
    heads = nm.integers(0, len(NAME_HEADS), n)
    tails = nm.integers(0, len(NAME_TAILS), n)
    pairs = list(enumerate(zip(heads.tolist(), tails.tolist(), strict=True)))
    names = [f"{NAME_HEADS[h]} {NAME_TAILS[t]} {i + 1}" for i, (h, t) in pairs]
    emails = [
        f"billing@{NAME_HEADS[h].lower()}{NAME_TAILS[t].lower()}{i + 1}.example"
        for i, (h, t) in pairs
    ]
    segment_names = ("smb", "mid_market", "enterprise")
    attributes = [
        {
            "acquisition_channel": CHANNEL_SPECS[c][0],
            "segment": segment_names[p],
            "acquired_in_window": bool(new),
        }
        for c, p, new in zip(
            cust.channel.tolist(), cust.plan0.tolist(), cust.is_new.tolist(), strict=True
        )
    ]
    table = RowTable(
        n,
        {
            "external_id": Column("value", np.array(customer_ids, dtype=object)),
            "name": Column("value", np.array(names, dtype=object)),
            "email": Column("value", np.array(emails, dtype=object)),
            "company_size": Column("value", cust.company_size.astype(np.int64)),
            "annual_revenue": Column("value", cust.annual_revenue.astype(np.int64)),
            "currency": Column("constant", config.currency),
            "country": Column("value", np.array(COUNTRIES, dtype=object)[cust.country]),
            "signup_date": Column("day", cust.signup + (w.origin.toordinal() - EPOCH_DAY)),
            "attributes": Column("value", np.array(attributes, dtype=object)),
        },
    )
    return customer_ids, table


def _subscription_rows(
    config: SimConfig,
    w: _Window,
    cust: _Customers,
    billing: _Billing,
    kept: _Kept,
    customer_ids: list[str],
) -> RowTable:
    sk = np.flatnonzero(kept.segments)
    seg_cust = billing.seg_cust[sk]
    ended = np.where(kept.segment_end[sk] < w.horizon, w.epoch_seconds(kept.segment_end[sk]), -1)
    trial_end = np.where(billing.has_trial[sk], w.epoch_seconds(billing.seg_trial_end[sk]), -1)
    return RowTable(
        sk.size,
        {
            "external_id": Column("prefixed", sk + 1, "sub_", 6),
            "customer": Column("value", np.array(customer_ids, dtype=object)[seg_cust]),
            "plan": Column("value", np.array(PLANS, dtype=object)[billing.seg_plan[sk]]),
            "amount": Column("value", billing.seg_amount[sk].astype(np.int64)),
            "currency": Column("constant", config.currency),
            "interval": Column("value", cust.interval[seg_cust].astype(object)),
            "quantity": Column("constant", 1),
            "started_at": Column("timestamp", w.epoch_seconds(billing.seg_start[sk])),
            "ended_at": Column("timestamp", ended),
            "discount_percent": Column("value", cust.discount_percent[seg_cust]),
            "discount_amount": Column("value", cust.discount_amount[seg_cust].astype(np.int64)),
            "trial_end": Column("timestamp", trial_end),
        },
    )


def _activity_rows(
    w: _Window, sessions: _Sessions, kept: _Kept, customer_ids: list[str]
) -> RowTable:
    """Sessions, the logins that opened some of them, and feature events, in time order."""
    s = sessions
    ks, kf = np.flatnonzero(kept.sessions), np.flatnonzero(kept.features)
    kl = ks[s.login[ks]]
    kinds = np.concatenate([np.zeros(ks.size), np.ones(kl.size), np.full(kf.size, 2)]).astype(
        np.int64
    )
    a_cust = np.concatenate([s.cust[ks], s.cust[kl], s.f_cust[kf]])
    a_user = np.concatenate([s.user[ks], s.user[kl], s.user[s.f_session[kf]]])
    a_time = np.concatenate([s.time[ks], np.maximum(s.time[kl] - 5, 0), s.f_time[kf]])
    a_duration = np.concatenate([s.duration[ks], np.full(kl.size, -1), np.full(kf.size, -1)])
    a_feature = np.concatenate([np.full(ks.size + kl.size, -1), s.f_feature[kf]])
    order = np.lexsort((kinds, a_cust, a_time))
    a_cust, a_user, a_time, kinds = a_cust[order], a_user[order], a_time[order], kinds[order]
    a_duration, a_feature = a_duration[order], a_feature[order]
    user_ids = np.char.add(
        np.char.add(np.array(customer_ids)[a_cust], "-u"), np.char.zfill(a_user.astype(str), 2)
    ).astype(object)
    feature_names = np.array((None, *FEATURES), dtype=object)
    return RowTable(
        a_cust.size,
        {
            "external_id": Column("prefixed", np.arange(1, a_cust.size + 1), "act_", 8),
            "customer": Column("value", np.array(customer_ids, dtype=object)[a_cust]),
            "user_id": Column("value", user_ids),
            "kind": Column("value", np.array(["session", "login", "feature"], dtype=object)[kinds]),
            "occurred_at": Column("timestamp", w.epoch_seconds(a_time)),
            "duration_seconds": Column("value", _or_none(a_duration >= 0, a_duration)),
            "feature": Column("value", feature_names[a_feature + 1]),
        },
    )


def _ticket_rows(w: _Window, tickets: _Tickets, kept: _Kept, customer_ids: list[str]) -> RowTable:
    kt = np.flatnonzero(kept.tickets)
    kt = kt[np.argsort(tickets.opened[kt], kind="stable")]
    closed = np.where(tickets.closed[kt] < w.horizon, w.epoch_seconds(tickets.closed[kt]), -1)
    satisfaction = tickets.satisfaction[kt]
    priorities = np.array(["low", "normal", "high", "urgent"], dtype=object)
    return RowTable(
        kt.size,
        {
            "external_id": Column("prefixed", np.arange(1, kt.size + 1), "tkt_", 6),
            "customer": Column("value", np.array(customer_ids, dtype=object)[tickets.cust[kt]]),
            "opened_at": Column("timestamp", w.epoch_seconds(tickets.opened[kt])),
            "closed_at": Column("timestamp", closed),
            "priority": Column("value", priorities[tickets.priority[kt]]),
            "satisfaction": Column(
                "value", _or_none((satisfaction >= 1) & (closed >= 0), satisfaction)
            ),
            "subject": Column(
                "value", np.array(TICKET_SUBJECTS, dtype=object)[tickets.subject[kt]]
            ),
        },
    )


def _payment_rows(
    config: SimConfig, w: _Window, billing: _Billing, kept: _Kept, customer_ids: list[str]
) -> RowTable:
    """Every kept attempt (succeeded or failed) and the refunds, in time order."""
    b = billing
    kp = np.flatnonzero(kept.payments)
    p_kind = np.concatenate(
        [np.where(b.att_failed[kp], 1, 0), np.full(int(b.refunded[kp].sum()), 2)]
    )
    p_src = np.concatenate([kp, kp[b.refunded[kp]]])
    p_time = np.where(p_kind == 2, b.refund_time[p_src], b.att_time[p_src])
    p_live = p_time < w.horizon
    p_kind, p_src, p_time = p_kind[p_live], p_src[p_live], p_time[p_live]
    order = np.lexsort((p_kind, p_time))
    p_kind, p_src, p_time = p_kind[order], p_src[order], p_time[order]
    p_seg = b.b_seg[b.att_bill[p_src]]
    reasons = np.array(FAIL_REASONS, dtype=object)[b.att_reason[p_src]]
    statuses = np.array(["succeeded", "failed", "refunded"], dtype=object)
    return RowTable(
        p_src.size,
        {
            "external_id": Column("prefixed", np.arange(1, p_src.size + 1), "pay_", 7),
            "customer": Column("value", np.array(customer_ids, dtype=object)[b.att_cust[p_src]]),
            "subscription": Column("prefixed", p_seg + 1, "sub_", 6),
            "occurred_at": Column("timestamp", w.epoch_seconds(p_time)),
            "status": Column("value", statuses[p_kind]),
            "amount": Column("value", b.seg_charge[p_seg].astype(np.int64)),
            "currency": Column("constant", config.currency),
            "reason": Column(
                "value",
                _or_none(
                    p_kind > 0, np.where(p_kind == 1, reasons, "customer_request").astype(object)
                ),
            ),
        },
    )


def _marketing_rows(
    config: SimConfig,
    w: _Window,
    marketing: _Marketing,
    cust: _Customers,
    billing: _Billing,
    mk: np.random.Generator,
) -> RowTable:
    """Spend, impressions and clicks from the channel's CPM and CTR, and the conversions the
    acquisitions really were, with their first-year value; complete days only (a partial last
    day's spend is not reported yet)."""
    n_channels, spend = len(CHANNEL_SPECS), marketing.spend
    initial_value = np.zeros(cust.n)
    first_seg = np.flatnonzero(billing.seg_first)
    first_cust = billing.seg_cust[first_seg]
    initial_value[first_cust] = billing.seg_charge[first_seg] * np.where(
        cust.annual[first_cust], 1, 12
    )
    new_idx = np.flatnonzero(cust.is_new)
    cell_shape = (n_channels, w.window_days)
    new_channel, new_day = cust.channel[new_idx], cust.signup[new_idx] - BURN_IN_DAYS
    conv = _bincount2(new_channel, new_day, cell_shape)
    conv_value = _bincount2(new_channel, new_day, cell_shape, initial_value[new_idx])
    cpm = np.array([spec[8] for spec in CHANNEL_SPECS])
    ctr = np.array([spec[9] for spec in CHANNEL_SPECS])
    impressions = mk.poisson(spend / cpm[:, None] * 1000 * np.exp(mk.normal(0, 0.15, spend.shape)))
    clicks = mk.binomial(
        impressions, np.clip(ctr[:, None] * np.exp(mk.normal(0, 0.1, spend.shape)), 0, 1)
    )
    # Carryover converts on paused days too: those conversions came through some click.
    clicks = np.maximum(clicks, conv)
    impressions = np.maximum(impressions, clicks)
    full_days = w.full_days
    m_channel = np.repeat(np.arange(n_channels), full_days)
    m_day = np.tile(np.arange(full_days), n_channels) + (w.start.toordinal() - EPOCH_DAY)

    def reported(values: NDArray[Any]) -> NDArray[np.int64]:
        return np.asarray(np.round(values[:, :full_days]).ravel(), dtype=np.int64)

    channel_names = np.array([spec[0] for spec in CHANNEL_SPECS], dtype=object)
    return RowTable(
        n_channels * full_days,
        {
            "channel": Column("value", channel_names[m_channel]),
            "day": Column("day", m_day),
            "spend": Column("value", reported(spend)),
            "currency": Column("constant", config.currency),
            "impressions": Column("value", reported(impressions)),
            "clicks": Column("value", reported(clicks)),
            "conversions": Column("value", reported(conv)),
            "attributed_revenue": Column("value", reported(conv_value)),
        },
    )


TRUTH_SUBSCRIPTION_FIELDS = (
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


def _truth_subscriptions(w: _Window, subscriptions: RowTable, kept: _Kept) -> list[dict[str, Any]]:
    """The stored subscriptions; pending cancellations (annual plans past the window) carry
    their true end."""
    truth_subs = [{k: row.get(k) for k in TRUTH_SUBSCRIPTION_FIELDS} for row in subscriptions[:]]
    for row, s in zip(truth_subs, np.flatnonzero(kept.segments).tolist(), strict=True):
        if row["ended_at"] is None and kept.segment_end[s] < NEVER * DAY:
            row["ended_at"] = _iso_second(int(w.epoch_seconds(kept.segment_end[s])))
    return truth_subs


def _churn_truth(
    w: _Window,
    cust: _Customers,
    plan_at: NDArray[np.int8],
    churn: _Churn,
    ends: _Ends,
    customer_ids: list[str],
) -> list[dict[str, Any]]:
    out = []
    fail_cum, churn_day = churn.fail_cum, churn.churn_day
    for i in np.flatnonzero(ends.churned & ~churn.trial_cancelled).tolist():
        recent_failure = fail_cum[i, churn_day[i]] - fail_cum[i, max(churn_day[i] - 30, 0)] > 0
        out.append(
            {
                "customer": customer_ids[i],
                "decided_at": _iso_second(int(w.epoch_seconds(churn.churn_second[i]))),
                "ended_at": _iso_second(int(w.epoch_seconds(ends.end_second[i]))),
                "interval": str(cust.interval[i]),
                "plan": PLANS[int(plan_at[i, churn_day[i]])],
                "reason": "payment_failed" if recent_failure else "voluntary",
                "ended_within_window": bool(ends.end_second[i] < w.horizon),
            }
        )
    return out


def _trials_truth(
    w: _Window,
    cust: _Customers,
    billing: _Billing,
    churn: _Churn,
    ends: _Ends,
    customer_ids: list[str],
) -> list[dict[str, Any]]:
    """Every trial with its known outcome: converted when its subscription outlived the
    trial's end (None while the trial is still running when the window ends)."""
    first_segment = np.flatnonzero(billing.seg_first)
    trial_second = churn.trial_second
    return [
        {
            "customer": customer_ids[i],
            "subscription": f"sub_{int(first_segment[i]) + 1:06d}",
            "trial_end": _iso_second(int(w.epoch_seconds(trial_second[i]))),
            "converted": None
            if trial_second[i] >= w.horizon and not churn.trial_cancelled[i]
            else bool(ends.end_second[i] > trial_second[i]),
            "probability": round(float(churn.p_convert[i]), 4),
        }
        for i in np.flatnonzero(cust.trial).tolist()
    ]


def _renewals_truth(
    w: _Window,
    cust: _Customers,
    billing: _Billing,
    ends: _Ends,
    kept: _Kept,
    customer_ids: list[str],
) -> list[dict[str, Any]]:
    """Each annual anniversary inside the window, renewed or lost."""
    renewals = []
    lost = ends.renewals_lost
    for s_idx in np.flatnonzero(cust.annual[billing.seg_cust] & kept.segments).tolist():
        i = int(billing.seg_cust[s_idx])
        times = billing.b_time[billing.b_seg == s_idx][1:]  # anniversaries after the first bill
        times = times[times >= BURN_IN_DAYS * DAY]
        if i in lost:
            times = np.append(times[times < lost[i]], lost[i])
        for when in times.tolist():
            if when >= w.horizon:
                continue
            renewals.append(
                {
                    "customer": customer_ids[i],
                    "subscription": f"sub_{s_idx + 1:06d}",
                    "renewal_at": _iso_second(int(w.epoch_seconds(when))),
                    "renewed": not (i in lost and when >= lost[i]),
                }
            )
    return renewals


def _channels_truth(marketing: _Marketing) -> dict[str, dict[str, Any]]:
    value_per_conversion = _value_per_conversion()
    return {
        spec[0]: {
            "curve": marketing.curves[c].to_dict(),
            "s_shaped": marketing.curves[c].s_shaped,
            "base_daily_spend": spec[1],
            "plan_mix": dict(zip(PLANS, spec[7], strict=True)),
            "revenue_per_conversion": value_per_conversion[c],
            "cpm": spec[8],
            "ctr": spec[9],
        }
        for c, spec in enumerate(CHANNEL_SPECS)
    }


def _truth(
    config: SimConfig,
    w: _Window,
    marketing: _Marketing,
    cust: _Customers,
    plan_at: NDArray[np.int8],
    changes: list[tuple[int, int, int, int]],
    billing: _Billing,
    churn: _Churn,
    ends: _Ends,
    kept: _Kept,
    subscriptions: RowTable,
    customer_ids: list[str],
    usage_truth: dict[str, Any],
    experiment_truth: list[dict[str, Any]],
) -> Truth:
    truth_subs = _truth_subscriptions(w, subscriptions, kept)
    return Truth(
        seed=config.seed,
        config=config.to_dict(),
        origin=w.origin,
        start=w.start,
        end=w.end,
        hazard=_hazard_truth(churn),
        churn=_churn_truth(w, cust, plan_at, churn, ends, customer_ids),
        trials=_trials_truth(w, cust, billing, churn, ends, customer_ids),
        channels=_channels_truth(marketing),
        acquisition_seasonality=_acquisition_seasonality_truth(),
        activity_seasonality=_activity_seasonality_truth(),
        experiments=experiment_truth,
        mrr_by_month=_mrr_by_month(truth_subs, w.start, w.end),
        renewals=_renewals_truth(w, cust, billing, ends, kept, customer_ids),
        plan_changes=_plan_changes_truth(w, changes, churn, ends, customer_ids),
        plans=_plans_truth(),
        usage=usage_truth,
        subscriptions=truth_subs,
        customers=customer_ids,
        signup_day=cust.signup.tolist(),
        daily_hazard=churn.hazard,
        features=churn.features,
        churn_day=churn.hazard_churn_day,
        left_day=churn.left_day,
    )


def _hazard_truth(churn: _Churn) -> dict[str, Any]:
    """The churn hazard's form, its calibrated intercept and coefficients, the latent health."""
    return {
        "form": "daily hazard = exp(intercept + Σ coefficient·feature); P(churn within H days "
        "from d) = 1 − exp(−Σ hazard over [d, d+H))",
        "intercept": churn.intercept,
        "coefficients": dict(HAZARD_COEFFICIENTS),
        "features": dict(HAZARD_FEATURES),
        "latent_health": {
            "ar1_phi": HEALTH_PHI,
            "ar1_sigma": HEALTH_SIGMA,
            "declining_share": DECLINING_SHARE,
        },
    }


def _acquisition_seasonality_truth() -> dict[str, Any]:
    return {
        "weekly_monday_first": ACQ_WEEKLY.tolist(),
        "yearly_amplitude": ACQ_YEARLY_AMPLITUDE,
        "yearly_peak_day_of_year": ACQ_YEARLY_PEAK_DOY,
        "form": "rate × weekly[weekday] × (1 + amplitude·cos(2π(doy − peak)/365.25))",
    }


def _activity_seasonality_truth() -> dict[str, Any]:
    return {
        "weekly_monday_first": ACT_WEEKLY.tolist(),
        "yearly_amplitude": ACT_YEARLY_AMPLITUDE,
        "yearly_peak_day_of_year": ACT_YEARLY_PEAK_DOY,
    }


def _plan_changes_truth(
    w: _Window,
    changes: list[tuple[int, int, int, int]],
    churn: _Churn,
    ends: _Ends,
    customer_ids: list[str],
) -> list[dict[str, Any]]:
    """Every upgrade and downgrade that happened before its customer churned, in order."""
    churned, churn_second = ends.churned, churn.churn_second
    return [
        {
            "customer": customer_ids[i],
            "at": _iso_second(int(w.epoch_seconds(day * DAY + CHANGE_HOUR))),
            "from": PLANS[a],
            "to": PLANS[b],
            "kind": "upgrade" if b > a else "downgrade",
        }
        for i, day, a, b in sorted(changes)
        if day * DAY + CHANGE_HOUR < (churn_second[i] if churned[i] else NEVER * DAY)
    ]


def _plans_truth() -> dict[str, dict[str, Any]]:
    return {
        name: {
            "monthly_price": int(PLAN_PRICE[p]),
            "annual_price": int(PLAN_PRICE[p] * ANNUAL_MULTIPLIER),
            "capacities": {m: float(CAPACITY[m][p]) for m in CAPACITY},
        }
        for p, name in enumerate(PLANS)
    }


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
    seats = _weekly_seats(n, n_weeks, report, s_cust, s_time, s_user)
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
    m_idx, all_cust, all_week = m_idx[order], all_cust[order], all_week[order]
    values = values[order]
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
    return table, _usage_truth(over, customer_ids)


def _weekly_seats(
    n: int, n_weeks: int, report: int, s_cust: IntArray, s_time: IntArray, s_user: IntArray
) -> IntArray:
    """Distinct users with a session in each customer's reported weeks (the seats gauge)."""
    weeks_back = (report - s_time) // (7 * DAY)
    week_of_session = np.where(s_time <= report, n_weeks - 1 - weeks_back, -1)
    counted = week_of_session >= 0
    distinct = np.unique(
        (s_cust[counted] * n_weeks + week_of_session[counted]) * 64
        + np.minimum(s_user[counted], 63)
    )
    return np.bincount(distinct // 64, minlength=n * n_weeks).reshape(n, n_weeks)


def _usage_truth(over: FloatArray, customer_ids: list[str]) -> dict[str, Any]:
    """How the usage was reported, and who passed (or neared) a capacity: ``over`` is each
    customer's highest monthly api_calls over its plan's capacity."""
    return {
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
