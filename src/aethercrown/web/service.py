"""What the dashboard pages show: the same service calls as the JSON API, shaped into tiles and
chart specifications for the vendored uPlot. Never commits."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from aethercrown.analytics import metrics
from aethercrown.analytics import service as analytics
from aethercrown.analytics.kpis import EXECUTIVE_TILES, KPIS, display
from aethercrown.analytics.schemas import PeriodRequest
from aethercrown.core.money import major, money
from aethercrown.core.pagination import PageParams
from aethercrown.investor import report
from aethercrown.investor import service as investor
from aethercrown.tenants.service import get_tenant

FEED_SIZE = 15


def _x(months: list[str]) -> list[int]:
    return [int(metrics.month_start(m).timestamp()) for m in months]


def _major(values: list[Any], currency: str) -> list[float | None]:
    return [major(v, currency) for v in values]


def tenant_name(session: Session, tenant_id: uuid.UUID) -> str:
    tenant = get_tenant(session, tenant_id)
    return tenant.name if tenant else str(tenant_id)


# One colour per meaning, on every page: MRR and its forecast, gains, losses, net, customers.
MRR_COLOUR = "#2563eb"
FORECAST = "#9333ea"
GAIN = "#16a34a"
LOSS = "#dc2626"
NET = "#0f172a"
CUSTOMERS = "#0891b2"


def series(label: str, values: list[Any], color: str, kind: str = "line") -> dict[str, Any]:
    return {"label": label, "values": values, "color": color, "kind": kind}


def chart(
    chart_id: str,
    title: str,
    fmt: str,
    currency: str,
    months: list[str],
    *lines: dict[str, Any],
) -> dict[str, Any]:
    """A chart as the page's script draws it: months on x, one or more series."""
    return {
        "id": chart_id,
        "title": title,
        "format": fmt,
        "currency": currency,
        "x": _x(months),
        "series": list(lines),
    }


def customers_chart(
    rows: list[dict[str, Any]], currency: str, *, with_movements: bool
) -> dict[str, Any]:
    lines = [series("Customers", [r["customers"] for r in rows], CUSTOMERS)]
    if with_movements:
        lines.append(series("New", [r["new_customers"] for r in rows], GAIN))
        lines.append(series("Churned", [r["churned_customers"] for r in rows], LOSS))
    months = [r["month"] for r in rows]
    return chart("chart-customers", "Paying customers", "count", currency, months, *lines)


def mrr_chart(
    rows: list[dict[str, Any]], forecast: dict[str, Any] | None, currency: str
) -> dict[str, Any]:
    """MRR by month, and the forecast with its interval continuing from the last actual."""
    months = [r["month"] for r in rows]
    actual = _major([r["mrr"] for r in rows], currency)
    future = [m for m in (forecast or {}).get("months", []) if not months or m > months[-1]]
    offset = len((forecast or {}).get("months", [])) - len(future)
    pad: list[float | None] = [None] * len(future)
    lines = [series("MRR", actual + pad, MRR_COLOUR)]
    if forecast and future:
        lead: list[float | None] = [None] * max(len(actual) - 1, 0)
        lead += actual[-1:]
        for key, label, kind in (
            ("mean", "Forecast", "dash"),
            ("lower", f"{int(forecast['level'] * 100)}% low", "band"),
            ("upper", f"{int(forecast['level'] * 100)}% high", "band"),
        ):
            values = _major(forecast[key][offset:], currency)
            lines.append(series(label, lead + values, FORECAST, kind))
    return chart("chart-mrr", f"MRR ({currency})", "money", currency, months + future, *lines)


def executive_page(session: Session, tenant_id: uuid.UUID) -> dict[str, Any]:
    period = PeriodRequest()
    revenue = analytics.revenue(session, tenant_id, period)
    growth = analytics.growth(session, tenant_id, period)
    ai = analytics.ai_performance(session, tenant_id, period)
    health = analytics.system_health(session, tenant_id, period)
    rows = revenue["months"]
    currency = revenue["currency"]
    latest = rows[-1] if rows else None
    months = [r["month"] for r in rows]
    charts = [
        mrr_chart(rows, growth["forecasts"].get("mrr"), currency),
        chart(
            "chart-movements",
            f"MRR movements ({currency})",
            "money",
            currency,
            months,
            series(
                "New + expansion + reactivation",
                _major([r["new"] + r["expansion"] + r["reactivation"] for r in rows], currency),
                GAIN,
                "bars",
            ),
            series(
                "Contraction + churn",
                _major([-(r["contraction"] + r["churn"]) for r in rows], currency),
                LOSS,
                "bars",
            ),
            series("Net new MRR", _major([r["net_new_mrr"] for r in rows], currency), NET),
        ),
        customers_chart(rows, currency, with_movements=True),
        chart(
            "chart-engagement",
            "Engagement and retention",
            "percent",
            currency,
            months,
            series("DAU/MAU", [r["dau_mau"] for r in rows], "#ea580c"),
            series("NRR", [r["nrr"] for r in rows], MRR_COLOUR),
            series("Logo churn", [r["logo_churn_rate"] for r in rows], LOSS),
        ),
    ]
    tiles = [
        (KPIS[key].label, display(key, latest[key] if latest else None, currency))
        for key in EXECUTIVE_TILES
    ]
    return {
        "tenant": tenant_name(session, tenant_id),
        "as_of": revenue["as_of"],
        "currency": currency,
        "tiles": tiles,
        "charts": charts,
        "ai": ai,
        "ai_rows": ai_rows(ai, currency),
        "health": health,
    }


