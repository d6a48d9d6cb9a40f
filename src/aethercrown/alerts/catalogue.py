"""The events alert channels can carry, how severe each is, and the message each becomes.
Pure: plain values in, plain values out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aethercrown.core.money import money

SEVERITIES = ("info", "warning", "critical")
RANK = {name: i for i, name in enumerate(SEVERITIES)}
TEST_EVENT = "alert.test"


@dataclass(frozen=True)
class EventKind:
    """One event type: its severity unless the payload says otherwise, a title, the console
    page that shows the thing it is about, and which payload fields to show (label, key)."""

    event_type: str
    severity: str
    title: str
    console_path: str
    fields: tuple[tuple[str, str], ...]


# A usage alert shows the same fields whether it warns or says the capacity is reached.
USAGE_FIELDS = (
    ("Customer", "customer"),
    ("Metric", "metric"),
    ("Usage", "usage"),
    ("Capacity", "capacity"),
    ("Of capacity", "percent_of_capacity"),
    ("Plan", "plan"),
)

EVENTS: dict[str, EventKind] = {
    e.event_type: e
    for e in (
        EventKind(
            "usage.alert.warning",
            "warning",
            "Usage threshold crossed",
            "/console/usage",
            USAGE_FIELDS,
        ),
        EventKind(
            "usage.alert.critical",
            "critical",
            "Usage at capacity",
            "/console/usage",
            USAGE_FIELDS,
        ),
        EventKind(
            "churn.campaign.created",
            "warning",
            "Churn campaign started",
            "/console/churn",
            (
                ("Customer", "external_id"),
                ("Risk", "risk_level"),
                ("Churn probability", "churn_probability"),
                ("Actions", "actions"),
                ("Discount %", "discount_percent"),
            ),
        ),
        EventKind(
            "upsell.campaign.created",
            "info",
            "Upsell campaign opened",
            "/console/usage",
            (
                ("Customer", "customer"),
                ("Plan", "recommended_plan"),
                ("Monthly price", "monthly_price"),
            ),
        ),
        EventKind(
            "budget.allocation.recorded",
            "info",
            "Marketing budget re-allocated",
            "/console/budget",
            (
                ("Day", "period"),
                ("Allocations", "allocations"),
                ("Expected return", "expected_return"),
            ),
        ),
        EventKind(
            "sla.breach",
            "critical",
            "SLA breached",
            "/console/onboarding",
            (
                ("Customer", "customer"),
                ("SLA tier", "sla_tier"),
                ("Breach", "kind"),
                ("Measured", "measured"),
                ("Target", "target"),
                ("Credit %", "credit_percent"),
            ),
        ),
        EventKind(
            "automation.job.failed",
            "warning",
            "Automation job failed",
            "/console/operations",
            (
                ("Job", "job"),
                ("Period", "period_start"),
                ("Attempt", "attempt"),
                ("Error", "error"),
            ),
        ),
        EventKind(
            "content.due",
            "info",
            "Content due to publish",
            "/console/content",
            (("Title", "title"), ("Channel", "channel"), ("Scheduled", "scheduled_at")),
        ),
        EventKind(
            TEST_EVENT,
            "info",
            "Test message",
            "/console/alerts",
            (("Channel", "channel"), ("Sent by", "actor")),
        ),
    )
}
# What a channel's filter may name: every event but the test message (always sent on request).
FILTERABLE = tuple(sorted(k for k in EVENTS if k != TEST_EVENT))


def severity(event_type: str, payload: Mapping[str, Any]) -> str:
    """How severe this event is: its kind's severity, raised for the worst cases (a critical
    churn risk, a job that used its last attempt)."""
    kind = EVENTS.get(event_type)
    base = kind.severity if kind else "info"
    if event_type == "churn.campaign.created" and payload.get("risk_level") == "critical":
        return "critical"
    if event_type == "automation.job.failed" and payload.get("final"):
        return "critical"
    return base


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be in a filter (None when it can): an event type, or a prefix
    ending in ``*`` (``usage.alert.*``, ``*`` for all) that names at least one event."""
    if not matches_any(pattern, FILTERABLE):
        return f"names no event; known events: {', '.join(FILTERABLE)}"
    return None


def matches(pattern: str, event_type: str) -> bool:
    if pattern.endswith("*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def matches_any(pattern: str, event_types: Iterable[str]) -> bool:
    return any(matches(pattern, e) for e in event_types)


def wanted(event_types: list[str], min_severity: str, event_type: str, event_severity: str) -> bool:
    """Whether a channel with this filter takes the event: no event types means every event;
    the event is at least as severe as the channel's minimum."""
    if RANK.get(event_severity, 0) < RANK.get(min_severity, 0):
        return False
    return not event_types or any(matches(p, event_type) for p in event_types)


@dataclass(frozen=True)
class Message:
    """What every channel says about an event, before it is shaped for Slack or email."""

    event_type: str
    severity: str
    title: str
    summary: str
    fields: list[tuple[str, str]]
    link: str
    tenant: str
    created: str


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value) or "–"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_text(v)}" for k, v in value.items()) or "–"
    if value is None or value == "":
        return "–"
    return str(value)


# Payload fields in minor units of the payload's currency.
MONEY = frozenset({"allocations", "expected_return", "monthly_price"})


def _money(value: Any, currency: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_money(v, currency)}" for k, v in value.items()) or "–"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return money(value, str(currency))
    return _text(value)


def console_path(event_type: str, payload: Mapping[str, Any]) -> str:
    kind = EVENTS.get(event_type)
    path = kind.console_path if kind else "/console"
    if event_type == "sla.breach" and payload.get("onboarding"):
        path = f"{path}/{payload['onboarding']}"
    return path


def message(
    event_type: str,
    payload: Mapping[str, Any],
    *,
    event_severity: str,
    tenant: str,
    console_base: str,
    created: str,
) -> Message:
    """The message for an event: a title, a one-line summary, the fields that matter (at most
    ten, each cut to 200 characters) and a link to the console page of the thing."""
    kind = EVENTS.get(event_type)
    title = kind.title if kind else event_type
    keys = kind.fields if kind else tuple((k, k) for k in list(payload)[:10])
    currency = payload.get("currency")
    fields = [
        (
            label,
            _money(payload[key], currency) if key in MONEY and currency else _text(payload[key]),
        )
        for label, key in keys
        if key in payload
    ]
    fields = [(label, value[:200]) for label, value in fields]
    summary = f"{title} — {', '.join(v for _, v in fields[:2])}" if fields else title
    return Message(
        event_type=event_type,
        severity=event_severity,
        title=title,
        summary=summary[:300],
        fields=fields[:10],
        link=console_base.rstrip("/") + console_path(event_type, payload),
        tenant=tenant,
        created=created,
    )
