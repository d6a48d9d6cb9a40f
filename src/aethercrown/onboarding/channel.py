"""The support channel's test ping: where it may go, how it is sent, what of it is kept.

A support webhook URL names a host; a name is only as safe as what it resolves to, so the host
is resolved (``socket.getaddrinfo``) when the onboarding is created and again before every ping,
and every address it answers must be public (not loopback, private, link-local, reserved, …;
loopback is admitted only when the installation allows it, for tests). The ping then connects
to the address that was checked, not to the name: a DNS server that answers a public address
to the check and a private one a moment later (rebinding) never gets a second question. The
host name still goes in the ``Host`` header and in TLS (SNI and the certificate check).

What is stored of a ping is a short reason written here (``answered 503``, ``timed out``, ``TLS
error``, ``connection refused``, …), never an exception's text or the answer's body, which may
carry URLs, credentials or internal addresses.

No database here; call with no transaction open (DNS and HTTP are network I/O).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses the host name resolves to (raises OSError when it does not).
Resolver = Callable[[str, int], list[str]]

TIMEOUT_SECONDS = 5.0
LOOPBACK = "loopback addresses are not allowed"
PRIVATE = "private and reserved addresses are not allowed"


def address_problem(address: IPAddress, allow_loopback: bool) -> str | None:
    """Why a webhook may not be sent to ``address`` (None when it may)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if address.is_loopback:
        return None if allow_loopback else LOOPBACK
    # ``is_global`` leaves out private, shared (100.64/10), documentation, benchmark and
    # link-local ranges; multicast can be "global" and is refused all the same.
    if not address.is_global or address.is_multicast or address.is_unspecified:
        return PRIVATE
    return None


def system_resolver(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


@dataclass(frozen=True)
class Target:
    """A URL and the checked address its request is sent to."""

    url: str
    address: str


@dataclass(frozen=True)
class Refused:
    reason: str
    # True when the name did not resolve at all (it may later: the step waits); False when it
    # resolved to an address that is not allowed.
    unresolved: bool = False


def _port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return host, parts.port or (443 if parts.scheme == "https" else 80)


def resolve(url: str, allow_loopback: bool, resolver: Resolver | None = None) -> Target | Refused:
    """The address to send ``url``'s request to, if every address its host resolves to is
    allowed; else why not. The URL's syntax is checked before (``schemas.webhook_url_problem``)."""
    host, port = _port(url)
    try:
        answers = (resolver or system_resolver)(host, port)
    except (OSError, UnicodeError, ValueError):
        return Refused("the host name does not resolve", unresolved=True)
    addresses: list[IPAddress] = []
    for answer in answers:
        try:
            # A link-local IPv6 answer may carry its zone ("fe80::1%eth0").
            addresses.append(ipaddress.ip_address(answer.split("%", 1)[0]))
        except ValueError:
            return Refused("the host name resolves to something that is not an address")
    if not addresses:
        return Refused("the host name does not resolve", unresolved=True)
    # Every answer is checked, not only the first: a resolver may rotate them.
    for address in addresses:
        problem = address_problem(address, allow_loopback)
        if problem is not None:
            kind = "a loopback" if problem == LOOPBACK else "a private or reserved"
            return Refused(f"the host name resolves to {kind} address")
    return Target(url, str(addresses[0]))


def url_problem_after_lookup(
    url: str, allow_loopback: bool, resolver: Resolver | None = None
) -> str | None:
    """The check at validation: a host that resolves to an address not allowed is refused; one
    that does not resolve (yet) is accepted, and its ping waits until it does."""
    found = resolve(url, allow_loopback, resolver)
    if isinstance(found, Refused) and not found.unresolved:
        return found.reason
    return None


@dataclass(frozen=True)
class PingAnswer:
    status_code: int | None
    reason: str

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def failure_reason(exc: httpx.HTTPError) -> str:
    """A short, fixed reason for a failed request; never the exception's own text."""
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    causes = _chain(exc)
    if any(isinstance(c, ssl.SSLError) for c in causes):
        return "TLS error"
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return "connection refused"
    if isinstance(exc, httpx.ConnectError):
        # httpcore keeps the TLS failure's text but not always its type.
        text = str(exc)
        if "SSL" in text or "TLS" in text or "CERTIFICATE" in text.upper():
            return "TLS error"
        if "refused" in text.lower():
            return "connection refused"
        return "could not connect"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "not a valid HTTP answer"
    return "request failed"


def send(
    target: Target, body: bytes, headers: dict[str, str], client: httpx.Client | None = None
) -> PingAnswer:
    """POST to the checked address, the URL's host kept for ``Host`` and TLS. Redirects are
    not followed (a redirect could point anywhere)."""
    url = httpx.URL(target.url)
    pinned = url.copy_with(host=target.address)
    sent_headers = {**headers, "Host": url.netloc.decode("ascii")}
    extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
    http = client or httpx.Client(timeout=TIMEOUT_SECONDS, trust_env=False)
    try:
        response = http.post(
            pinned,
            content=body,
            headers=sent_headers,
            extensions=extensions,
            follow_redirects=False,
        )
    except httpx.HTTPError as exc:
        return PingAnswer(None, failure_reason(exc))
    finally:
        if client is None:
            http.close()
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
