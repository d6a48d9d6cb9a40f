"""Churn and upsell campaigns' emails, written by the content module for each campaign's
customer (name, plan, top risk factors or usage against capacity, the offer), stored as email
items linked to their campaigns, shown on the console; the provider is a real OpenAI-compatible
server on loopback."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from aethercrown.churn.models import ChurnScore, RetentionCampaign
from aethercrown.cli import app
from aethercrown.clock import utcnow
from aethercrown.content import campaign_mail, jobs, service
from aethercrown.content.schemas import ProfileIn
from aethercrown.core.crypto import secret_box
from aethercrown.data.models import Customer, Subscription
from aethercrown.db import migrate
from aethercrown.db.engine import make_engine, make_session_factory
from aethercrown.db.session import write_transaction
from aethercrown.metering.models import UpsellCampaign
from aethercrown.pricing.repository import PlanRepository
from aethercrown.settings import get_settings
from aethercrown.tenants.service import resolve_tenant_ref
from tests.conftest import TenantHandle
from tests.content.conftest import BASE, FACTS, PROFILE, put_profile
from tests.content.llm_server import LLMServer, Reply, answer
from tests.web.test_pages import sign_in

UNSUBSCRIBE = {
    "title": "Unsubscribe",
    "url": "https://acme.example/unsubscribe",
    "kind": "unsubscribe",
}
FACTORS = [
    {
        "feature": "days_since_last_login",
        "value": 21.0,
        "contribution": 0.9,
        "direction": "raises_risk",
    },
    {"feature": "satisfaction", "value": 4.5, "contribution": -0.4, "direction": "lowers_risk"},
    {"feature": "payment_issues", "value": 2.0, "contribution": 0.3, "direction": "raises_risk"},
]
USAGE = [
    {
        "trigger": "projected_over_capacity",
        "metric": "api_calls",
        "value": 1.34,
        "detail": "api_calls will reach at least 13,400 …",
    },
    {
        "trigger": "sustained_high_usage",
        "metric": "api_calls",
        "value": 0.91,
        "detail": "api_calls ran above 85% …",
    },
]


@dataclass
class Campaigns:
    treated: uuid.UUID  # Dana Fox, Professional, high risk, 20 % discount
    held_out: uuid.UUID  # Lee Park: the control group, no email
    upsell: uuid.UUID  # Sam Ortiz, Starter → Professional


def _customer(
    session: Session, tenant_id: uuid.UUID, external_id: str, name: str, plan: str
) -> Customer:
    customer = Customer(
        tenant_id=tenant_id,
        external_id=external_id,
        name=name,
        email=f"{external_id}@example.com",
        signup_date=date(2024, 1, 15),
    )
    session.add(customer)
    session.flush()
    session.add(
        Subscription(
            tenant_id=tenant_id,
            external_id=f"sub-{external_id}",
            customer_id=customer.id,
            plan=plan,
            amount=9900,
            interval="month",
            started_at=utcnow() - timedelta(days=200),
        )
    )
    return customer


def _campaigns(factory: sessionmaker[Session], tenant_id: uuid.UUID) -> Campaigns:
    now = utcnow()
    with write_transaction(factory) as s:
        PlanRepository(s, tenant_id).ensure()
        dana = _customer(s, tenant_id, "dana", "Dana Fox", "professional")
        lee = _customer(s, tenant_id, "lee", "Lee Park", "starter")
        sam = _customer(s, tenant_id, "sam", "Sam Ortiz", "starter")
        for customer in (dana, lee):
            s.add(
                ChurnScore(
                    tenant_id=tenant_id, customer_id=customer.id, scored_at=now,
                    probability=0.62, risk_level="high", model_source="tenant",
                    model_version="1", factors=FACTORS,
                )
            )  # fmt: skip
        treated = RetentionCampaign(
            tenant_id=tenant_id, customer_id=dana.id, cooldown_bucket=1, risk_level="high",
            probability=0.62, actions=["email", "in_app_message", "discount"],
            discount_percent=20, holdout=False, status="planned", model_version="1",
            created_at=now - timedelta(days=1),
        )  # fmt: skip
        held = RetentionCampaign(
            tenant_id=tenant_id, customer_id=lee.id, cooldown_bucket=1, risk_level="high",
            probability=0.62, actions=[], discount_percent=0, holdout=True, status="held_out",
            model_version="1", created_at=now - timedelta(days=1),
        )  # fmt: skip
        upsell = UpsellCampaign(
            tenant_id=tenant_id, customer_id=sam.id, period_start=now.date().replace(day=1),
            current_plan="starter", recommended_plan="professional", monthly_price=9900,
            currency="USD", reasons=USAGE, created_by="test",
        )  # fmt: skip
        s.add_all([treated, held, upsell])
        s.flush()
        return Campaigns(treated.id, held.id, upsell.id)


@pytest.fixture
def campaigns(
    client: TestClient, tenant: TenantHandle, session_factory: sessionmaker[Session]
) -> Campaigns:
    put_profile(client, tenant, links=[*PROFILE["links"], UNSUBSCRIBE])
    return _campaigns(session_factory, tenant.uid)


def _write(client: TestClient, tenant: TenantHandle, **body: Any) -> dict[str, Any]:
    response = client.post(f"{BASE}/campaign-emails", json=body, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_churn_campaign_email_is_written_for_its_customer_offline(
    client: TestClient, tenant: TenantHandle, campaigns: Campaigns
) -> None:
    out = _write(client, tenant, campaign="churn")
    # The held-out customer is the control group: no email is written for it.
    assert len(out["written"]) == 1 and out["already_written"] == 0
    item = out["written"][0]
    assert item["kind"] == "email" and item["channel"] == "email"
    assert item["campaign_kind"] == "churn" and item["campaign_id"] == str(campaigns.treated)
    current = item["current"]
    assert current["provider"] == "offline" and current["fallback_reason"] is None
    body = current["body"]
    assert body["greeting"] == "Hi Dana,"
    assert "Dana" in body["subject"] and "20 %" in body["subject"]
    # The top factors that raise the risk, in words; the one that lowers it is not named.
    assert "nobody on your team has signed in for 21 days" in body["intro"]
    assert "a recent payment did not go through" in body["intro"]
    assert "satisfaction" not in json.dumps(body)
    assert "Professional plan" in body["intro"] + " ".join(s["text"] for s in body["sections"])
    texts = [body["intro"], *(s["text"] for s in body["sections"])]
    assert len(texts) == len(set(texts))
    assert current["inputs"]["campaign"]["customer"] == "dana"

    # Once per campaign: asked again, the email is kept, not doubled.
    again = _write(client, tenant, campaign="churn")
    assert again["written"] == [] and again["already_written"] == 1
    named = _write(
        client, tenant, campaign="churn", campaign_ids=[str(campaigns.held_out), str(uuid.uuid4())]
    )
    assert named["written"] == [] and len(named["not_found"]) == 2

    found = client.get(
        f"{BASE}/items", params={"campaign_id": str(campaigns.treated)}, headers=tenant.headers
    ).json()["items"]
    assert [i["id"] for i in found] == [item["id"]]

    # It renders like any email: unsubscribe link, postal address, one-click headers.
    rendered = client.post(
        f"{BASE}/items/{item['id']}/render",
        json={"customer": "dana", "from_address": "care@acme.example"},
        headers=tenant.headers,
    )
    assert rendered.status_code == 200, rendered.text
    message = rendered.json()
    assert message["text"].startswith("Hi Dana,")
    assert PROFILE["postal_address"] in message["text"]
    assert message["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "dana@example.com" in message["headers"]["To"]


def test_console_shows_the_campaign_email(
    client: TestClient, tenant: TenantHandle, campaigns: Campaigns
) -> None:
    item = _write(client, tenant, campaign="churn")["written"][0]
    upsell = _write(client, tenant, campaign="upsell")["written"][0]
    sign_in(client, tenant.key)
    page = client.get("/console/churn/campaigns")
    assert page.status_code == 200
    row = page.text.split('id="campaigns"')[1]
    assert f'<a href="/console/content#item-{item["id"]}">' in row
    assert item["title"].replace("'", "&#39;") in row
    content = client.get("/console/content")
    assert content.status_code == 200
    assert "churn campaign" in content.text and "upsell campaign" in content.text
    assert "The email of the retention campaign for Dana Fox (dana, on Professional)" in (
        content.text
    )
    assert upsell["title"].replace("'", "&#39;") in content.text


def test_upsell_email_from_the_provider_must_state_the_offer(
    client: TestClient, tenant: TenantHandle, campaigns: Campaigns, llm: LLMServer
) -> None:
    put_profile(
        client,
        tenant,
        links=[*PROFILE["links"], UNSUBSCRIBE],
        provider={"base_url": llm.base_url, "model": "test-model", "api_key": "sk-tenant"},
    )
    vague = {
        "subject": "Your team is growing",
        "preheader": "A note on how your usage has grown this month, and what comes next.",
        "intro": "Your team is doing more with Acme Recover every week.",
        "paragraphs": ["We think a bigger plan would suit you well, so take a look soon."],
    }
    good = {
        **vague,
        "paragraphs": [
            "The Professional plan gives your API calls room to grow, for USD 99.00 a month."
        ],
    }
    llm.queue(answer(vague), answer(good))
    out = _write(client, tenant, campaign="upsell")
    assert len(out["written"]) == 1
    current = out["written"][0]["current"]
    assert current["provider"] == "openai-compatible" and current["model"] == "test-model"
    assert current["body"]["greeting"] == "Hi Sam,"
    assert current["body"]["sections"][0]["text"].startswith("The Professional plan")
    assert len(llm.requests) == 2
    # The second request says what was wrong with the first answer.
    assert "must state the offer" in json.dumps(llm.requests[1]["messages"])
    prompt = json.dumps(llm.requests[0]["messages"], ensure_ascii=False)
    assert "Sam Ortiz" in prompt and "Starter" in prompt
    assert "the Professional plan at USD 99.00 a month" in prompt
    assert "use of api calls will reach 134% of your Starter plan" in prompt
    assert "Dana" not in prompt  # another customer's brief never reaches this prompt


def test_provider_failure_falls_back_to_the_offline_writer_and_says_why(
    client: TestClient, tenant: TenantHandle, campaigns: Campaigns, llm: LLMServer
) -> None:
    put_profile(
        client,
        tenant,
        links=[*PROFILE["links"], UNSUBSCRIBE],
        provider={"base_url": llm.base_url, "model": "test-model", "api_key": "sk-tenant"},
    )
    llm.default = Reply(status=503, headers={"retry-after-ms": "1"})
    out = _write(client, tenant, campaign="churn")
    current = out["written"][0]["current"]
    assert current["provider"] == "offline"
    assert "HTTP 503" in current["fallback_reason"]
    assert "20 %" in current["body"]["subject"]


def test_bad_requests_are_4xx(client: TestClient, tenant: TenantHandle) -> None:
    for body in (
        {"campaign": "referral"},
        {"campaign": "churn", "limit": 0},
        {"campaign": "churn", "campaign_ids": ["not-a-uuid"]},
        {"campaign": "churn", "since_days": "30"},
    ):
        response = client.post(f"{BASE}/campaign-emails", json=body, headers=tenant.headers)
        assert response.status_code == 422, body
    # No product profile yet: nothing to write from.
    response = client.post(
        f"{BASE}/campaign-emails", json={"campaign": "churn"}, headers=tenant.headers
    )
    assert response.status_code == 409


def _brief(**overrides: Any) -> campaign_mail.CampaignBrief:
    fields: dict[str, Any] = {
        "campaign": "churn",
        "campaign_id": str(uuid.UUID(int=1)),
        "customer": "c-1",
        "name": "Ana {{email}} Lima",
        "plan": "Professional",
        "risk_level": "medium",
        "factors": tuple(FACTORS),
    }
    return campaign_mail.CampaignBrief(**(fields | overrides))


def test_offline_writer_varies_by_campaign_and_never_leaves_merge_fields() -> None:
    gentle = campaign_mail.write_campaign_email(FACTS, _brief())
    # A medium-risk campaign makes no offer: it highlights features instead.
    assert campaign_mail.offer(_brief()) is None
    assert "%" not in gentle["subject"]
    assert any(
        "Smart retries" in s["text"] or "Churn alerts" in s["text"] for s in gentle["sections"]
    )
    # A customer's name holding braces never becomes a merge field.
    assert gentle["greeting"] == "Hi Ana,"
    assert "{{" not in json.dumps([gentle["intro"], gentle["sections"]])
    other = campaign_mail.write_campaign_email(
        FACTS, _brief(campaign_id=str(uuid.UUID(int=2)), name="")
    )
    assert other["greeting"] == "Hi {{first_name|there}},"
    critical = _brief(
        risk_level="critical", discount_percent=30, actions=("email", "personal_outreach")
    )
    text = json.dumps(campaign_mail.write_campaign_email(FACTS, critical))
    assert "a 30 % discount on your Professional plan" in text
    assert "reach out" in text


def test_campaign_emails_from_the_command_line(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'content.db'}"
    migrate.upgrade(url)
    monkeypatch.setenv("AETHERCROWN_DATABASE_URL", url)
    monkeypatch.setenv("AETHERCROWN_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    runner = CliRunner()
    assert runner.invoke(app, ["tenants", "create", "Acme", "--slug", "acme-e"]).exit_code == 0
    factory = make_session_factory(make_engine(url))
    with write_transaction(factory) as session:
        tenant_id = resolve_tenant_ref(session, "acme-e").id
        service.save_profile(
            session, tenant_id, ProfileIn.model_validate(PROFILE), secret_box(get_settings())
        )
    _campaigns(factory, tenant_id)
    args = ["content", "campaign-emails", "upsell", "--tenant", "acme-e", "--offline"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1 upsell campaign emails written" in result.output
    assert "sam (Sam Ortiz)" in result.output and "offline" in result.output
    again = runner.invoke(app, args)
    assert "0 upsell campaign emails written" in again.output
    assert "1 campaigns already had their email" in again.output
    bad = runner.invoke(app, ["content", "campaign-emails", "referral", "--tenant", "acme-e"])
    assert bad.exit_code == 2


def test_hourly_job_writes_new_campaigns_emails_once(
    client: TestClient,
    tenant: TenantHandle,
    other_tenant: TenantHandle,
    campaigns: Campaigns,
    session_factory: sessionmaker[Session],
) -> None:
    first = jobs.campaign_emails(session_factory, tenant.uid, utcnow())
    assert first == {"churn": 1, "upsell": 1, "fallbacks": 0}
    assert jobs.campaign_emails_headline(first) == "1 retention email, 1 upsell email written"
    assert jobs.campaign_emails(session_factory, tenant.uid, utcnow())["churn"] == 0
    items = client.get(
        f"{BASE}/items", params={"campaign_kind": "upsell"}, headers=tenant.headers
    ).json()["items"]
    assert [i["campaign_id"] for i in items] == [str(campaigns.upsell)]
    # A tenant with no content profile has nothing to write from.
    skipped = jobs.campaign_emails(session_factory, other_tenant.uid, utcnow())
    assert "profile" in skipped["skipped"]
