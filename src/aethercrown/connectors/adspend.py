"""Ad platforms' campaign-report CSV exports read into marketing-spend days: pure, no database.

Each platform names its columns its own way, puts title lines above the header (Google Ads,
LinkedIn), writes totals rows below the data, formats dates and numbers by locale, and states the
currency in a column or in the spend column's header (Meta: ``Amount spent (EUR)``). The header
row is found by its columns; every other row is a data row or skipped with a reason.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from aethercrown.core.money import exponent

FORMATS = ("google-ads", "meta", "linkedin")


@dataclass(frozen=True)
class Columns:
    """Header names (lower-cased) each field may have, first match wins."""

    day: tuple[str, ...]
    campaign: tuple[str, ...]
    spend: tuple[str, ...]
    currency: tuple[str, ...]
    impressions: tuple[str, ...]
    clicks: tuple[str, ...]
    conversions: tuple[str, ...]
    revenue: tuple[str, ...]


PLATFORMS: dict[str, Columns] = {
    # Google Ads "Campaign report" download (UI and Report Editor).
    "google-ads": Columns(
        day=("day", "date"),
        campaign=("campaign", "campaign name"),
        spend=("cost", "spend"),
        currency=("currency code", "currency"),
        impressions=("impr.", "impressions"),
        clicks=("clicks",),
        conversions=("conversions", "all conv."),
        revenue=("conv. value", "conversion value", "all conv. value"),
    ),
    # Meta Ads Manager export (daily breakdown).
    "meta": Columns(
        day=("day", "reporting starts", "date"),
        campaign=("campaign name", "campaign"),
        spend=("amount spent", "amount spent (*)", "spend"),
        currency=("currency",),
        impressions=("impressions",),
        clicks=("link clicks", "clicks (all)", "clicks"),
        conversions=("results", "purchases", "conversions"),
        revenue=(
            "purchases conversion value",
            "website purchases conversion value",
            "conversion value",
        ),
    ),
    # LinkedIn Campaign Manager "Campaign performance" export.
    "linkedin": Columns(
        day=("start date (in utc)", "start date", "date", "day"),
        campaign=("campaign name", "campaign"),
        spend=("total spent", "amount spent", "spend"),
        currency=("currency",),
        impressions=("impressions",),
        clicks=("clicks",),
        conversions=("conversions", "total conversions"),
        revenue=("conversion value", "total conversion value"),
    ),
}

_DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%m/%d/%Y",
    "%m/%d/%y",
    "%d.%m.%Y",
    "%b %d, %Y",
    "%a, %b %d, %Y",
    "%B %d, %Y",
    "%d %b %Y",
)
_CURRENCY_IN_HEADER = re.compile(r"\(([A-Za-z]{3})\)\s*$")


class ExportError(ValueError):
    """The file is not a report of the format named (nothing is imported)."""


@dataclass
class Skipped:
    line: int
    reason: str


@dataclass
class ParsedExport:
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per campaign-day
    skipped: list[Skipped] = field(default_factory=list)
    data_lines: int = 0


def parse_day(text: str) -> date:
    value = text.strip()
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"unreadable date {value!r}")


def parse_number(text: str) -> Decimal:
    """A locale-formatted number: ``1,234.56``, ``1.234,56``, ``1 234,56``, ``$1,234``, ``--``."""
    value = re.sub(r"[^\d,.\-]", "", text.strip())
    if value in ("", "-", "--"):
        return Decimal(0)
    if "," in value and "." in value:
        decimal_mark = "," if value.rfind(",") > value.rfind(".") else "."
    elif "," in value:
        # 1,234 and 1,234,567 group thousands; 12,5 and 1234,56 mark decimals.
        tail = value.rpartition(",")[2]
        decimal_mark = "." if value.count(",") > 1 or len(tail) == 3 else ","
    else:
        decimal_mark = "." if value.count(".") <= 1 else ","
    thousands = "," if decimal_mark == "." else "."
    normal = value.replace(thousands, "").replace(decimal_mark, ".")
    try:
        number = Decimal(normal)
    except InvalidOperation as exc:
        raise ValueError(f"unreadable number {text!r}") from exc
    if number < 0:
        raise ValueError(f"negative amount {text!r}")
    return number


def _find(header: Sequence[str], names: Iterable[str]) -> int | None:
    lowered = [_CURRENCY_IN_HEADER.sub("", h).strip().lower() for h in header]
    for name in names:
        name = name.replace(" (*)", "")
        if name in lowered:
            return lowered.index(name)
    return None


def _header(rows: list[list[str]], columns: Columns) -> int:
    for index, row in enumerate(rows[:20]):
        if (
            _find(row, columns.day) is not None
            and _find(row, columns.spend) is not None
            and (_find(row, columns.campaign) is not None)
        ):
            return index
    raise ExportError(
        "no header row with a day, a campaign and a spend column in the first 20 lines"
    )


_FIELDS = (
    "day",
    "campaign",
    "spend",
    "currency",
    "impressions",
    "clicks",
    "conversions",
    "revenue",
)


def _delimiter(text: str) -> str:
    """Tab, semicolon (European locales' exports) or comma: whichever the start has most of."""
    sample = text[:4096]
    if sample.count("\t") > sample.count(","):
        return "\t"
    return ";" if sample.count(";") > sample.count(",") else ","


@dataclass(frozen=True)
class _Layout:
    """Where each field is in the export's rows, and the currency its spend header names."""

    at: dict[str, int | None]
    header_currency: str

    def cell(self, row: list[str], name: str) -> str:
        index = self.at[name]
        return row[index].strip() if index is not None and index < len(row) else ""


def _layout(header: list[str], columns: Columns) -> _Layout:
    at = {name: _find(header, getattr(columns, name)) for name in _FIELDS}
    spend_header = header[at["spend"]] if at["spend"] is not None else ""
    found = _CURRENCY_IN_HEADER.search(spend_header)
    return _Layout(at, found.group(1) if found else "")


def _campaign_day(
    row: list[str], line: int, layout: _Layout, default_currency: str
) -> dict[str, Any] | Skipped:
    """One data row as a campaign-day in minor units, or why it is skipped."""
    first = (row[0] if row else "").strip().lower()
    campaign = layout.cell(row, "campaign")
    if first.startswith("total") or campaign.lower().startswith("total"):
        return Skipped(line, "totals row")
    try:
        day = parse_day(layout.cell(row, "day"))
    except ValueError as exc:
        return Skipped(line, str(exc))
    if not campaign:
        return Skipped(line, "no campaign name")
    currency = (layout.cell(row, "currency") or layout.header_currency or default_currency).upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        return Skipped(line, f"unreadable currency {currency!r}")
    try:
        spend = parse_number(layout.cell(row, "spend"))
        revenue = parse_number(layout.cell(row, "revenue"))
        counts = [
            parse_number(layout.cell(row, n)) for n in ("impressions", "clicks", "conversions")
        ]
    except ValueError as exc:
        return Skipped(line, str(exc))
    scale = Decimal(10) ** exponent(currency)
    return {
        "line": line,
        "campaign": campaign[:300],
        "day": day,
        "currency": currency,
        "spend": int((spend * scale).to_integral_value()),
        "attributed_revenue": int((revenue * scale).to_integral_value()),
        "impressions": int(counts[0]),
        "clicks": int(counts[1]),
        "conversions": int(counts[2].to_integral_value()),
    }


def parse_export(text: str, fmt: str, default_currency: str = "USD") -> ParsedExport:
    """Campaign-day rows (campaign, day, spend in minor units, currency, counts) and skips."""
    columns = PLATFORMS.get(fmt)
    if columns is None:
        raise ExportError(f"unknown format {fmt!r}; one of: {', '.join(FORMATS)}")
    rows = list(csv.reader(io.StringIO(text), delimiter=_delimiter(text)))
    start = _header(rows, columns)
    layout = _layout(rows[start], columns)
    out = ParsedExport()
    for line, row in enumerate(rows[start + 1 :], start=start + 2):
        if not row or all(not cell.strip() for cell in row):
            continue
        out.data_lines += 1
        parsed = _campaign_day(row, line, layout, default_currency)
        if isinstance(parsed, Skipped):
            out.skipped.append(parsed)
        else:
            out.rows.append(parsed)
    return out


@dataclass(frozen=True)
class Rule:
    source: str
    pattern: str
    channel: str


def channel_for(campaign: str, source: str, rules: Sequence[Rule]) -> str:
    """The first rule (in priority order) whose pattern the campaign name contains, for this
    platform or any; else the platform's own name."""
    name = campaign.lower()
    for rule in rules:
        if rule.source in (source, "any") and rule.pattern.lower() in name:
            return rule.channel
    return source


def channel_days(
    parsed: ParsedExport, source: str, rules: Sequence[Rule]
) -> tuple[list[dict[str, Any]], list[Skipped]]:
    """Campaign-days summed into the (channel, day) rows marketing spend is kept in."""
    days: dict[tuple[str, date], dict[str, Any]] = {}
    skipped: list[Skipped] = []
    for row in parsed.rows:
        channel = channel_for(row["campaign"], source, rules)
        key = (channel, row["day"])
        total = days.get(key)
        if total is None:
            days[key] = {
                "channel": channel,
                "day": row["day"],
                "currency": row["currency"],
                **{
                    k: row[k]
                    for k in ("spend", "impressions", "clicks", "conversions", "attributed_revenue")
                },
            }
            continue
        if total["currency"] != row["currency"]:
            skipped.append(
                Skipped(
                    row["line"],
                    (
                        f"currency {row['currency']} differs from {total['currency']} of channel "
                        f"{channel} on {row['day']}"
                    ),
                )
            )
            continue
        for k in ("spend", "impressions", "clicks", "conversions", "attributed_revenue"):
            total[k] += row[k]
    return list(days.values()), skipped
