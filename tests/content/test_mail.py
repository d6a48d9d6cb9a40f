"""Newsletters and email campaigns: merge fields with fallbacks, unknown fields refused, both
parts, unsubscribe link, postal address and the List-Unsubscribe headers."""

from __future__ import annotations

import email
from email import policy
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import TenantHandle
from tests.content.conftest import BASE, PROFILE, put_profile
from tests.data.conftest import stored_row

UNSUBSCRIBE = {
    "title": "Unsubscribe",
    "url": "https://acme.example/unsubscribe",
    "kind": "unsubscribe",
}


def _profile(client: TestClient, tenant: TenantHandle) -> None:
    put_profile(client, tenant, links=[*PROFILE["links"], UNSUBSCRIBE])


def _newsletter(client: TestClient, tenant: TenantHandle, sections: int = 4) -> dict[str, Any]:
    response = client.post(
        f"{BASE}/generate/newsletter",
        json={"topic": "failed payments", "sections": sections},
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_newsletter_renders_for_a_stored_customer(client: TestClient, tenant: TenantHandle) -> None:
    _profile(client, tenant)
    item = _newsletter(client, tenant)
    body = item["current"]["body"]
    assert item["kind"] == "newsletter" and len(body["sections"]) == 4
    assert len({s["heading"] for s in body["sections"]}) >= 2
    customer = stored_row(client, tenant, "customers")
    response = client.post(
        f"{BASE}/items/{item['id']}/render",
        json={"customer": customer["external_id"], "from_address": "news@acme.example"},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    out = response.json()
    first_name = customer["name"].split()[0]
    assert f"Hi {first_name}," in out["text"]
    assert PROFILE["postal_address"] in out["text"] and PROFILE["postal_address"] in out["html"]
    assert out["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = out["headers"]["List-Unsubscribe"].strip("<>")
    assert unsubscribe.startswith("https://acme.example/unsubscribe?recipient=")
    assert unsubscribe.replace("&", "&amp;") in out["html"]

    message = email.message_from_string(out["raw"], policy=policy.default)
    assert message["Subject"] == out["subject"]
    assert message["List-Unsubscribe"] == f"<{unsubscribe}>"
    parts = {p.get_content_type(): p.get_content() for p in message.iter_parts()}
    assert set(parts) == {"text/plain", "text/html"}
    assert out["preheader"] in parts["text/html"]


def test_fallbacks_escaping_and_unknown_fields(client: TestClient, tenant: TenantHandle) -> None:
    _profile(client, tenant)
    response = client.post(
        f"{BASE}/generate/email", json={"topic": "card declines"}, headers=tenant.headers
    )
    assert response.status_code == 201
    item = response.json()
    render = f"{BASE}/items/{item['id']}/render"
    # No name: the greeting's fallback.
    nameless = client.post(
        render,
        json={"data": {"external_id": "c-9"}, "from_address": "a@acme.example"},
        headers=tenant.headers,
    ).json()
    assert "Hi there," in nameless["text"]
    # Markup in customer data is escaped in HTML, and line breaks never reach a header.
    evil = client.post(
        render,
        json={
            "data": {"name": "<script>x</script>\r\nBcc: all@x.com", "external_id": "c-1"},
            "from_address": "a@acme.example",
        },
        headers=tenant.headers,
    ).json()
    assert "<script>" not in evil["html"] and "&lt;script&gt;" in evil["html"]
    assert "\nBcc:" not in evil["raw"].split("\n\n", 1)[0]

    # Names outside ASCII are sent as UTF-8; an address that is not one is a 422, not a 500.
    unicode = client.post(
        render,
        json={
            "data": {"name": "Zoë Ångström", "email": "zoe@exämple.de"},
            "from_address": "a@acme.example",
        },
        headers=tenant.headers,
    )
    assert unicode.status_code == 200 and "Hi Zoë," in unicode.json()["text"]
    for address in ("a@b@c.d", "a..b@x.com", "é@é.fr"):
        bad_address = client.post(
            render,
            json={"data": {"name": "A", "email": address}, "from_address": "a@acme.example"},
            headers=tenant.headers,
        )
        assert bad_address.status_code == 422, address

    # An unknown merge field is refused when edited in, and nothing changes.
    bad = client.patch(
        f"{BASE}/items/{item['id']}",
        json={"subject": "Hi {{favourite_colour}}"},
        headers=tenant.headers,
    )
    assert bad.status_code == 422 and "favourite_colour" in bad.text
    assert client.get(f"{BASE}/items/{item['id']}", headers=tenant.headers).json()["version"] == 1
    # A known field without a fallback and without a value: 422 at render.
    edited = client.patch(
        f"{BASE}/items/{item['id']}",
        json={"subject": "For {{attributes.team}}"},
        headers=tenant.headers,
    )
    assert edited.status_code == 200
    missing = client.post(
        render,
        json={"data": {"name": "Ann Lee"}, "from_address": "a@acme.example"},
        headers=tenant.headers,
    )
    assert missing.status_code == 422 and "attributes.team" in missing.text
    ok = client.post(
        render,
        json={
            "data": {"name": "Ann Lee", "attributes": {"team": "Ops"}},
            "from_address": "a@acme.example",
        },
        headers=tenant.headers,
    )
    assert ok.json()["subject"] == "For Ops"


def test_rendering_needs_unsubscribe_and_address(client: TestClient, tenant: TenantHandle) -> None:
    put_profile(client, tenant)  # no unsubscribe link
    item = _newsletter(client, tenant, sections=2)
    response = client.post(
        f"{BASE}/items/{item['id']}/render",
        json={"data": {"name": "A"}, "from_address": "a@acme.example"},
        headers=tenant.headers,
    )
    assert response.status_code == 409
    assert "CAN-SPAM" in response.json()["detail"]
    for body in (
        {"data": {}, "customer": "x", "from_address": "a@acme.example"},
        {"data": {}, "from_address": "not an address"},
        {"customer": "nobody", "from_address": "a@acme.example"},
    ):
        _profile(client, tenant)
        response = client.post(
            f"{BASE}/items/{item['id']}/render", json=body, headers=tenant.headers
        )
        assert response.status_code in (404, 422), body
    for sections in (1, 7):
        response = client.post(
            f"{BASE}/generate/newsletter",
            json={"topic": "t", "sections": sections},
            headers=tenant.headers,
        )
        assert response.status_code == 422
