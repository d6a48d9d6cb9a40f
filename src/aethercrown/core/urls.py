"""Which URLs the platform may send to on a tenant's word: public https endpoints only, so a
tenant cannot point the platform's requests at the installation's own network. The URL alone:
what a host name resolves to is checked where the request is sent (onboarding's support
channel resolves it at creation and again before each ping)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

LOOPBACK = "loopback addresses are not allowed"
PRIVATE = "private and reserved addresses are not allowed"
_LOCAL_NAMES = ("localhost", ".localhost", ".local", ".internal", ".localdomain")


def address_problem(address: IPAddress, allow_loopback: bool) -> str | None:
    """Why a request may not be sent to ``address`` (None when it may)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if address.is_loopback:
        return None if allow_loopback else LOOPBACK
    # ``is_global`` leaves out private, shared (100.64/10), documentation, benchmark and
    # link-local ranges; multicast can be "global" and is refused all the same.
    if not address.is_global or address.is_multicast or address.is_unspecified:
        return PRIVATE
    return None


def public_url_problem(url: str, allow_loopback: bool) -> str | None:
    """Why ``url`` cannot be an outbound webhook (onboarding's support webhooks, alert channels'
    Slack webhooks; None when it can): https only, never a private, link-local or loopback
    address — except loopback (http or https) when the installation allows it for tests."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        _ = parts.port
    except ValueError:
        return "not a valid URL"
    if not host:
        return "the URL has no host"
    if parts.username or parts.password:
        return "credentials in the URL are not allowed"
    try:
        address: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    loopback = (
        host == "localhost"
        or host.endswith(".localhost")
        or (address is not None and address_problem(address, False) == LOOPBACK)
    )
    if loopback and allow_loopback:
        return None if parts.scheme in ("http", "https") else "the URL must use https"
    if parts.scheme != "https":
        return "the URL must use https"
    if loopback:
        return LOOPBACK
    if address is not None:
        return address_problem(address, allow_loopback)
    if host.endswith(_LOCAL_NAMES):
        return "local host names are not allowed"
    return None
