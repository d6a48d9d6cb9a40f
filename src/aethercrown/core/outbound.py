"""Sending to a URL a tenant gave (onboarding's support webhooks, alert channels' Slack
webhooks): the one rule for where such a request may go, and the pinned request itself.

``core.urls.public_url_problem`` checks the URL alone (https, no literal private address). A name
is only as safe as what it resolves to, so before every request the host is resolved
(``socket.getaddrinfo``) and every address it answers must be public (``address_problem``: not
loopback, private, link-local, reserved, …; loopback is admitted only when the installation
allows it, for tests). The request then connects to the address that was checked, not to the
name: a DNS server that answers a public address to the check and a private one a moment later
(rebinding) never gets a second question. The host name still goes in the ``Host`` header and in
TLS (SNI and the certificate check). Redirects are never followed (one could point anywhere).

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

from aethercrown.core.urls import LOOPBACK, IPAddress, address_problem

# host, port -> the addresses the host name resolves to (raises OSError when it does not).
Resolver = Callable[[str, int], list[str]]


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
    # True when the name did not resolve at all (it may later); False when it resolved to an
    # address that is not allowed.
    unresolved: bool = False


def _port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return host, parts.port or (443 if parts.scheme == "https" else 80)


def resolve(url: str, allow_loopback: bool, resolver: Resolver | None = None) -> Target | Refused:
    """The address to send ``url``'s request to, if every address its host resolves to is
    allowed; else why not. The URL's syntax is checked before (``public_url_problem``)."""
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
    """The check when a URL is saved: a host that resolves to an address not allowed is
    refused; one that does not resolve (yet) is accepted (each send resolves it again)."""
    found = resolve(url, allow_loopback, resolver)
    if isinstance(found, Refused) and not found.unresolved:
        return found.reason
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def failure_reason(exc: httpx.HTTPError) -> str:
    """A short, fixed reason for a failed request; never the exception's own text (it may carry
    the URL, credentials or internal addresses)."""
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


def post_pinned(
    target: Target,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    client: httpx.Client | None = None,
) -> httpx.Response:
    """POST to the checked address, the URL's host kept for ``Host`` and TLS; redirects are not
    followed. Raises ``httpx.HTTPError`` (``failure_reason`` says why in a few words)."""
    url = httpx.URL(target.url)
    pinned = url.copy_with(host=target.address)
    sent_headers = {**headers, "Host": url.netloc.decode("ascii")}
    extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
    http = client or httpx.Client(timeout=timeout, trust_env=False)
    try:
        return http.post(
            pinned,
            content=body,
            headers=sent_headers,
            extensions=extensions,
            follow_redirects=False,
        )
    finally:
        if client is None:
            http.close()
