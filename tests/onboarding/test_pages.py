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

    assert client.get("/onboarding").status_code == 401  # signed out
    listing = client.get("/onboarding", headers=tenant.headers)
    assert listing.status_code == 200 and "big-co" in listing.text
    page = client.get(f"/onboarding/{body['id']}", headers=tenant.headers)
    assert page.status_code == 200
    assert 'id="blockers"' in page.text and "support webhook answered 500" in page.text
    assert "account creation" in page.text and "onboarding.create" in page.text
    assert client.get(f"/onboarding/{body['id']}", headers=other_tenant.headers).status_code == 404
    assert client.get("/onboarding/not-an-id", headers=tenant.headers).status_code == 404
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
