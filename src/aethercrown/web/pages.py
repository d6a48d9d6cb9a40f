"""What each console page shows, read only through the domains' service functions and shaped
into tiles, chart specifications (drawn by the vendored uPlot, each with a data table) and
tables. Never commits."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from aethercrown.alerts import service as alerts
from aethercrown.analytics import metrics
from aethercrown.analytics import service as analytics
from aethercrown.analytics.kpis import KPIS, display
from aethercrown.analytics.schemas import PeriodRequest
from aethercrown.automation import service as automation
from aethercrown.budget import service as budget
from aethercrown.churn import service as churn
from aethercrown.churn.models import ChurnModel
from aethercrown.churn.schemas import CampaignOut
from aethercrown.clock import utcnow
from aethercrown.connectors import adspend_service, segment_service, stripe_service
from aethercrown.content import service as content
from aethercrown.core.errors import ProblemError
from aethercrown.core.ledger import digest
from aethercrown.core.money import major, money
from aethercrown.core.numbers import percent, plain
from aethercrown.core.pagination import PageParams
from aethercrown.experiments import service as experiments
from aethercrown.health import service as health
from aethercrown.investor import service as investor
from aethercrown.metering import service as metering
from aethercrown.onboarding import service as onboarding
from aethercrown.security import service as security
from aethercrown.tasks import service as tasks
from aethercrown.tenants.service import get_tenant
from aethercrown.web.filters import Filters
from aethercrown.web.service import (
    CUSTOMERS,
    FORECAST,
    GAIN,
    LOSS,
    MRR_COLOUR,
    NET,
    ai_rows,
    mrr_chart,
    tenant_name,
)
from aethercrown.webhooks import service as webhooks

LIST_SIZE = 25
# Probability bins' labels, short enough for ten on a phone (the chart's title says "%").
TENTHS = [f"{i * 10}–{i * 10 + 10}" for i in range(10)]
# The decision feed and the campaigns' expected saving look back this many days.
FEED_DAYS = 30
# The usage page's renewals look this many days ahead: every monthly subscription renews
# within it.
RENEWAL_DAYS = 31
DRILL_SIZE = 500
PLAN_COLOURS = ("#2563eb", "#9333ea", "#0891b2", "#ea580c", "#16a34a", "#be123c", "#64748b")
# The drill-downs' columns, in their tables' order.
CUSTOMER_COLUMNS = (
    "external_id", "name", "previous_mrr", "mrr", "change", "renews_at", "renewal_probability",
)  # fmt: skip
RENEWAL_COLUMNS = (
    "external_id", "name", "plan", "mrr", "renews_at", "churn_probability", "renewal_probability",
)  # fmt: skip
MOVEMENT_LABELS = {
    "paying": "Paying customers",
    "new": "New",
    "expansion": "Expansion",
    "reactivation": "Reactivation",
    "contraction": "Contraction",
    "churn": "Churned",
}


# ---------------------------------------------------------------------------------------------
# Charts: a specification the page's script draws, and the same figures as a table


def fmt_value(value: Any, fmt: str, currency: str) -> str:
    """A chart value written for people (the data table and the axis use the same rules)."""
    if value is None:
        return "–"
    if fmt == "money":
        return f"{currency} {plain(value, 0)}"
    if fmt == "percent":
        return percent(value)
    if fmt == "count":
        return plain(value, 0)
    return plain(value)


def figure(
    chart_id: str,
    title: str,
    fmt: str,
    currency: str,
    x_labels: list[str],
    lines: list[dict[str, Any]],
    *,
    x_kind: str = "month",
    x_values: list[float] | None = None,
    summary: str = "",
) -> dict[str, Any]:
    """A chart: x is months (time axis), categories or numbers; each series a line, dashes,
    a band edge or bars. The table lists every plotted value beside the chart."""
    if x_kind == "month":
        xs: list[float] = [metrics.month_start(m).timestamp() for m in x_labels]
    elif x_kind == "category":
        xs = [float(i) for i in range(len(x_labels))]
    else:
        xs = list(x_values or [])
    rows = [
        [label, *(fmt_value(s["values"][i], fmt, currency) for s in lines)]
        for i, label in enumerate(x_labels)
    ]
    return {
        "id": chart_id,
        "title": title,
        "format": fmt,
        "currency": currency,
        "x_kind": x_kind,
        "x": xs,
        "x_labels": x_labels,
        "series": lines,
        "aria": f"{title}. {summary}".strip() if summary else f"{title}: chart, data table below",
        "table": {"columns": ["", *(s["label"] for s in lines)], "rows": rows},
    }


def line(label: str, values: list[Any], color: str, kind: str = "line") -> dict[str, Any]:
    return {"label": label, "values": values, "color": color, "kind": kind}


def _major(values: list[Any], currency: str) -> list[float | None]:
    return [major(v, currency) for v in values]


def table_rows(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> Markup:
    """A long table's rows written here, each value escaped: the template's loop spent more
    on looking up and escaping 500 rows' cells than the rest of a drill-down."""
    return Markup(
        "".join(
            "<tr>" + "".join(f"<td>{escape(r[k])}</td>" for k in keys) + "</tr>\n" for r in rows
        )
    )


def _safely(build: Callable[[], Any], fallback: Any = None) -> Any:
    """A section whose domain answers a problem (nothing configured yet, no data) shows its
    empty state instead of failing the whole page."""
    try:
        return build()
    except ProblemError:
        return fallback


# ---------------------------------------------------------------------------------------------
# Overview


def _tile(
    key: str,
    row: dict[str, Any] | None,
    previous: dict[str, Any] | None,
    currency: str,
    link: str | None = None,
) -> dict[str, Any]:
    value = row.get(key) if row else None
    before = previous.get(key) if previous else None
    delta = None
    if value is not None and before is not None:
        unit = KPIS[key].unit
        diff = value - before
        if unit == "percent":
            delta = f"{diff * 100:+.1f} pts"
        elif unit == "money":
            delta = ("+" if diff >= 0 else "−") + money(abs(diff), currency)
        else:
            delta = ("+" if diff >= 0 else "−") + plain(abs(diff))
    return {
        "label": KPIS[key].label,
        "value": display(key, value, currency),
        "delta": delta,
        "link": link,
    }


