"""Which URLs the platform may send to on a tenant's word: public https endpoints only, so a
tenant cannot point the platform's requests at the installation's own network."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

_LOCAL_NAMES = ("localhost", ".localhost", ".local", ".internal", ".localdomain")


def public_url_problem(url: str, allow_loopback: bool) -> str | None:
    """Why ``url`` cannot be an outbound webhook (onboarding's support webhooks, alert channels'
    Slack webhooks; None when it can): https only, never a private,
    link-local or loopback address — except loopback (http or https) when the installation
    allows it for tests."""
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
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    loopback = (
        host == "localhost"
        or host.endswith(".localhost")
        or (address is not None and address.is_loopback)
    )
    if loopback and allow_loopback:
        return None if parts.scheme in ("http", "https") else "the URL must use https"
    if parts.scheme != "https":
        return "the URL must use https"
    if loopback:
        return "loopback addresses are not allowed"
    if address is not None and (
        address.is_private
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    ):
        return "private and reserved addresses are not allowed"
    if host.endswith(_LOCAL_NAMES):
        return "local host names are not allowed"
    return None
