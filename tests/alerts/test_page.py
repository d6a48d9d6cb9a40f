"""The console's Alerts page: the tenant's channels (a Slack URL only masked) and its latest
deliveries, in accessible tables."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.alerts.conftest import BASE, SlackReceiver
from tests.conftest import TenantHandle
from tests.web.test_pages import sign_in


def test_the_alerts_page_lists_channels_and_recent_deliveries(
    client: TestClient, tenant: TenantHandle, other_tenant: TenantHandle, slack: SlackReceiver
) -> None:
    made = client.post(
        BASE,
        json={
            "name": "ops-room",
            "kind": "slack",
            "webhook_url": slack.url,
            "event_types": ["sla.breach"],
            "min_severity": "warning",
        },
        headers=tenant.headers,
    ).json()
    client.post(
        BASE,
        json={"name": "finance", "kind": "email", "recipients": ["cfo@acme.example"]},
        headers=tenant.headers,
    )
    client.post(
        BASE,
        json={"name": "their-room", "kind": "email", "recipients": ["x@globex.example"]},
        headers=other_tenant.headers,
    )
    client.post(f"{BASE}/{made['id']}/test", headers=tenant.headers)
    sign_in(client, tenant.key)
    page = client.get("/console/alerts")
    assert page.status_code == 200
    html = page.text
    assert '<a href="/console/alerts" aria-current="page">Alerts</a>' in html or (
        'aria-current="page"' in html and ">Alerts<" in html
    )
    assert '<th scope="row">ops-room</th>' in html and '<th scope="row">finance</th>' in html
    assert "cfo@acme.example" in html and "sla.breach" in html and "every event" in html
    assert made["webhook_url"] in html and "XXXXsecretXXXX" not in html
    assert '<th scope="row">alert.test</th>' in html and "delivered" in html
    assert "their-room" not in html and "globex" not in html