def overview_tiles(rows: list[dict[str, Any]], currency: str, filters: Filters) -> list[Any]:
    """The last complete month's figures against the month before, each linking to the
    customers behind it where there are some."""
    latest = rows[-1] if rows else None
    previous = rows[-2] if len(rows) > 1 else None

    def drill(movement: str) -> str | None:
        if latest is None:
            return None
        return filters.link("/console/customers", month=latest["month"], movement=movement)

    return [
        _tile("mrr", latest, previous, currency, drill("paying")),
        _tile("arr", latest, previous, currency),
        _tile("nrr", latest, previous, currency, drill("expansion")),
        _tile("grr", latest, previous, currency, drill("contraction")),
        _tile("customers", latest, previous, currency, drill("paying")),
        _tile("arpa", latest, previous, currency),
        _tile("ltv", latest, previous, currency),
        _tile("quick_ratio", latest, previous, currency),
        _tile("logo_churn_rate", latest, previous, currency, drill("churn")),
        _tile("new_customers", latest, previous, currency, drill("new")),
    ]


def movements_figure(rows: list[dict[str, Any]], currency: str) -> dict[str, Any]:
    """MRR movements as stacked bars, gains above the axis and losses below, net new MRR as a
    line; the table lists each movement on its own."""
    gains = [
        ("New", "new", GAIN),
        ("Expansion", "expansion", "#65a30d"),
        ("Reactivation", "reactivation", "#0d9488"),
    ]
    losses = [("Contraction", "contraction", "#f97316"), ("Churn", "churn", LOSS)]
    # Stacked: each bar is drawn from the axis to the running total, the widest first, so the
    # segments show one above the other.
    stacked: list[dict[str, Any]] = []
    for group, sign in ((gains, 1), (losses, -1)):
        running = [0] * len(rows)
        tops = []
        for label, key, colour in group:
            running = [t + sign * r[key] for t, r in zip(running, rows, strict=True)]
            tops.append(line(label, _major(running, currency), colour, "bars"))
        stacked.extend(reversed(tops))
    chart = figure(
        "chart-movements",
        f"MRR movements ({currency})",
        "money",
        currency,
        [r["month"] for r in rows],
        [*stacked, line("Net new MRR", _major([r["net_new_mrr"] for r in rows], currency), NET)],
        summary="gains stacked above the axis, losses below, net new MRR as a line",
    )
    chart["table"] = {
        "columns": ["Month", "New", "Expansion", "Reactivation", "Contraction", "Churn", "Net"],
        "rows": [
            [r["month"], *(money(r[k], currency) for k in (*metrics.MOVEMENTS, "net_new_mrr"))]
            for r in rows
        ],
    }
    return chart


def trial_funnel(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "started": sum(r.get("trials_started", 0) for r in rows),
        "ended": sum(r.get("trials_ended", 0) for r in rows),
        "converted": sum(r.get("trials_converted", 0) for r in rows),
    }


