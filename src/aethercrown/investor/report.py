"""Rendering of the monthly investor report: charts (matplotlib, Agg backend), HTML (Jinja2, the
charts inlined as PNG data URIs so the file stands alone) and PDF (reportlab). Takes the report's
JSON and returns bytes or text; no database access."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from aethercrown.core.money import major, money
from aethercrown.core.numbers import percent

TEMPLATES = Path(__file__).parent / "templates"

_env = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _plot_value(amount: int | float | None, currency: str) -> float:
    return major(amount, currency) or 0.0


# The PDF frame each chart fills (17 × 7 cm): the figure has the same shape, is laid out to
# fit inside it (constrained layout, not a tight crop that would change the shape), and the
# picture is placed at exactly that size, so nothing is cut off or stretched.
CHART_FRAME_CM = (17.0, 7.0)
CHART_SIZE_IN = (7.2, 7.2 * CHART_FRAME_CM[1] / CHART_FRAME_CM[0])


def _figure_png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def _chart_figure() -> tuple[Any, Any]:
    fig = Figure(figsize=CHART_SIZE_IN, layout="constrained")
    ax = fig.subplots()
    # Amounts as people write them (grouped thousands), never an offset or scientific notation.
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.margins(y=0.12)
    return fig, ax


def _legend_below(ax: Any, columns: int) -> None:
    """The legend under the plot, outside it: it never covers a bar or a line."""
    ax.legend(
        fontsize=7, ncol=columns, loc="upper center", bbox_to_anchor=(0.5, -0.32), frameon=False
    )


def charts(report: dict[str, Any]) -> dict[str, bytes]:
    """PNG charts: MRR with its forecast band, and the monthly MRR movements. Figures are made
    with matplotlib's object API, not pyplot: pyplot's global figure state is not thread-safe,
    and reports render in a thread pool."""
    currency = report["currency"]
    trend = report["trend"]
    out: dict[str, bytes] = {}
    if not trend:
        return out
    months = [row["month"] for row in trend]
    mrr = [_plot_value(row["mrr"], currency) for row in trend]
    fig, ax = _chart_figure()
    ax.plot(months, mrr, marker="o", color="#2563eb", label="MRR")
    forecast = report.get("forecast") or {}
    if forecast.get("months"):
        fm = [months[-1], *forecast["months"]]
        mean = [mrr[-1], *[_plot_value(v, currency) for v in forecast["mean"]]]
        known = [
            i
            for i, (lo, hi) in enumerate(zip(forecast["lower"], forecast["upper"], strict=True))
            if lo is not None and hi is not None
        ]
        # The band covers the horizons whose interval is known (none on a short history).
        band = [0, *[i + 1 for i in known]]
        lower = [mrr[-1], *[_plot_value(forecast["lower"][i], currency) for i in known]]
        upper = [mrr[-1], *[_plot_value(forecast["upper"][i], currency) for i in known]]
        ax.plot(fm, mean, linestyle="--", color="#9333ea", label="forecast")
        fm = [fm[i] for i in band]
        ax.fill_between(
            fm,
            lower,
            upper,
            color="#9333ea",
            alpha=0.15,
            label=f"{int(forecast['level'] * 100)}% interval",
        )
    ax.set_title(f"MRR ({currency})")
    ax.tick_params(axis="x", rotation=45, labelsize=7)
    ax.grid(alpha=0.3)
    _legend_below(ax, 3)
    out["mrr"] = _figure_png(fig)

    fig, ax = _chart_figure()
    gains = {"new": "#16a34a", "expansion": "#22c55e", "reactivation": "#86efac"}
    losses = {"contraction": "#f97316", "churn": "#dc2626"}
    bottom = [0.0] * len(trend)
    for name, colour in gains.items():
        values = [_plot_value(row[name], currency) for row in trend]
        ax.bar(months, values, bottom=bottom, color=colour, label=name)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    bottom = [0.0] * len(trend)
    for name, colour in losses.items():
        values = [-(_plot_value(row[name], currency)) for row in trend]
        ax.bar(months, values, bottom=bottom, color=colour, label=name)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_title(f"MRR movements ({currency})")
    ax.tick_params(axis="x", rotation=45, labelsize=7)
    _legend_below(ax, 5)
    out["movements"] = _figure_png(fig)
    return out


def figure_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    f = report["figures"]
    if f is None:
        return []
    c = report["currency"]
    return [
        ("MRR", money(f["mrr"], c)),
        ("ARR", money(f["arr"], c)),
        ("Paying customers", number(f["customers"], 0)),
        ("Net new MRR", money(f["net_new_mrr"], c)),
        (
            "New / expansion / reactivation",
            " / ".join(money(f[k], c) for k in ("new", "expansion", "reactivation")),
        ),
        ("Contraction / churn", " / ".join(money(f[k], c) for k in ("contraction", "churn"))),
        ("MRR growth (month)", percent(f["mrr_growth_rate"])),
        (
            "Net revenue retention (month / 12 months)",
            f"{percent(f['nrr'])} / {percent(f['nrr_12m'])}",
        ),
        (
            "Gross revenue retention (month / 12 months)",
            f"{percent(f['grr'])} / {percent(f['grr_12m'])}",
        ),
        (
            "Logo churn / revenue churn",
            f"{percent(f['logo_churn_rate'])} / {percent(f['revenue_churn_rate'])}",
        ),
        ("ARPA", money(f["arpa"], c)),
        ("LTV", money(f["ltv"], c)),
        ("CAC / payback (months)", f"{money(f['cac'], c)} / {number(f['cac_payback_months'])}"),
        ("Quick ratio", number(f["quick_ratio"])),
        ("Trial conversion", percent(f["trial_conversion_rate"])),
        ("DAU / MAU", percent(f["dau_mau"])),
    ]


def render_html(report: dict[str, Any]) -> str:
    images = {
        name: "data:image/png;base64," + base64.b64encode(png).decode()
        for name, png in charts(report).items()
    }
    return _env.get_template("monthly_report.html.j2").render(
        report=report, rows=figure_rows(report), images=images
    )


def render_pdf(report: dict[str, Any]) -> bytes:
    # reportlab is imported on the first PDF asked for: it costs every process start ~0.3 s
    # and most never render one.
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=f"{report['tenant']} — {report['month']}",
        leftMargin=1.8 * cm,
        rightMargin=1.8 * cm,
        topMargin=1.5 * cm,
        bottomMargin=1.5 * cm,
    )
    story: list[Any] = [
        Paragraph(f"{_esc(report['tenant'])} — monthly report {report['month']}", styles["Title"]),
        Paragraph(
            f"Generated {report['generated_at']} · currency {report['currency']}", styles["Normal"]
        ),
        Spacer(1, 0.4 * cm),
    ]
    if report["figures"] is None:
        story.append(Paragraph("No subscription data for this month.", styles["Normal"]))
    else:
        for line in report["highlights"]:
            story.append(Paragraph("• " + _esc(line), styles["Normal"]))
        story.append(Spacer(1, 0.3 * cm))
        table = Table([["Figure", "Value"], *figure_rows(report)], colWidths=[9 * cm, 8 * cm])
        table.setStyle(
            TableStyle(
                [
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#1e293b")),
                    ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
                    ("FONTSIZE", (0, 0), (-1, -1), 8),
                    ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#cbd5e1")),
                    (
                        "ROWBACKGROUNDS",
                        (0, 1),
                        (-1, -1),
                        [colors.white, colors.HexColor("#f1f5f9")],
                    ),
                ]
            )
        )
        story.append(table)
        for png in charts(report).values():
            story.append(Spacer(1, 0.3 * cm))
            story.append(
                Image(io.BytesIO(png), width=CHART_FRAME_CM[0] * cm, height=CHART_FRAME_CM[1] * cm)
            )
    doc.build(story)
    return buffer.getvalue()


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
