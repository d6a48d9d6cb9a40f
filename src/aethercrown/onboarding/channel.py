"""The support channel's test ping: where it may go, how it is sent, what of it is kept.

A support webhook URL's host is resolved when the onboarding is created and again before every
ping, and the ping connects to the address that was checked: the rule (every address public;
loopback only when the installation allows it, for tests) and the pinned request are
``core.outbound``'s, shared with alert channels.

What is stored of a ping is a short reason written here (``answered 503``, ``timed out``, ``TLS
error``, ``connection refused``, …), never an exception's text or the answer's body, which may
carry URLs, credentials or internal addresses.

No database here; call with no transaction open (DNS and HTTP are network I/O).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

# The rule and the pinned request live in ``core.outbound`` (alert channels use them too); the
# names are kept here for onboarding's callers.
from aethercrown.core.outbound import Refused as Refused
from aethercrown.core.outbound import Resolver as Resolver
from aethercrown.core.outbound import Target as Target
from aethercrown.core.outbound import failure_reason as failure_reason
from aethercrown.core.outbound import post_pinned
from aethercrown.core.outbound import resolve as resolve
from aethercrown.core.outbound import system_resolver as system_resolver
from aethercrown.core.outbound import url_problem_after_lookup as url_problem_after_lookup

TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class PingAnswer:
    status_code: int | None
    reason: str

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def send(
    target: Target, body: bytes, headers: dict[str, str], client: httpx.Client | None = None
) -> PingAnswer:
    """POST to the checked address, the URL's host kept for ``Host`` and TLS. Redirects are
    not followed (a redirect could point anywhere)."""
    try:
        response = post_pinned(target, body, headers, timeout=TIMEOUT_SECONDS, client=client)
    except httpx.HTTPError as exc:
        return PingAnswer(None, failure_reason(exc))
    return PingAnswer(response.status_code, f"answered {response.status_code}")


def ping(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allow_loopback: bool,
    client: httpx.Client | None = None,
    resolver: Resolver | None = None,
) -> PingAnswer:
    """Resolve and check the host again (the answer may have changed since the onboarding was
    created), then send to the address checked."""
    found = resolve(url, allow_loopback, resolver)
    if isinstance(found, Refused):
        return PingAnswer(None, found.reason if found.unresolved else f"refused: {found.reason}")
    return send(found, body, headers, client)


# Every reason ``failure_reason`` and ``ping`` write (besides "answered N").
REASONS = frozenset(
    {
        "timed out",
        "TLS error",
        "connection refused",
        "could not connect",
        "not a valid HTTP answer",
        "request failed",
        "the host name does not resolve",
    }
)
NO_ANSWER = "support webhook did not answer: "


def shown_blocker(blocker: str | None) -> str | None:
    """A blocker as it may be shown. Rows written before the reasons were fixed ones kept the
    exception's text after ``NO_ANSWER``; that text is never shown, only "request failed"."""
    if blocker is None or not blocker.startswith(NO_ANSWER):
        return blocker
    reason = blocker[len(NO_ANSWER) :]
    if reason in REASONS or reason.startswith("refused: the host name resolves to "):
        return blocker
    return NO_ANSWER + "request failed"


def shown_result(result: dict[str, object]) -> dict[str, object]:
    """A ping step's stored result as it may be shown: older rows kept the full URL and the
    answer's text; only the origin is shown, never the text."""
    out = {k: v for k, v in result.items() if k not in ("url", "answer")}
    if isinstance(result.get("url"), str) and "endpoint" not in out:
        out["endpoint"] = origin(str(result["url"]))
    return out


def origin(url: str) -> str:
    """What a report shows of the URL: scheme and host (its path may hold a secret token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}"
