"""The pure parts: filters, severities, patterns, and the message shapes (Block Kit, email)."""

from __future__ import annotations

from aethercrown.alerts import catalogue, mail, slack
from aethercrown.alerts.catalogue import FILTERABLE, wanted


def test_filters_match_types_prefixes_and_severity() -> None:
    assert wanted([], "info", "content.due", "info")
    assert wanted(["usage.alert.*"], "info", "usage.alert.warning", "warning")
    assert not wanted(["usage.alert.*"], "info", "sla.breach", "critical")
    assert not wanted([], "critical", "usage.alert.warning", "warning")
    assert wanted(["sla.breach"], "warning", "sla.breach", "critical")
    assert catalogue.pattern_problem("*") is None
    assert catalogue.pattern_problem("budget.*") is None
    assert catalogue.pattern_problem("budget") is not None  # not a type, not a prefix
    assert catalogue.pattern_problem("alert.test") is not None  # the test is not filterable
    assert "sla.breach" in FILTERABLE and "automation.job.failed" in FILTERABLE


def test_severity_rises_for_the_worst_cases() -> None:
    assert catalogue.severity("churn.campaign.created", {"risk_level": "high"}) == "warning"
    assert catalogue.severity("churn.campaign.created", {"risk_level": "critical"}) == "critical"
    assert catalogue.severity("automation.job.failed", {"final": False}) == "warning"
    assert catalogue.severity("automation.job.failed", {"final": True}) == "critical"
    assert catalogue.severity("something.new", {}) == "info"


def _message(**payload: object) -> catalogue.Message:
    return catalogue.message(
        "usage.alert.warning",
        payload,
        event_severity="warning",
        tenant="Acme <&> Co",
        console_base="https://c.example/",
        created="2026-12-03 10:00 UTC",
    )


def test_block_kit_stays_within_slacks_limits_and_escapes_text() -> None:
    message = _message(customer="<script>&", usage=12, capacity=10, plan="x" * 5000)
    header, section, context = slack.blocks(message)
    assert len(header["text"]["text"]) <= slack.HEADER_LIMIT
    assert all(len(f["text"]) <= slack.FIELD_LIMIT for f in section["fields"])
    assert len(section["fields"]) <= slack.MAX_FIELDS
    assert "&lt;script&gt;&amp;" in section["fields"][0]["text"]
    assert "Acme &lt;&amp;&gt; Co" in context["elements"][0]["text"]
    assert "<https://c.example/console/usage|Open in AetherCrown>" in context["elements"][0]["text"]


def test_the_email_has_both_parts_and_escapes_html() -> None:
    message = _message(customer="<b>x</b>", usage=1_234_567)
    email = mail.build(message, "alerts@a.example", ["a@b.example"])
    text = email.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = email.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Customer: <b>x</b>\nUsage:    1,234,567" in text
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert email["Subject"] == "[AetherCrown] [WARNING] Usage threshold crossed — Acme <&> Co"
