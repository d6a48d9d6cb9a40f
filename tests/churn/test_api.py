import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from aethercrown.churn import features as F
from aethercrown.churn import service
from aethercrown.churn.models import ChurnScore, RetentionCampaign
from aethercrown.churn.repository import CustomerRepository, SubscriptionRepository
from aethercrown.clock import utcnow
from aethercrown.core.models import Decision
from aethercrown.data.models import ActivityEvent, Customer, Payment, Subscription, SupportTicket
from aethercrown.db.session import write_transaction
from tests.conftest import TenantHandle

BASE = "/api/v1/optimization/churn"
ENGAGED = {
    "days_since_last_login": 0.5,
    "session_frequency": 12,
    "avg_session_duration": 30,
    "feature_usage": 10,
    "support_tickets": 0,
    "payment_issues": 0,
}
DRIFTING = {
    "days_since_last_login": 40,
    "session_frequency": 0,
    "avg_session_duration": 0,
    "feature_usage": 0,
    "support_tickets": 4,
    "payment_issues": 3,
}


def test_six_fields_answer_from_the_simulator_prior_with_shap_factors(
    client: TestClient, tenant: TenantHandle, session_factory
) -> None:  # type: ignore[no-untyped-def]
    body = {"users": [{"user_id": "u1", **ENGAGED}, {"user_id": "u2", **DRIFTING}]}
    response = client.post(f"{BASE}/predict", json=body, headers=tenant.headers)
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["model_source"] == "simulator_prior" and out["feature_set"] == "seed6"
    engaged, drifting = out["predictions"]
    assert drifting["churn_probability"] > 3 * engaged["churn_probability"]
    for item in out["predictions"]:
        p = item["churn_probability"]
        assert item["risk_level"] == ("low" if p < 0.3 else "medium" if p < 0.5 else
                                      "high" if p < 0.7 else "critical")  # fmt: skip
        assert len(item["top_factors"]) == 3
        assert {f["feature"] for f in item["top_factors"]} <= set(F.SEED_FEATURES)
    assert any(f["direction"] == "raises_risk" for f in drifting["top_factors"])
    assert out["risk_summary"][drifting["risk_level"]] >= 1
    with write_transaction(session_factory) as session:
        kinds = session.scalars(select(Decision.kind).where(Decision.tenant_id == tenant.uid)).all()
    assert kinds.count("churn.score") == 2


