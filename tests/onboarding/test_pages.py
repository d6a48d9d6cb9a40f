"""The onboarding report page (staff) and the customer portal page (the customer's key)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import TenantHandle, bearer
from tests.onboarding.conftest import BASE, request_body
from tests.web.test_pages import sign_in
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
    refused = client.post("/portal/login", data={"key": tenant.key}, follow_redirects=False)
    assert refused.headers["location"] == "/portal?error=1"
    signed = client.post(
        "/portal/login", data={"key": body["portal_api_key"]}, follow_redirects=False
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/portal"
    client.cookies.set("aethercrown_portal_key", body["portal_api_key"])
    portal = client.get("/portal")
    assert portal.status_code == 200
    assert "Customer portal: big-co" in portal.text and 'id="usage"' in portal.text
    assert "Enterprise" in portal.text and 'id="invoice"' in portal.text
    client.cookies.clear()
    assert (
        "Customer portal: big-co"
        in client.get("/portal", headers=bearer(body["portal_api_key"])).text
    )
