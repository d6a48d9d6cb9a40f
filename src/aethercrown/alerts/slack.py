"""Slack-compatible incoming webhooks: an event as a Block Kit message (``blocks``, pure), sent
with Slack's official client (``slack_sdk.webhook.WebhookClient``)."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.webhook import WebhookClient

from aethercrown.alerts.catalogue import Message
from aethercrown.core.outbox import Attempt, retry_after_seconds

log = logging.getLogger("aethercrown.alerts.slack")

MARKS = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}
HEADER_LIMIT = 150  # Block Kit: a header's plain text
FIELD_LIMIT = 2000  # a section field's text
MAX_FIELDS = 10  # a section's fields


def escape(text: str) -> str:
    """Slack's mrkdwn control characters, escaped as Slack asks (&, <, >)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def blocks(message: Message) -> list[dict[str, Any]]:
    """A header (severity and title), a section with the summary and the event's fields, and a
    context line with the tenant, the time and a link to the console page of the thing."""
    header = f"{MARKS.get(message.severity, '')} {message.title}".strip()[:HEADER_LIMIT]
    fields = [
        {"type": "mrkdwn", "text": f"*{escape(label)}*\n{escape(value)}"[:FIELD_LIMIT]}
        for label, value in message.fields[:MAX_FIELDS]
    ]
    section: dict[str, Any] = {
        "type": "section",
        "text": {"type": "mrkdwn", "text": escape(message.summary)[:3000]},
    }
    if fields:
        section["fields"] = fields
    context = (
        f"*{message.severity.upper()}* · {escape(message.tenant)} · {message.created} · "
        f"<{message.link}|Open in AetherCrown>"
    )
    return [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        section,
        {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
    ]


def send(url: str, message: Message, timeout: float) -> Attempt:
    """Post the message (call with no transaction open). The client's own retries are off: the
    outbox retries, later, and honours a 429's Retry-After instead of sleeping here."""
    client = WebhookClient(url, timeout=max(1, round(timeout)), retry_handlers=[], logger=log)
    try:
        response = client.send(text=message.summary, blocks=blocks(message))
    except Exception as exc:  # the client raises whatever urllib raised (URLError, timeouts)
        return Attempt(delivered=False, error=f"{type(exc).__name__}: {exc}")
    ok = 200 <= response.status_code < 300
    headers = {k.lower(): v for k, v in (response.headers or {}).items()}
    retry_after = retry_after_seconds(headers.get("retry-after"))
    return Attempt(
        delivered=ok,
        status_code=response.status_code,
        error=None if ok else f"{response.status_code}: {(response.body or '')[:300]}",
        retry_after=retry_after if response.status_code == 429 else None,
    )