def overview_charts(
    rows: list[dict[str, Any]], mrr_forecast: Any, funnel: dict[str, int], currency: str
) -> list[dict[str, Any]]:
    """MRR with its forecast, its movements, MRR by plan, retention, customers and the trial
    funnel."""
    months = [r["month"] for r in rows]
    plans = sorted({p for r in rows for p in r.get("mrr_by_plan", {})})
    plan_chart = figure(
        "chart-plans",
        f"MRR by plan ({currency})",
        "money",
        currency,
        months,
        [
            line(p, _major([r["mrr_by_plan"].get(p, 0) for r in rows], currency), c)
            for p, c in zip(
                plans, PLAN_COLOURS * (len(plans) // len(PLAN_COLOURS) + 1), strict=False
            )
        ],
    )
    mrr = mrr_chart(rows, mrr_forecast, currency)
    mrr_fig = figure(
        "chart-mrr",
        mrr["title"],
        "money",
        currency,
        [datetime.fromtimestamp(x).strftime("%Y-%m") for x in mrr["x"]],
        [line(s["label"], s["values"], s["color"], s["kind"]) for s in mrr["series"]],
        summary="monthly recurring revenue with its forecast and interval",
    )
    retention = figure(
        "chart-retention",
        "Net and gross revenue retention (month)",
        "percent",
        currency,
        months,
        [
            line("NRR", [r["nrr"] for r in rows], MRR_COLOUR),
            line("GRR", [r["grr"] for r in rows], FORECAST),
            line("Logo churn", [r["logo_churn_rate"] for r in rows], LOSS),
        ],
    )
    customers = figure(
        "chart-customers",
        "Paying customers",
        "count",
        currency,
        months,
        [
            line("Customers", [r["customers"] for r in rows], CUSTOMERS),
            line("New", [r["new_customers"] for r in rows], GAIN, "bars"),
            line("Churned", [-r["churned_customers"] for r in rows], LOSS, "bars"),
        ],
    )
    funnel_chart = figure(
        "chart-funnel",
        "Trial funnel over the range",
        "count",
        currency,
        ["Trials started", "Trials ended", "Converted to paid"],
        [
            line(
                "Trials",
                [funnel["started"], funnel["ended"], funnel["converted"]],
                CUSTOMERS,
                "bars",
            )
        ],
        x_kind="category",
    )
    return [
        mrr_fig,
        movements_figure(rows, currency),
        plan_chart,
        retention,
        customers,
        funnel_chart,
    ]


def movement_rows(
    rows: list[dict[str, Any]], currency: str, filters: Filters
) -> list[dict[str, Any]]:
    """Each month's MRR and movements, newest first, each count linking to its customers."""
    return [
        {
            "month": r["month"],
            "mrr": money(r["mrr"], currency),
            "links": [
                (
                    MOVEMENT_LABELS[k],
                    r[count],
                    filters.link("/console/customers", month=r["month"], movement=k),
                )
                for k, count in (
                    ("new", "new_customers"),
                    ("churn", "churned_customers"),
                    ("reactivation", "reactivated_customers"),
                )
            ],
            "expansion": filters.link("/console/customers", month=r["month"], movement="expansion"),
            "contraction": filters.link(
                "/console/customers", month=r["month"], movement="contraction"
            ),
        }
        for r in reversed(rows)
    ]


def overview(session: Session, tenant_id: uuid.UUID, filters: Filters) -> dict[str, Any]:
    period = filters.period()
    revenue = analytics.revenue(session, tenant_id, period)
    growth = analytics.growth(session, tenant_id, period)
    rows = revenue["months"]
    currency = revenue["currency"]
    funnel = trial_funnel(rows)
    cohorts = analytics.cohort_retention(session, tenant_id, period)
    ai = analytics.ai_performance(session, tenant_id, filters.ledger_period())
    width = max((len(c["retention"]) for c in cohorts), default=0)
    return {
        "tenant": tenant_name(session, tenant_id),
        "currency": currency,
        "month": rows[-1]["month"] if rows else None,
        "previous_month": rows[-2]["month"] if len(rows) > 1 else None,
        "tiles": overview_tiles(rows, currency, filters),
        "charts": overview_charts(rows, growth["forecasts"].get("mrr"), funnel, currency),
        "movement_rows": movement_rows(rows, currency, filters),
        "cohorts": cohorts,
        "cohort_width": min(width, 13),
        "funnel": funnel,
        "ai": ai,
        "ai_rows": ai_rows(ai, currency),
    }


def customers(
    session: Session, tenant_id: uuid.UUID, filters: Filters, month: str, movement: str
) -> dict[str, Any]:
    """The rows behind one figure: the customers of a month's movement, named."""
    period = filters.period()
    total, rows = analytics.customers_behind(
        session, tenant_id, month, movement, period, DRILL_SIZE
    )
    currency = analytics.reporting_currency(session, tenant_id, None)
    ids = [r["customer_id"] for r in rows]
    names = metering.customer_names(session, tenant_id, ids)
    # Each customer still paying today: its next renewal and the chance it renews (from the
    # kept renewals: computing them for 500 customers took longer than the rest of the page).
    outlook = renewal_summary(session, tenant_id, currency)["by_customer"]
    out = []
    for r in rows:
        ref = names.get(r["customer_id"])
        ahead = outlook.get(str(r["customer_id"]))
        out.append(
            {
                "external_id": ref.external_id if ref else str(r["customer_id"]),
                "name": (ref.name if ref else None) or "–",
                "mrr": money(r["mrr"], currency),
                "previous_mrr": money(r["previous_mrr"], currency),
                "change": money(r["mrr"] - r["previous_mrr"], currency),
                "renews_at": "–" if ahead is None else ahead[0],
                "renewal_probability": "–" if ahead is None else ahead[1],
            }
        )
    return {
        "tenant": tenant_name(session, tenant_id),
        "month": month,
        "movement": movement,
        "movement_label": MOVEMENT_LABELS[movement],
        "previous_month": metrics.add_months(month, -1),
        "total": total,
        "rows": out,
        "rows_html": table_rows(out, CUSTOMER_COLUMNS),
        "movements": [
            (k, v, filters.link("/console/customers", month=month, movement=k))
            for k, v in MOVEMENT_LABELS.items()
        ],
    }


# ---------------------------------------------------------------------------------------------
# Churn


def factor_text(factors: list[Any]) -> str:
    """A score's top three factors in words: "days_since_login (raises risk), …"."""
    words = []
    for f in factors[:3]:
        if isinstance(f, dict):
            effect = "raises" if f.get("direction") == "raises_risk" else "lowers"
            words.append(f"{f.get('feature', '?')} ({effect} risk)")
    return ", ".join(words)


def churn_page(session: Session, tenant_id: uuid.UUID, filters: Filters) -> dict[str, Any]:
    currency = analytics.reporting_currency(session, tenant_id, None)
    campaigns, _ = churn.campaign_page(session, tenant_id, PageParams(limit=200))
    levels = ("critical", "high", "medium", "low")
    counts = [sum(1 for c in campaigns if c.risk_level == level) for level in levels]
    ai = analytics.ai_performance(session, tenant_id, filters.ledger_period())
    model = ai["churn_model"]
    uplift = churn.uplift_report(session, tenant_id)
    at_risk = sorted((c for c in campaigns if c.outcome is None), key=lambda c: -c.probability)
    at_risk = at_risk[:LIST_SIZE]
    factors = churn.latest_factors(session, tenant_id, [c.customer_id for c in at_risk])
    models = list(reversed(churn.list_models(session, tenant_id)))
    by_month = model["by_month"]
    charts = [
        _risk_distribution_chart(campaigns, currency),
        _calibration_chart(model["calibration"]["bins"], currency),
        *_model_quality_charts(models, by_month, currency),
    ]
    now = utcnow()
    savings = churn.campaign_savings(
        session, tenant_id, currency, now - timedelta(days=FEED_DAYS), now, uplift
    )
    return {
        "tenant": tenant_name(session, tenant_id),
        "levels": list(zip(levels, counts, strict=True)),
        "charts": charts,
        "at_risk": at_risk,
        "factors": {cid: factor_text(items) for cid, items in factors.items()},
        "model": model,
        "ai_rows": ai_rows(ai, currency)[1:4],
        "uplift": uplift["buckets"],
        "auc_months": [
            {
                **m,
                "auc_text": plain(m["auc"], 3),
                "link": filters.link("/console/churn/scores", month=m["month"]),
            }
            for m in reversed(by_month)
        ],
        "savings": savings,
        "savings_sentence": savings_sentence(savings),
        "savings_link": filters.link("/console/churn/campaigns"),
    }


def _risk_distribution_chart(campaigns: Sequence[CampaignOut], currency: str) -> dict[str, Any]:
    """How many customers in campaigns fall in each tenth of churn probability."""
    bins = [0] * 10
    for c in campaigns:
        bins[min(int(c.probability * 10), 9)] += 1
    return figure(
        "chart-risk",
        "Churn probability (%) of customers in campaigns",
        "count",
        currency,
        TENTHS,
        [line("Customers", bins, LOSS, "bars")],
        x_kind="category",
    )


def _calibration_chart(calibration: list[dict[str, Any]], currency: str) -> dict[str, Any]:
    return figure(
        "chart-calibration",
        "Calibration: predicted vs observed churn",
        "percent",
        currency,
        [f"{b['lower'] * 100:.0f}–{b['upper'] * 100:.0f}%" for b in calibration],
        [
            line("Mean predicted", [b["mean_predicted"] for b in calibration], FORECAST, "bars"),
            line("Observed rate", [b["observed_rate"] for b in calibration], LOSS),
        ],
        x_kind="category",
    )


def _model_quality_charts(
    models: Sequence[ChurnModel], by_month: list[dict[str, Any]], currency: str
) -> list[dict[str, Any]]:
    """The churn model's quality per training and per scoring month (each once it has data)."""
    charts = []
    if models:
        charts.append(
            figure(
                "chart-auc",
                "Churn model quality by training",
                "number",
                currency,
                [m.created_at.strftime("%Y-%m-%d") + f" v{m.version}" for m in models],
                [
                    line("ROC AUC", [round(m.roc_auc, 3) for m in models], MRR_COLOUR),
                    line("Brier score", [round(m.brier, 3) for m in models], LOSS),
                ],
                x_kind="category",
                summary="ROC AUC and Brier score of each trained model",
            )
        )
    if by_month:
        charts.append(
            figure(
                "chart-auc-months",
                "Churn model AUC by scoring month",
                "number",
                currency,
                [m["month"] for m in by_month],
                [line("ROC AUC", [m["auc"] for m in by_month], MRR_COLOUR)],
                # Months as categories: a scoring month without outcomes is simply absent.
                x_kind="category",
                summary="ROC AUC of the scores made each month against the outcomes that followed",
            )
        )
    return charts


def whole_money(amount: int | float | None, currency: str) -> str:
    """Minor units as whole major units with the code after: "6,120 USD" (the feed's style)."""
    value = major(amount, currency)
    return "–" if value is None else f"{plain(value, 0)} {currency}"


def savings_sentence(savings: dict[str, Any]) -> str:
    """ "42 churn campaigns started for 38 customers, expected to save 6,120 USD MRR (95%
    interval −300 to 12,500 USD)", from ``churn.campaign_savings``."""
    n, customers, currency = savings["campaigns"], savings["customers"], savings["currency"]
    text = (
        f"{n:,} churn campaign{'' if n == 1 else 's'} started for {customers:,} "
        f"customer{'' if customers == 1 else 's'}"
    )
    if savings["held_out"]:
        text += f" ({savings['held_out']:,} held out)"
    if savings["expected_save"] is not None:
        text += f", expected to save {whole_money(savings['expected_save'], currency)} MRR"
        if savings["interval"]:
            low, high = savings["interval"]
            text += (
                f" (95% interval {plain(major(low, currency), 0)} to {whole_money(high, currency)})"
            )
        if savings["unmeasured"]:
            text += (
                f"; {savings['unmeasured']:,} at a risk level without a measured uplift count "
                "nothing"
            )
    elif savings["treated"]:
        text += "; no uplift against the holdout is measured yet, so no saving is expected"
    return text


def churn_scores(
    session: Session, tenant_id: uuid.UUID, filters: Filters, month: str
) -> dict[str, Any]:
    """The rows behind one month of the AUC chart: the customers scored that month, highest
    probability first, and whether each churned within the horizon."""
    found = analytics.scores_of_month(session, tenant_id, month, DRILL_SIZE)
    ids = []
    for r in found["rows"]:
        try:
            ids.append(uuid.UUID(r["customer_id"]))
        except ValueError:
            continue
    names = metering.customer_names(session, tenant_id, ids)
    months = analytics.churn_auc_by_month(session, tenant_id, PeriodRequest(start=month, end=month))
    auc = months[0]["auc"] if months else None
    rows = []
    for r in found["rows"]:
        try:
            ref = names.get(uuid.UUID(r["customer_id"]))
        except ValueError:
            ref = None
        rows.append(
            {
                "external_id": ref.external_id if ref else r["customer_id"],
                "name": (ref.name if ref else None) or "–",
                "probability": percent(r["probability"]),
                "outcome": "–"
                if r["churned"] is None
                else ("churned" if r["churned"] else "stayed"),
                "scored_at": r["scored_at"].strftime("%Y-%m-%d"),
            }
        )
    return {
        "tenant": tenant_name(session, tenant_id),
        "month": month,
        "scored": found["scored"],
        "with_outcome": found["with_outcome"],
        "churned": found["churned"],
        "auc": plain(auc, 3),
        "rows": rows,
        "parent": filters.link("/console/churn"),
    }


def churn_campaigns(session: Session, tenant_id: uuid.UUID, filters: Filters) -> dict[str, Any]:
    """The rows behind the expected saving: each campaign of the last FEED_DAYS days with its
    customer's MRR when it started and its own expected saving."""
    currency = analytics.reporting_currency(session, tenant_id, None)
    now = utcnow()
    savings = churn.campaign_savings(
        session, tenant_id, currency, now - timedelta(days=FEED_DAYS), now
    )
    shown = savings["rows"][:DRILL_SIZE]
    names = metering.customer_names(session, tenant_id, [r["customer_id"] for r in shown])
    emails = content.campaign_emails(session, tenant_id, "churn", [r["campaign_id"] for r in shown])
    rows = []
    for r in shown:
        ref = names.get(r["customer_id"])
        email = emails.get(r["campaign_id"])
        rows.append(
            {
                "external_id": ref.external_id if ref else str(r["customer_id"]),
                "name": (ref.name if ref else None) or "–",
                "started": r["created_at"].strftime("%Y-%m-%d"),
                "risk_level": r["risk_level"],
                "probability": percent(r["probability"]),
                "group": "held out" if r["holdout"] else "treated",
                "mrr": money(r["mrr"], currency),
                "uplift": "–" if r["uplift"] is None else f"{r['uplift'] * 100:+.1f} pts",
                "expected_save": money(r["expected_save"], currency),
                "outcome": r["outcome"] or "–",
                # The email the content module wrote for the campaign, if any (held-out
                # customers never get one).
                "email": email.title if email else None,
                "email_id": str(email.id) if email else None,
            }
        )
    return {
        "tenant": tenant_name(session, tenant_id),
        "sentence": savings_sentence(savings),
        "treated_mrr": money(savings["treated_mrr"], currency),
        "days": FEED_DAYS,
        "total": savings["campaigns"],
        "rows": rows,
        "parent": filters.link("/console/churn"),
    }


# ---------------------------------------------------------------------------------------------
# Budget


def observed_table(channel: str, points: Sequence[Sequence[Any]]) -> str:
    """The observed periods of one channel as the rows of its data table, written once per
    data version: a few thousand rows through the template cost more than the rest of the
    page. Every value is escaped here."""
    return "".join(
        f'<tr><th scope="row">{escape(day or "–")}</th><td>{escape(plain(spend, 0))}</td>'
        f"<td>{escape(plain(ret, 0))}</td></tr>"
        for day, spend, ret in points
    )


def current_budget_plan(session: Session, tenant_id: uuid.UUID) -> tuple[Any, dict[str, Any]]:
    """Today's budget recommendation and, per channel, the history its curve was fitted to
    (each period's observed spend and return, with its data table), kept in the analytics
    snapshot store while the marketing data and stored fits are unchanged (at most five
    minutes): re-optimising the allocation took most of the page's time."""
    now = utcnow()

    def compute() -> dict[str, Any]:
        plan = budget.current_plan(session, tenant_id)
        found = {} if plan is None else budget.observed_points(session, tenant_id)
        return {
            "plan": None if plan is None else plan.model_dump(mode="json"),
            "observed": {
                channel: {
                    "x": [p[1] for p in points],
                    "y": [p[2] for p in points],
                    "table": observed_table(channel, points),
                }
                for channel, points in found.items()
            },
        }

    kept = analytics.cached(
        session,
        tenant_id,
        f"console-budget:{now:%Y-%m-%d}",
        now,
        compute,
        # "observed": a plan kept before the page drew the observed points is not reused.
        digest([*budget.plan_fingerprint(session, tenant_id), "observed points"]),
    )
    plan = None if kept["plan"] is None else budget.plan_from(kept["plan"])
    return plan, kept.get("observed", {})


def curve_figure(chart_id: str, ch: Any, observed: dict[str, Any], currency: str) -> dict[str, Any]:
    """One channel's fitted response curve with its band and, as points, the periods it was
    fitted to (drawn together by the page's script). The data tables list the curve and
    every observed period."""
    curve = ch.curve
    spec = figure(
        chart_id,
        f"{ch.channel}: return by spend per period",
        "number",
        currency,
        [plain(p.spend, 0) for p in curve],
        [
            line("Expected return", [p.response for p in curve], MRR_COLOUR),
            line("Low", [p.low for p in curve], FORECAST, "band"),
            line("High", [p.high for p in curve], FORECAST, "band"),
        ],
        x_kind="number",
        x_values=[p.spend for p in curve],
        summary=f"fitted {ch.model} curve with its interval and the {len(observed['x']):,} "
        f"observed periods it was fitted to, as points; current spend "
        f"{plain(ch.current_spend_per_period, 0)}",
    )
    spec["table"]["columns"][0] = "Spend"
    spec["points"] = {"label": "Observed", "color": GAIN, "x": observed["x"], "y": observed["y"]}
    return spec


def observed_data_table(ch: Any, observed: dict[str, Any]) -> dict[str, Any]:
    """The observed periods' data table, beside the chart (not in its JSON)."""
    return {
        "title": f"{ch.channel}: observed spend and return per period",
        "columns": ["Day", "Spend", "Return"],
        # Written by ``observed_table``, which escapes every value.
        "rows": Markup(observed["table"]),
    }


def budget_page(session: Session, tenant_id: uuid.UUID, filters: Filters) -> dict[str, Any]:
    currency = analytics.reporting_currency(session, tenant_id, None)
    plan, observed = current_budget_plan(session, tenant_id)
    observed_tables: dict[str, dict[str, Any]] = {}
    charts = []
    channels = []
    if plan is not None:
        for i, ch in enumerate(plan.channels):
            chart_id = f"chart-curve-{i}"
            seen = observed.get(ch.channel, {"x": [], "y": [], "table": ""})
            charts.append(curve_figure(chart_id, ch, seen, currency))
            observed_tables[chart_id] = observed_data_table(ch, seen)
            channels.append(
                {
                    "channel": ch.channel,
                    "model": ch.model,
                    "current": plain(ch.current_spend_per_period, 0),
                    "recommended": plain(plan.allocations.get(ch.channel), 0),
                    "marginal_roi": plain(ch.marginal_roi),
                    "historical_roi": plain(ch.historical_roi),
                    "observed": len(observed.get(ch.channel, {}).get("x", [])),
                    "chart": chart_id,
                }
            )
    ledger = budget.recent_allocations(session, tenant_id, 60)
    done = [a for a in reversed(ledger) if a.realised_return is not None]
    if done:
        charts.append(
            figure(
                "chart-ledger",
                "Budget ledger: predicted vs realised return",
                "number",
                currency,
                [a.created_at.strftime("%Y-%m-%d") for a in done],
                [
                    line("Predicted", [a.predicted_return for a in done], FORECAST),
                    line("Realised", [a.realised_return for a in done], GAIN),
                ],
                x_kind="category",
            )
        )
    return {
        "tenant": tenant_name(session, tenant_id),
        "plan": plan,
        "channels": channels,
        "charts": charts,
        "observed_tables": observed_tables,
        "ledger": ledger[:LIST_SIZE],
    }


# ---------------------------------------------------------------------------------------------
# Experiments


def experiments_page(session: Session, tenant_id: uuid.UUID, filters: Filters) -> dict[str, Any]:
    currency = analytics.reporting_currency(session, tenant_id, None)
    listed = experiments.recent(session, tenant_id, 12)
    fingerprints = experiments.results_fingerprints(session, tenant_id, listed)
    now = utcnow()
    shown = []
    charts = []
    for i, exp in enumerate(listed):

        def compute(exp: Any = exp) -> dict[str, Any]:
            try:
                out = experiments.evaluate(session, tenant_id, exp)[0]
            except ProblemError:
                return {"results": None}
            return {"results": out.model_dump(mode="json")}

        # Each evaluation aggregates every assignment and event of the experiment (tenths of
        # a second on the demo's): kept while the experiment and its data are unchanged.
        kept = analytics.cached(
            session,
            tenant_id,
            f"console-experiment:{exp.id}",
            now,
            compute,
            digest(fingerprints[exp.id]),
        )
        results = None if kept["results"] is None else experiments.results_from(kept["results"])
        entry: dict[str, Any] = {"experiment": experiments.to_out(exp), "results": results}
        if results is not None and results.metrics:
            primary = results.metrics[0]
            arms = [v for v in primary.variants if v.relative is not None]
            if arms:
                chart_id = f"chart-exp-{i}"
                entry["chart"] = chart_id
                charts.append(
                    figure(
                        chart_id,
                        f"{exp.name}: {primary.name}, relative effect vs control",
                        "percent",
                        currency,
                        [v.name for v in arms],
                        [
                            line(
                                "Low",
                                [v.relative.ci[0] if v.relative else None for v in arms],
                                LOSS,
                                "band",
                            ),
                            line(
                                "Effect",
                                [v.relative.effect if v.relative else None for v in arms],
                                MRR_COLOUR,
                                "points",
                            ),
                            line(
                                "High",
                                [v.relative.ci[1] if v.relative else None for v in arms],
                                GAIN,
                                "band",
                            ),
                        ],
                        x_kind="category",
                        summary="each variant's effect with its confidence interval",
                    )
                )
        shown.append(entry)
    return {"tenant": tenant_name(session, tenant_id), "experiments": shown, "charts": charts}


# ---------------------------------------------------------------------------------------------
# Usage


def upsell_summary(
    session: Session, tenant_id: uuid.UUID, parts: list[str] | None = None
) -> dict[str, Any]:
    """The upsell analysis the usage page shows (how many customers, the first candidates),
    kept in the analytics snapshot store while the usage, plans, settings and subscriptions
    it reads are unchanged (and for at most its five minutes): analysing every customer's
    usage takes seconds on a company of 2,000 customers, too long for each page view."""
    now = utcnow()

    def compute() -> dict[str, Any]:
        analysis = metering.analyse_upsell(session, tenant_id, None, now)
        return {
            "analysed": analysis.analysed,
            "candidates": [c.model_dump(mode="json") for c in analysis.candidates[:LIST_SIZE]],
        }

    # ``parts``: the fingerprint the caller already read (the usage page reads it once).
    fingerprint = digest(parts or metering.upsell_fingerprint(session, tenant_id))
    return analytics.cached(
        session, tenant_id, f"console-upsell:{now:%Y-%m-%d}", now, compute, fingerprint
    )


# Share of capacity used, by tenths, the last bin for customers at or over their limit.
CAPACITY_BINS = [*TENTHS, "≥ 100"]


def capacity_summary(
    session: Session, tenant_id: uuid.UUID, parts: list[str] | None = None
) -> dict[str, Any]:
    """Every customer on a capped plan against its capacity this period, one row per customer
    (each capped meter's usage against its limit, the fullest first), kept under the upsell
    analysis' fingerprint, which sees every input (usage, meters, plans, subscriptions),
    while it is unchanged and for at most five minutes. The table's rows are written once
    per data version: a thousand rows through the template cost more than the rest of the
    page."""
    now = utcnow()

    def compute() -> dict[str, Any]:
        found = metering.capacity_use(session, tenant_id, now)
        meters = sorted({r.metric for r in found})
        by_customer: dict[uuid.UUID, list[metering.CapacityUse]] = {}
        for r in found:
            by_customer.setdefault(r.customer_id, []).append(r)
        # Each customer by its fullest meter, the fullest first.
        ordered = sorted(
            by_customer.values(), key=lambda rs: (-max(r.share for r in rs), rs[0].external_id)
        )
        bins = [0] * len(CAPACITY_BINS)
        for rs in ordered:
            bins[min(int(max(r.share for r in rs) * 10), 10)] += 1
        return {
            "customers": len(ordered),
            "over": sum(1 for rs in ordered if max(r.share for r in rs) >= 1),
            "meters": meters,
            "bins": bins,
            "rows": "".join(capacity_row(rs, meters) for rs in ordered),
        }

    parts = parts or metering.upsell_fingerprint(session, tenant_id)
    fingerprint = digest([*parts, "capacity rows"])
    kept = analytics.cached(
        session, tenant_id, f"console-capacity:{now:%Y-%m-%d}", now, compute, fingerprint
    )
    # Written by ``capacity_row``, which escapes every value.
    return {**kept, "rows": Markup(kept["rows"])}


def capacity_row(uses: list[metering.CapacityUse], meters: list[str]) -> str:
    """One customer's row: external id, name, plan, its fullest share, then each meter's
    usage against its limit."""
    of = {r.metric: r for r in uses}
    first = uses[0]
    cells = [
        f"<td>{escape(plain(of[m].usage))} / {escape(plain(of[m].capacity))} "
        f"({escape(percent(of[m].share))})</td>"
        if m in of
        else "<td>–</td>"
        for m in meters
    ]
    return (
        f'<tr><th scope="row">{escape(first.external_id)}</th><td>{escape(first.name or "–")}'
        f"</td><td>{escape(first.plan)}</td>"
        f"<td>{escape(percent(max(r.share for r in uses)))}</td>{''.join(cells)}</tr>"
    )


def usage_page(session: Session, tenant_id: uuid.UUID, filters: Filters) -> dict[str, Any]:
    alerts, _ = metering.list_alerts(session, tenant_id, None, None, LIST_SIZE, None)
    # Both kept figures read the same inputs: their fingerprint is read once.
    parts = metering.upsell_fingerprint(session, tenant_id)
    capacity = capacity_summary(session, tenant_id, parts)
    upsell = _safely(lambda: upsell_summary(session, tenant_id, parts))
    candidates = upsell["candidates"] if upsell else []
    currency = analytics.reporting_currency(session, tenant_id, None)
    rows = [
        {
            "customer": a.customer,
            "name": a.customer_name or "–",
            "metric": a.metric,
            "level": a.level,
            "usage": plain(a.usage),
            "capacity": plain(a.capacity),
            "share": percent(a.usage / a.capacity) if a.capacity else "–",
            "plan": a.plan,
            "fired_at": a.fired_at.strftime("%Y-%m-%d %H:%M"),
        }
        for a in alerts
    ]
    by_level: dict[str, int] = {}
    for a in alerts:
        by_level[a.level] = by_level.get(a.level, 0) + 1
    charts = []
    if capacity["customers"]:
        charts.append(
            figure(
                "chart-capacity",
                "Customers by share of capacity used this period (%, fullest meter)",
                "count",
                currency,
                CAPACITY_BINS,
                [line("Customers", capacity["bins"], "#0891b2", "bars")],
                x_kind="category",
                summary="customers on a plan with limits, by the share of the limit used so "
                "far this billing period on their fullest meter",
            )
        )
    if alerts:
        labels = sorted(by_level)
        charts.append(
            figure(
                "chart-alerts",
                "Usage alerts by level",
                "count",
                currency,
                labels,
                [line("Alerts", [by_level[k] for k in labels], "#ea580c", "bars")],
                x_kind="category",
            )
        )
    renewals = renewal_summary(session, tenant_id, currency)
    if renewals["bins"]:
        charts.append(
            figure(
                "chart-renewals",
                f"Renewal probability (%) of the renewals due in {RENEWAL_DAYS} days",
                "count",
                currency,
                TENTHS,
                [line("Customers", renewals["bins"], CUSTOMERS, "bars")],
                x_kind="category",
                summary="customers by their probability of renewing",
            )
        )
    return {
        "tenant": tenant_name(session, tenant_id),
        "alerts": rows,
        "capacity": capacity,
        "candidates": candidates,
        "analysed": upsell["analysed"] if upsell else 0,
        "charts": charts,
        "renewal_days": RENEWAL_DAYS,
        "renewal_tiles": renewals["tiles"],
        "renewals": renewals["rows"],
        "renewals_link": "/console/usage/renewals",
    }


def renewal_summary(session: Session, tenant_id: uuid.UUID, currency: str) -> dict[str, Any]:
    """The renewals due in RENEWAL_DAYS days: tiles, the least likely first, and how many fall
    in each tenth of probability; and for the drill-downs every paying customer's renewal and
    the soonest renewals. Kept in the analytics snapshot store while the churn scores
    and subscriptions are unchanged (at most five minutes)."""
    now = utcnow()

    def compute() -> dict[str, Any]:
        outlook = churn.renewal_outlook(session, tenant_id, currency, now)
        soon = [
            r
            for r in outlook
            if (r.renews_at or r.ends_at or now) <= now + timedelta(days=RENEWAL_DAYS)
        ]
        known = [r for r in soon if r.renewal_probability is not None]
        expected = sum(r.mrr * (r.renewal_probability or 0.0) for r in known)
        scored_mrr = sum(r.mrr for r in known)
        # The least likely first: the renewals someone should look at.
        shown = sorted(
            soon,
            key=lambda r: (
                r.renewal_probability if r.renewal_probability is not None else 2.0,
                -r.mrr,
            ),
        )[:LIST_SIZE]
        soonest = outlook[:DRILL_SIZE]
        names = metering.customer_names(
            session, tenant_id, list({r.customer_id for r in [*shown, *soonest]})
        )
        bins = [0] * 10
        for r in known:
            bins[min(int((r.renewal_probability or 0.0) * 10), 9)] += 1
        return {
            "tiles": [
                {"label": f"Renewals due in {RENEWAL_DAYS} days", "value": plain(len(soon), 0)},
                {
                    "label": "MRR up for renewal",
                    "value": money(sum(r.mrr for r in soon), currency),
                },
                {
                    # Only customers with a churn score have a probability: the expected MRR
                    # is read against theirs, not against everything up for renewal.
                    "label": "Scored MRR expected to renew",
                    "value": f"{money(round(expected), currency)} of {money(scored_mrr, currency)}"
                    if known
                    else "–",
                },
                {
                    "label": "Cancelled (will not renew)",
                    "value": plain(sum(1 for r in soon if r.renews_at is None), 0),
                },
            ],
            "rows": [renewal_row(r, names, currency) for r in shown],
            "bins": bins if known else None,
            # For the drill-downs: every paying customer's renewal date and probability, and
            # the soonest renewals named.
            "by_customer": {
                str(r.customer_id): [
                    renewal_row(r, {}, currency)["renews_at"],
                    percent(r.renewal_probability),
                ]
                for r in outlook
            },
            "total": len(outlook),
            "soonest": [renewal_row(r, names, currency) for r in soonest],
        }

    fingerprint = digest(churn.renewal_fingerprint(session, tenant_id))
    return analytics.cached(
        session, tenant_id, f"console-renewals:{currency}:{now:%Y-%m-%d}", now, compute, fingerprint
    )


def renewal_row(r: churn.Renewal, names: dict[Any, Any], currency: str) -> dict[str, Any]:
    ref = names.get(r.customer_id)
    return {
        "external_id": ref.external_id if ref else str(r.customer_id),
        "name": (ref.name if ref else None) or "–",
        "plan": r.plan,
        "mrr": money(r.mrr, currency),
        "renews_at": r.renews_at.strftime("%Y-%m-%d")
        if r.renews_at
        else ("ends " + r.ends_at.strftime("%Y-%m-%d") if r.ends_at else "–"),
        "churn_probability": percent(r.churn_probability),
        "renewal_probability": percent(r.renewal_probability),
    }


def renewals(session: Session, tenant_id: uuid.UUID, filters: Filters) -> dict[str, Any]:
    """The rows behind the renewal figures: every paying customer's next renewal, soonest
    first, with its probability of renewing."""
    currency = analytics.reporting_currency(session, tenant_id, None)
    kept = renewal_summary(session, tenant_id, currency)
    return {
        "tenant": tenant_name(session, tenant_id),
        "total": kept["total"],
        "rows": kept["soonest"],
        "rows_html": table_rows(kept["soonest"], RENEWAL_COLUMNS),
        "parent": "/console/usage",
    }


# ---------------------------------------------------------------------------------------------
# Content


def content_page(session: Session, tenant_id: uuid.UUID, filters: Filters) -> dict[str, Any]:
    now = utcnow()
    start, end = now - timedelta(days=7), now + timedelta(days=60)
    scheduled = content.calendar(session, tenant_id, start, end)
    items = content.recent_items(session, tenant_id, 10)
    return {
        "tenant": tenant_name(session, tenant_id),
        "calendar": [content.calendar_entry(i) for i in scheduled][:50],
        "items": items,
        "start": start.date().isoformat(),
        "end": end.date().isoformat(),
    }


# ---------------------------------------------------------------------------------------------
# Onboarding


def onboarding_page(
    session: Session, tenant_id: uuid.UUID, filters: Filters, onboarding_id: uuid.UUID | None = None
) -> dict[str, Any]:
    """Every onboarding, or one onboarding's report (its steps, blockers and SLA target); a
    missing or another tenant's onboarding is the service's 404."""
    body: dict[str, Any] = {"tenant": tenant_name(session, tenant_id), "report": None}
    if onboarding_id is None:
        body["onboardings"] = onboarding.list_onboardings(session, tenant_id)
    else:
        body["report"] = onboarding.report(session, tenant_id, onboarding_id)
    return body


# ---------------------------------------------------------------------------------------------
# Operations


def operations_page(session: Session, tenant_id: uuid.UUID, filters: Filters) -> dict[str, Any]:
    now = utcnow()
    task_metrics = tasks.metrics(session, tenant_id, 24, now)
    workers = tasks.list_workers(session, tenant_id, now)
    runs = automation.recent_runs(session, tenant_id, LIST_SIZE)
    trends = health.health_trends(session, tenant_id, 24 * 7, None, now)
    deliveries = webhooks.recent_deliveries(session, tenant_id, LIST_SIZE)
    keys = security.tenant_due_keys(session, tenant_id, 30)
    return {
        "tenant": tenant_name(session, tenant_id),
        "tasks": task_metrics,
        "workers": workers,
        "runs": runs,
        "trends": trends.components,
        "deliveries": deliveries,
        "keys": keys,
    }


# ---------------------------------------------------------------------------------------------
# Alerts


def alerts_page(session: Session, tenant_id: uuid.UUID, filters: Filters) -> dict[str, Any]:
    """The tenant's alert channels (a Slack URL only masked) and their latest deliveries."""
    channels = alerts.list_channels(session, tenant_id)
    names = {c.id: c.name for c in channels}
    return {
        "tenant": tenant_name(session, tenant_id),
        "channels": [alerts.channel_out(c) for c in channels],
        "deliveries": [
            {"row": d, "channel": names.get(d.channel_id, "–")}
            for d in alerts.recent_deliveries(session, tenant_id, LIST_SIZE)
        ],
    }


# ---------------------------------------------------------------------------------------------
# Connectors


def connectors_page(session: Session, tenant_id: uuid.UUID, filters: Filters) -> dict[str, Any]:
    """The tenant's data sources: Stripe (connection, events, mapping, dead events, backfill),
    Segment-format sources and the ad-spend channel rules; a handful of aggregate queries."""
    since = utcnow() - stripe_service.RECENT
    stripe = stripe_service.console_summary(session, tenant_id)
    age = stripe["oldest_waiting_age"]
    return {
        "tenant": tenant_name(session, tenant_id),
        "stripe": stripe,
        "oldest_waiting": None if age is None else _age(age),
        "segment": segment_service.console_summary(session, tenant_id, since),
        "channel_rules": adspend_service.channel_rules(session, tenant_id),
    }


def _age(delta: timedelta) -> str:
    """A waiting time a person reads at a glance: "45 s", "12 min", "3 h 5 min", "2 d 4 h"."""
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


# ---------------------------------------------------------------------------------------------
# Investor


KIND_NOUNS = {
    "churn.campaign": ("churn campaign", "started"),
    "churn.score": ("churn score", "computed"),
    "budget_allocation": ("budget allocation", "made"),
    "experiment_verdict": ("experiment verdict", "reached"),
    "upsell": ("upsell offer", "made"),
}


def feed_sentence(group: dict[str, Any]) -> str:
    """One readable line for a group of like decisions: "42 churn campaigns started for 38
    customers (12 with an outcome)"."""
    noun, verb = KIND_NOUNS.get(
        group["kind"], (group["kind"].replace("_", " ").replace(".", " "), "made")
    )
    n = group["decisions"]
    subjects = group["subjects"]
    subject = group["subject_type"].replace("_", " ")
    text = f"{n:,} {noun}{'' if n == 1 else 's'} {verb}"
    if subjects:
        text += f" for {subjects:,} {subject}{'' if subjects == 1 else 's'}"
    if group["with_outcome"]:
        text += f" ({group['with_outcome']:,} with an outcome)"
    return text


def decision_summary(
    session: Session, tenant_id: uuid.UUID, days: int = FEED_DAYS
) -> list[dict[str, Any]]:
    """The feed's groups; the retention campaigns' group also says the MRR they are expected to
    save (``churn.campaign_savings`` over the same days)."""
    now = utcnow()
    since = now - timedelta(days=days)

    def compute() -> dict[str, Any]:
        out = []
        for g in analytics.decision_groups(session, tenant_id, since, now):
            sentence = feed_sentence(g)
            if g["kind"] == "churn.campaign":
                currency = analytics.reporting_currency(session, tenant_id, None)
                savings = churn.campaign_savings(session, tenant_id, currency, since, now)
                if savings["expected_save"] is not None:
                    sentence += (
                        f", expected to save {whole_money(savings['expected_save'], currency)} MRR"
                    )
            out.append({**g, "sentence": sentence})
        return {"groups": out}

    # Grouping the month's ledger and pricing the campaigns took most of the investor page's
    # time: kept while no decision is added and the business data is unchanged.
    kept = analytics.cached(
        session,
        tenant_id,
        f"console-feed:{days}",
        now,
        compute,
        analytics.decisions_fingerprint(session, tenant_id),
    )
    return list(kept["groups"])


def investor_page(session: Session, tenant_id: uuid.UUID, filters: Filters) -> dict[str, Any]:
    live = investor.live(session, tenant_id)
    kpis = investor.kpis(session, tenant_id, 24)
    currency = live["currency"]
    rows = kpis["months"]
    mrr = mrr_chart(rows, kpis["forecasts"].get("mrr"), currency)
    mrr_months = [datetime.fromtimestamp(x).strftime("%Y-%m") for x in mrr["x"]]
    charts = [
        figure(
            "chart-mrr",
            mrr["title"],
            "money",
            currency,
            mrr_months,
            [line(s["label"], s["values"], s["color"], s["kind"]) for s in mrr["series"]],
            summary="monthly recurring revenue with its forecast and interval",
        ),
        figure(
            "chart-customers",
            "Paying customers",
            "count",
            currency,
            [r["month"] for r in rows],
            [line("Customers", [r["customers"] for r in rows], CUSTOMERS)],
        ),
    ]
    latest = kpis["latest"]
    tiles = [
        {"label": "MRR", "value": money(live["mrr"], currency)},
        {"label": "ARR", "value": money(live["arr"], currency)},
        {"label": "Paying customers", "value": str(live["customers"])},
        {"label": "Active users (30 days)", "value": str(live["active_users_30d"])},
        {"label": "AI tasks running", "value": str(live["ai_tasks_running"])},
        {
            "label": "Uptime",
            "value": live["uptime"]["status"]
            if live["uptime"]["value"] is None
            else percent(live["uptime"]["value"]),
        },
        {"label": "MRR growth (CMGR)", "value": percent(kpis["mrr_cmgr"])},
        {"label": "NRR (12 months)", "value": percent(latest["nrr_12m"]) if latest else "–"},
    ]
    return {
        "tenant": tenant_name(session, tenant_id),
        "as_of": live["as_of"],
        "currency": currency,
        "tiles": tiles,
        "charts": charts,
        "feed": decision_summary(session, tenant_id),
    }


def public_page(session: Session, tenant_id: uuid.UUID, filters: Filters) -> dict[str, Any]:
    settings = investor.public_settings(session, tenant_id)
    tenant = get_tenant(session, tenant_id)
    slug = tenant.slug if tenant else ""
    published = _safely(lambda: investor.public_metrics(session, slug))
    return {
        "tenant": tenant_name(session, tenant_id),
        "settings": settings.model_dump(mode="json"),
        "slug": slug,
        "published": published,
    }
