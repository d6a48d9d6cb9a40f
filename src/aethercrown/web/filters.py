"""The console's date range and plan/segment filters: read from the page's address, kept in
every link, and turned into the analytics period. Ranges are whole months and end, unless
asked otherwise, with the last complete month, so no figure compares a partial month."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import get_args
from urllib.parse import urlencode

from aethercrown.analytics import metrics
from aethercrown.analytics.schemas import PeriodRequest, Segment
from aethercrown.core.errors import InvalidInput, field_error

PRESETS = {
    "3m": "Last 3 months",
    "6m": "Last 6 months",
    "12m": "Last 12 months",
    "24m": "Last 24 months",
    "ytd": "Year to date",
}
DEFAULT_PRESET = "12m"
SEGMENTS = get_args(Segment)


@dataclass(frozen=True, slots=True)
class Filters:
    preset: str | None
    start: str
    end: str
    plan: str | None
    segment: str | None

    def period(self) -> PeriodRequest:
        return PeriodRequest(start=self.start, end=self.end, plan=self.plan, segment=self.segment)

    def ledger_period(self) -> PeriodRequest:
        """The period for decisions and their outcomes: a preset runs to today (the ledger has
        no partial-month comparison to avoid), a custom range to its own end."""
        return PeriodRequest(start=self.start, end=None if self.preset else self.end)

    def params(self) -> dict[str, str]:
        """The address's query for these filters (a preset, or from/to)."""
        out: dict[str, str] = {}
        if self.preset is not None:
            if self.preset != DEFAULT_PRESET:
                out["range"] = self.preset
        else:
            out["range"] = "custom"
            out["from"], out["to"] = self.start, self.end
        if self.plan:
            out["plan"] = self.plan
        if self.segment:
            out["segment"] = self.segment
        return out

    @property
    def query(self) -> str:
        params = self.params()
        return "?" + urlencode(params) if params else ""

    def link(self, path: str, **extra: str) -> str:
        params = {**self.params(), **extra}
        return path + ("?" + urlencode(params) if params else "")

    def with_preset(self, preset: str) -> Filters:
        return replace(self, preset=preset)


def last_complete_month(now: datetime) -> str:
    return metrics.add_months(metrics.month_of(now), -1)


def parse(
    now: datetime,
    preset: str | None,
    start: str | None,
    end: str | None,
    plan: str | None,
    segment: str | None,
) -> Filters:
    """Filters from the query; a bad month or range is a 422 naming the field."""
    if preset in ("", "custom"):
        preset = None
    elif preset is not None and preset not in PRESETS:
        raise InvalidInput(
            "Unknown range", [field_error(["range"], f"custom or one of {', '.join(PRESETS)}")]
        )
    if segment is not None and segment not in SEGMENTS:
        raise InvalidInput("Unknown segment", [field_error(["segment"], "unknown segment")])
    for name, value in (("from", start), ("to", end)):
        if value is not None:
            try:
                metrics.parse_month(value)
            except ValueError:
                raise InvalidInput(
                    "Months are YYYY-MM", [field_error([name], f"{value!r} is not a month")]
                ) from None
    # A preset decides both ends; from/to count only without one (a custom range).
    custom = preset is None and (start is not None or end is not None)
    if not custom:
        start = end = None
    last = end or last_complete_month(now)
    if custom:
        first = start or metrics.add_months(last, -11)
        preset = None
    else:
        preset = preset or DEFAULT_PRESET
        if preset == "ytd":
            first = last[:4] + "-01"
        else:
            first = metrics.add_months(last, -(int(preset[:-1]) - 1))
    if first > last:
        raise InvalidInput(
            "The range ends before it starts", [field_error(["to"], f"{last} is before {first}")]
        )
    if metrics.months_between(first, last) >= 120:
        raise InvalidInput("The range is too long", [field_error(["from"], "at most 120 months")])
    return Filters(preset, first, last, plan or None, segment)
