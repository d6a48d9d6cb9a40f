"""Shared pieces of the console pages: colours, the MRR chart with its forecast, and the AI
performance table. Never commits."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from aethercrown.analytics import metrics
from aethercrown.core.money import major
from aethercrown.investor import report
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
