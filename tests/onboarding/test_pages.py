"""The onboarding report page (staff) and the customer portal page (the customer's key)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from aethercrown.onboarding.pages import PORTAL_COOKIE
from tests.conftest import TenantHandle, bearer
from tests.onboarding.conftest import BASE, request_body
from tests.web.test_pages import ORIGIN, sign_in
from tests.webhooks.test_service import Receiver


def test_report_page_and_portal_page(
    client: TestClient, tenant: TenantHandle, other_tenant: TenantHandle, receiver: Receiver
) -> None:
    receiver.status = 500
    created = client.post(f"{BASE}/create", json=request_body(receiver.url), headers=tenant.headers)
    body = created.json()

    # The first staff pages only send the browser to the console, which asks to sign in: no
    # credential opens them, neither the dead ``aethercrown_key`` cookie nor a Bearer key.
    ident = body["id"]
    for path, console_path in (
        ("/onboarding", "/console/onboarding"),
        (f"/onboarding/{ident}", f"/console/onboarding/{ident}"),
    ):
        moved = client.get(path, follow_redirects=False)
        assert (moved.status_code, moved.headers["location"]) == (307, console_path)
        for credentials in (
            {"cookies": {"aethercrown_key": tenant.key}},
            {"headers": tenant.headers},
        ):
            client.cookies.clear()
            client.cookies.update(credentials.get("cookies", {}))
            page = client.get(path, headers=credentials.get("headers"))
            assert page.url.path == "/console/login", (path, credentials.keys())
            assert "big-co" not in page.text and "support webhook" not in page.text
    # Nor does the old cookie open any console page (only the server-side session does).
    client.cookies.clear()
    client.cookies.set("aethercrown_key", tenant.key)
    for path in ("/console", "/console/onboarding", f"/console/onboarding/{ident}", "/portal"):
        page = client.get(path)
        assert "big-co" not in page.text, path
        assert page.url.path in ("/console/login", "/portal"), path
    client.cookies.clear()
    odd = client.get("/onboarding/a b?x=1", follow_redirects=False)
    assert odd.headers["location"] == "/console/onboarding/a%20b"
    # In the console, signed in with the tenant's key: the list, the report, nobody else's.
    sign_in(client, tenant.key)
    console = client.get("/console/onboarding")
    assert console.status_code == 200 and f'href="/console/onboarding/{body["id"]}"' in console.text
    assert 'href="/console/onboarding"' in console.text  # in the navigation
    report = client.get(f"/console/onboarding/{body['id']}")
    assert report.status_code == 200 and "support webhook answered 500" in report.text
    assert client.get("/console/onboarding/not-an-id").status_code == 404
    sign_in(client, other_tenant.key)
    assert client.get(f"/console/onboarding/{body['id']}").status_code == 404
    client.cookies.clear()

    # The portal: a sign-in form, the customer's key signs in, a tenant key does not.
    assert 'action="/portal/login"' in client.get("/portal").text
    portal_key = body["portal_api_key"]
    refused = client.post(
        "/portal/login", data={"key": tenant.key}, headers=ORIGIN, follow_redirects=False
    )
    assert refused.headers["location"] == "/portal?error=1"
    # A sign-in posted from another site (or naming no origin) is refused and starts nothing.
    for headers in ({"origin": "https://evil.example"}, {}):
        forged = client.post("/portal/login", data={"key": portal_key}, headers=headers)
        assert forged.status_code == 403, headers
        assert forged.headers["content-type"].startswith("application/problem+json")
        assert PORTAL_COOKIE not in forged.cookies
    signed = client.post(
        "/portal/login", data={"key": portal_key}, headers=ORIGIN, follow_redirects=False
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/portal"
    # The browser holds a session id, never the key; the key as a cookie opens nothing.
    session_id = signed.cookies[PORTAL_COOKIE]
    assert portal_key not in signed.headers["set-cookie"]
    assert "httponly" in signed.headers["set-cookie"].lower()
    client.cookies.clear()
    client.cookies.set(PORTAL_COOKIE, portal_key)
    assert "Customer portal: big-co" not in client.get("/portal").text
    client.cookies.set(PORTAL_COOKIE, session_id)
    portal = client.get("/portal")
    assert portal.status_code == 200
    assert "Customer portal: big-co" in portal.text and 'id="usage"' in portal.text
    assert "Enterprise" in portal.text and 'id="invoice"' in portal.text
    # The portal's session opens no console page.
    client.cookies.set("aethercrown_session", session_id)
    assert client.get("/console/onboarding").url.path == "/console/login"
    client.cookies.delete("aethercrown_session")
    # Sign-out is a POST from the portal itself; the session then opens nothing.
    assert (
        client.post("/portal/logout", headers={"origin": "https://evil.example"}).status_code == 403
    )
    out = client.post("/portal/logout", headers=ORIGIN, follow_redirects=False)
    assert out.status_code == 303
    client.cookies.set(PORTAL_COOKIE, session_id)
    assert "Customer portal: big-co" not in client.get("/portal").text
    client.cookies.clear()
    assert "Customer portal: big-co" in client.get("/portal", headers=bearer(portal_key)).text