def test_bad_input_is_a_4xx_naming_the_field(client: TestClient, tenant: TenantHandle) -> None:
    bad_bodies = [
        {"users": []},
        {"users": [{**ENGAGED, "mood": 3}]},
        {"users": [{**ENGAGED, "avg_session_duration": -1}]},
        {"users": [{k: v for k, v in ENGAGED.items() if k != "payment_issues"}]},
        {"users": [{**ENGAGED, "session_frequency": "often"}]},
        {},
        {"users": [ENGAGED], "customer_ids": [str(uuid.uuid4())]},
        {"customer_ids": []},
        {"customer_ids": ["nope"]},
    ]
    for body in bad_bodies:
        response = client.post(f"{BASE}/predict", json=body, headers=tenant.headers)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["errors"]
    for raw in ("NaN", "Infinity", "-Infinity", "1e999"):
        text = '{"users": [{"days_since_last_login": ' + raw + ', "session_frequency": 1, '
        text += '"avg_session_duration": 1, "feature_usage": 1, "support_tickets": 0, '
        text += '"payment_issues": 0}]}'
        response = client.post(
            f"{BASE}/predict",
            content=text,
            headers={**tenant.headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 422, (raw, response.text)
    unknown = client.post(
        f"{BASE}/predict", json={"customer_ids": [str(uuid.uuid4())]}, headers=tenant.headers
    )
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "customer_ids.0"


def test_training_without_history_says_what_is_missing(
    client: TestClient, tenant: TenantHandle
) -> None:
    response = client.post(f"{BASE}/train", json={}, headers=tenant.headers)
    assert response.status_code == 409
    body = response.json()
    assert body["type"].endswith("insufficient-history")
    assert body["missing"]["snapshots"] == 0 and body["missing"]["snapshots_needed"] >= 3
    assert "snapshots" in body["detail"]


def test_point_in_time_features_ignore_everything_after_the_as_of_moment(
    tenant: TenantHandle, session_factory
) -> None:  # type: ignore[no-untyped-def]
    as_of = datetime(2026, 3, 1, tzinfo=UTC)
    day = timedelta(days=1)
    with write_transaction(session_factory) as session:
        c = Customer(external_id="c1", name="C1", signup_date=(as_of - 100 * day).date(),
                     attributes={"seats": 4})  # fmt: skip
        c.tenant_id = tenant.uid
        session.add(c)
        session.flush()
        rows: list = []  # type: ignore[type-arg]

        def add(obj):  # type: ignore[no-untyped-def]
            obj.tenant_id = tenant.uid
            obj.customer_id = c.id
            rows.append(obj)

        add(Subscription(external_id="s1", plan="pro", amount=9900, currency="USD",
                         interval="month", quantity=2, started_at=as_of - 100 * day,
                         discount_percent=10.0, discount_amount=0))  # fmt: skip
        for i, (offset, dur) in enumerate([(-5, 600), (-20, 1200), (-40, 300), (+3, 9999)]):
            add(ActivityEvent(external_id=f"s{i}", user_id="u", kind="session",
                              occurred_at=as_of + offset * day, duration_seconds=dur))  # fmt: skip
        for i, (offset, feat) in enumerate(
            [(-3, "a"), (-4, "a"), (-6, "b"), (-45, "a"), (+1, "z")]
        ):
            add(ActivityEvent(external_id=f"f{i}", user_id="u", kind="feature",
                              occurred_at=as_of + offset * day, feature=feat))  # fmt: skip
        add(ActivityEvent(external_id="late", user_id="u", kind="login", occurred_at=as_of + day))
        add(SupportTicket(external_id="t1", opened_at=as_of - 10 * day, closed_at=as_of - 9 * day,
                          satisfaction=2))  # fmt: skip
        add(SupportTicket(external_id="t2", opened_at=as_of - 2 * day, closed_at=as_of + day,
                          satisfaction=5))  # fmt: skip
        add(SupportTicket(external_id="t3", opened_at=as_of + 2 * day))
        add(Payment(external_id="p1", occurred_at=as_of - 30 * day, status="failed", amount=1))
        add(Payment(external_id="p2", occurred_at=as_of + 1 * day, status="failed", amount=1))
        session.add_all(rows)
        session.flush()
        customers = CustomerRepository(session, tenant.uid).table()
        subs = SubscriptionRepository(session, tenant.uid).table(customers.index())
        x, active = service.features_at(session, tenant.uid, as_of, customers, subs, ["seats"])
    row = dict(zip(F.feature_names(["seats"]), x[0], strict=True))
    assert bool(active[0])
    assert row["days_since_last_login"] == 5.0
    assert row["session_frequency"] == 2 * 7 / 30
    assert row["avg_session_duration"] == 15.0  # (600 + 1200) s over 2 sessions
    # approx: numpy's vectorised log1p may differ from the scalar log in the last bit (SIMD).
    assert row["session_trend"] == pytest.approx(np.log(3) - np.log(2), rel=1e-12)
    assert row["feature_usage"] == 2.0 and row["feature_trend"] == 1.0
    assert row["support_tickets"] == 2.0 and row["open_tickets"] == 1.0
    assert row["satisfaction"] == 2.0  # t2's score arrived after the as-of moment
    assert row["payment_issues"] == 1.0
    assert row["tenure_days"] == 100.0
    assert row["mrr"] == 9900 * 2 * 0.9 / 100
    assert row["attr:seats"] == 4.0
    assert row["session_trend_14d"] == 0.0  # one session in each of the last two fortnights
    assert row["unhappy_tickets"] == 1.0  # t1 rated 2; t2's 5 arrived later
    assert row["payment_issues_30d"] == 0.0  # p1 is exactly 30 days old: outside


def test_train_promote_predict_campaigns_once_and_uplift(
    client: TestClient, tenant: TenantHandle, loaded, company, session_factory
) -> None:  # type: ignore[no-untyped-def]
    response = client.post(f"{BASE}/train", json={}, headers=tenant.headers)
    assert response.status_code == 201, response.text
    models = {m["feature_set"]: m for m in response.json()["models"]}
    assert set(models) == {"full", "seed6"}
    full = models["full"]
    assert full["promoted"] and full["version"] == 1
    assert 0.5 < full["roc_auc"] <= 1 and full["ece"] < 0.1 and full["top_decile_lift"] > 1.5
    assert "attr:acquired_in_window" in full["features"]

    listed = client.get(f"{BASE}/models", headers=tenant.headers).json()["items"]
    assert len(listed) == 2

    ids = list(loaded.values())[:300]
    first = client.post(f"{BASE}/predict", json={"customer_ids": [str(i) for i in ids]},
                        headers=tenant.headers)  # fmt: skip
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["model_source"] == "tenant" and body["model_version"] == "full-v1"
    assert [p["customer_id"] for p in body["predictions"]] == [str(i) for i in ids]
    planned = [p for p in body["predictions"] if p["campaign"] and p["active"]]
    for p in body["predictions"]:
        if p["risk_level"] == "low" or not p["active"]:
            assert p["campaign"] is None
    again = client.post(f"{BASE}/predict", json={"customer_ids": [str(i) for i in ids]},
                        headers=tenant.headers).json()  # fmt: skip
    assert all(p["campaign"]["status"] == "cooldown" for p in again["predictions"] if p["campaign"])
    with write_transaction(session_factory) as session:
        stored = session.scalar(select(func.count()).select_from(RetentionCampaign))
        scores = session.scalar(select(func.count()).select_from(ChurnScore))
    assert stored == len(planned) and scores == 600

    # Retraining registers version 2 and promotes it only if not worse on the holdout.
    retrained = client.post(f"{BASE}/train", json={}, headers=tenant.headers).json()["models"]
    assert {m["version"] for m in retrained} == {2}
    for m in retrained:
        inc = m["training"]["incumbent_holdout_roc_auc"]
        assert m["promoted"] == (m["roc_auc"] >= inc)

    # Outcomes join back once the horizon has passed; uplift is reported per bucket.
    with write_transaction(session_factory) as session:
        resolved = service.resolve_outcomes(session, tenant.uid, utcnow() + timedelta(days=31))
    assert resolved == stored
    # Every customer score is joined, not only the targeted ones (so accuracy is measured on
    # everyone scored), and every campaign decision with its holdout flag.
    with session_factory() as session:
        scores = session.scalars(
            select(Decision).where(Decision.kind == "churn.score", Decision.tenant_id == tenant.uid)
        ).all()
        campaign_decisions = session.scalars(
            select(Decision).where(Decision.kind == "churn.campaign")
        ).all()
    assert len(scores) == 600 and all(d.outcome_at is not None for d in scores)
    assert all(d.outcome_value == float(d.outcome["churned"]) for d in scores)
    assert len(campaign_decisions) == stored
    assert all(d.outcome["holdout"] == d.output["holdout"] for d in campaign_decisions)
    with write_transaction(session_factory) as session:
        assert service.resolve_outcomes(session, tenant.uid, utcnow() + timedelta(days=62)) == 0
    uplift = client.get(f"{BASE}/uplift", headers=tenant.headers).json()
    assert {b["risk_level"] for b in uplift["buckets"]} == {"critical", "high", "medium"}
    total = sum(b["treated"] + b["holdout"] for b in uplift["buckets"])
    assert total == stored
    page = client.get(f"{BASE}/campaigns?limit=5", headers=tenant.headers).json()
    assert len(page["items"]) == min(5, stored)
    assert all(c["outcome"] in ("churned", "retained") for c in page["items"])
    # each campaign names its customer by external id and name, beside the internal id
    by_id = {str(v): k for k, v in loaded.items()}
    for c in page["items"]:
        assert c["customer"] == by_id[c["customer_id"]] and c["customer_name"]


def test_batch_scoring_job_scores_every_active_customer(
    tenant: TenantHandle, loaded, company, session_factory
) -> None:  # type: ignore[no-untyped-def]
    from aethercrown.churn.jobs import JOBS
    from aethercrown.core.models import Tenant
    from aethercrown.webhooks.models import WebhookDelivery

    job = next(j for j in JOBS if j.name == "churn.score")
    assert job.interval_seconds == 12 * 3600
    with write_transaction(session_factory) as session:
        session.get_one(Tenant, tenant.uid).webhook_url = "https://hooks.example.test/churn"
    with write_transaction(session_factory) as session:
        summary = job.run(session, tenant.uid, utcnow())
    now = utcnow()
    active = {
        s["customer"]
        for s in company.rows["subscriptions"]
        if datetime.fromisoformat(s["started_at"]) <= now
        and (s.get("ended_at") is None or datetime.fromisoformat(s["ended_at"]) > now)
    }
    assert summary["scored"] == len(active) and summary["model_source"] == "simulator_prior"
    with write_transaction(session_factory) as session:
        campaigns = session.scalars(select(RetentionCampaign)).all()
        held = [c for c in campaigns if c.holdout]
        assert all(c.actions == [] and c.discount_percent == 0 for c in held)
        assert len(campaigns) == summary["campaigns"]["created"] + summary["campaigns"]["held_out"]
        deliveries = session.scalars(select(WebhookDelivery)).all()
        sent = [c for c in campaigns if not c.holdout]
        assert len(deliveries) == len(sent) and all(c.status == "queued" for c in sent)
        assert {d.payload["campaign_id"] for d in deliveries} == {str(c.id) for c in sent}
        assert all(d.event_type == "churn.campaign.created" and d.decision_id for d in deliveries)
        # A second run inside the cooldown creates nothing new.
        again = job.run(session, tenant.uid, utcnow())
        assert again["campaigns"] == {"created": 0, "held_out": 0}


def test_campaign_insert_never_duplicates_within_a_cooldown(
    tenant: TenantHandle, session_factory
) -> None:  # type: ignore[no-untyped-def]
    from aethercrown.churn.repository import CampaignRepository

    with write_transaction(session_factory) as session:
        row_customer = Customer(external_id="c1", name="C1", signup_date=utcnow().date())
        row_customer.tenant_id = tenant.uid
        session.add(row_customer)
        session.flush()
        customer = row_customer.id

    def row() -> dict:  # type: ignore[type-arg]
        return {"id": uuid.uuid4(), "customer_id": customer, "cooldown_bucket": 5,
                "risk_level": "high", "probability": 0.6, "actions": ["email"],
                "discount_percent": 20, "holdout": False, "status": "planned",
                "model_version": "t", "created_at": utcnow()}  # fmt: skip

    with write_transaction(session_factory) as a:
        assert len(CampaignRepository(a, tenant.uid).insert_new([row()])) == 1
    with write_transaction(session_factory) as b:
        assert CampaignRepository(b, tenant.uid).insert_new([row()]) == set()
        assert b.scalar(select(func.count()).select_from(RetentionCampaign)) == 1