def _points(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:+.1f} pts"


def ai_rows(ai: dict[str, Any], currency: str) -> list[tuple[str, str]]:
    """The AI-performance table: each measure next to what it was measured on, all read from
    the decision ledger (predictions joined with what then happened)."""
    churn = ai["churn_model"]
    calibration = churn["calibration"]
    campaigns = ai["campaigns"]
    budget = ai["budget"]
    experiments = ai["experiments"]
    tasks = ai["tasks"]
    ci = campaigns["ci95"]
    uplift = _points(campaigns["retention_uplift"])
    if ci is not None:
        uplift += f" (95% interval {_points(ci[0])} to {_points(ci[1])})"
    return [
        (
            "Decisions (with outcome)",
            f"{ai['decisions']['total']:,} ({ai['decisions']['with_outcome']:,})",
        ),
        (
            "Churn model AUC (scores with outcome, churned)",
            f"{report.number(churn['auc'], 3)} ({churn['scored_with_outcome']:,}, "
            f"{churn['churned']:,})",
        ),
        (
            "Churn model Brier score / ECE",
            f"{report.number(calibration['brier'], 3)} / {report.number(calibration['ece'], 3)}",
        ),
        (
            "Retention campaigns: retention uplift against the holdout",
            f"{uplift}; treated {campaigns['treated_retained']:,} of {campaigns['treated']:,} "
            f"retained, held out {campaigns['holdout_retained']:,} of {campaigns['holdout']:,}",
        ),
        (
            "Budget: predicted vs realised return (allocations with outcome)",
            f"{report.money(budget['predicted_total'], currency)} vs "
            f"{report.money(budget['realised_total'], currency)} "
            f"({budget['decisions_with_outcome']:,}; MAPE {report.percent(budget['mape'])}, "
            f"bias {report.percent(budget['bias'])})",
        ),
        (
            "Experiment decisions (with outcome); verdicts the true effect bore out",
            f"{experiments['decided']:,} ({experiments['with_outcome']:,}); "
            f"{experiments['verdicts_right']:,} of {experiments['verdicts_judged']:,}",
        ),
        (
            "Tasks assigned / completed / running",
            f"{tasks['assigned']:,} / {tasks['completed']:,} / {tasks['running']:,}",
        ),
    ]


def investor_page(session: Session, tenant_id: uuid.UUID) -> dict[str, Any]:
    live = investor.live(session, tenant_id)
    kpis = investor.kpis(session, tenant_id, 24)
    feed = investor.activity_feed(session, tenant_id, PageParams(limit=FEED_SIZE), None)
    currency = live["currency"]
    rows = kpis["months"]
    charts = [
        mrr_chart(rows, kpis["forecasts"].get("mrr"), currency),
        customers_chart(rows, currency, with_movements=False),
    ]
    latest = kpis["latest"]
    tiles = [
        ("MRR", money(live["mrr"], currency)),
        ("ARR", money(live["arr"], currency)),
        ("Paying customers", str(live["customers"])),
        ("Active users (30 days)", str(live["active_users_30d"])),
        ("AI tasks running", str(live["ai_tasks_running"])),
        (
            "Uptime",
            live["uptime"]["status"]
            if live["uptime"]["value"] is None
            else report.percent(live["uptime"]["value"]),
        ),
        ("MRR growth (CMGR)", report.percent(kpis["mrr_cmgr"])),
        ("NRR (12 months)", report.percent(latest["nrr_12m"]) if latest else "–"),
    ]
    return {
        "tenant": tenant_name(session, tenant_id),
        "as_of": live["as_of"],
        "currency": currency,
        "tiles": tiles,
        "charts": charts,
        "feed": feed.items,
    }
