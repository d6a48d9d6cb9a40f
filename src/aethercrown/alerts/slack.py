"""Slack-compatible incoming webhooks: an event as a Block Kit message (``blocks``, pure), posted
as Slack's incoming-webhook format says (a JSON body with ``text`` and ``blocks``).

The webhook URL is a tenant's word, so it is sent the way onboarding's support webhooks are
(``core.outbound``): the host is resolved before each send, every address it answers must be
public (loopback only when the installation allows it, for tests), and the request connects to
the address checked. Slack's own client (``slack_sdk``) opens its own connection by name through
urllib, which cannot be pinned to a checked address; the body it would send is the same."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from aethercrown.alerts.catalogue import Message
from aethercrown.core.outbound import Refused, Resolver, failure_reason, post_pinned, resolve
from aethercrown.core.outbox import Attempt, retry_after_seconds

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


def send(
    url: str,
    message: Message,
    timeout: float,
    *,
    allow_loopback: bool,
    resolver: Resolver | None = None,
    client: httpx.Client | None = None,
) -> Attempt:
    """Post the message (call with no transaction open). A host that resolves to an address not
    allowed is a final failure (the channel must be changed); one that does not resolve is tried
    again later. No retries here: the outbox retries, later, and honours a 429's Retry-After."""
    found = resolve(url, allow_loopback, resolver)
    if isinstance(found, Refused):
        if found.unresolved:
            return Attempt(delivered=False, error=found.reason)
        return Attempt(delivered=False, error=f"refused: {found.reason}", final=True)
    body = orjson.dumps({"text": message.summary, "blocks": blocks(message)})
    headers = {"Content-Type": "application/json;charset=utf-8"}
    try:
        response = post_pinned(found, body, headers, timeout=timeout, client=client)
    except httpx.HTTPError as exc:
        return Attempt(delivered=False, error=failure_reason(exc))
    ok = 200 <= response.status_code < 300
    retry_after = retry_after_seconds(response.headers.get("retry-after"))
    return Attempt(
        delivered=ok,
        status_code=response.status_code,
        error=None if ok else f"{response.status_code}: {response.text[:300]}",
        retry_after=retry_after if response.status_code == 429 else None,
    )
