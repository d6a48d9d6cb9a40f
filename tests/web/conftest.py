"""The hand-computed company, keys for both pages, and a live server for the browser."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from aethercrown import clock
from tests.analytics.fixtures import load_company
from tests.conftest import TenantHandle
from tests.servers import free_port

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def company(session_factory, tenant: TenantHandle) -> dict[str, uuid.UUID]:  # type: ignore[no-untyped-def]
    return load_company(session_factory, tenant.uid)


@pytest.fixture
def investor_key(client: TestClient, tenant: TenantHandle) -> str:
    response = client.post(
        "/api/v1/operational/security/keys/register",
        json={"name": "board", "kind": "api_key", "security_level": "low", "scopes": ["investor"]},
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["secret"])


@pytest.fixture
def live_server(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The test app served by uvicorn on a free port in a thread."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise TimeoutError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def chromium_or_skip() -> None:
    """Browser tests skip only on a machine without Chromium, never in CI (.ci/run installs it)."""
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail("CI needs /usr/bin/chromium for the browser tests")
    pytest.skip("/usr/bin/chromium is not installed (apt-get install -y chromium)")


@pytest.fixture
def churn_history(session_factory, tenant: TenantHandle, company: dict[str, uuid.UUID]) -> datetime:  # type: ignore[no-untyped-def]
    """Churn scores in the ledger with their outcomes (AUC 0.75 in the month they were made),
    a to-day score of 19% for customer a, medium-risk campaigns resolved 60 days ago (treated
    2 of 2 retained, held out 0 of 1: +100 pts) and one treated campaign of a yesterday.
    Returns when the ledger scores were made."""
    from datetime import timedelta

    from aethercrown.churn.models import ChurnScore, RetentionCampaign
    from aethercrown.core.ledger import record_decision, record_outcome
    from aethercrown.db.session import write_transaction

    now = clock.utcnow()
    # Decisions a moment before now: periods end (exclusively) at now.
    made = now - timedelta(minutes=1)
    with write_transaction(session_factory) as session:
        for name, score, churned in (
            ("a", 0.9, 1.0),
            ("b", 0.2, 1.0),
            ("c", 0.7, 0.0),
            ("e", 0.1, 0.0),
        ):
            d = record_decision(
                session,
                tenant_id=tenant.uid,
                kind="churn.score",
                subject_type="customer",
                subject_id=company[name],
                inputs={},
                output={},
                model="m",
                model_version="1",
                predicted_value=score,
            )
            d.created_at = made
            record_outcome(d, {"churned": bool(churned)}, churned)
        session.add(
            ChurnScore(
                tenant_id=tenant.uid,
                customer_id=company["a"],
                scored_at=now,
                probability=0.19,
                risk_level="low",
                model_source="tenant",
                model_version="1",
                factors=[],
            )
        )
        # Resolved campaigns 60 days ago measure the medium level's uplift: treated 2 of 2
        # retained, held out 0 of 1 → +100 pts. One treated campaign of a yesterday follows.
        old = now - timedelta(days=60)
        for name, holdout, outcome in (
            ("b", False, "retained"),
            ("c", False, "retained"),
            ("e", True, "churned"),
        ):
            session.add(
                RetentionCampaign(
                    tenant_id=tenant.uid, customer_id=company[name], cooldown_bucket=1,
                    risk_level="medium", probability=0.4, actions=[], holdout=holdout,
                    status="held_out" if holdout else "planned", model_version="1",
                    outcome=outcome, outcome_at=now - timedelta(days=30), created_at=old,
                )
            )  # fmt: skip
        session.add(
            RetentionCampaign(
                tenant_id=tenant.uid, customer_id=company["a"], cooldown_bucket=2,
                risk_level="medium", probability=0.4, actions=["gentle_reminder"],
                holdout=False, status="planned", model_version="1",
                created_at=now - timedelta(days=1),
            )
        )  # fmt: skip
        campaign = record_decision(
            session,
            tenant_id=tenant.uid,
            kind="churn.campaign",
            subject_type="customer",
            subject_id=company["a"],
            inputs={},
            output={},
            model="rules",
            model_version="1",
        )
        campaign.created_at = made
    return made


MARKETING_DAYS = 90


@pytest.fixture
def marketing_days(session_factory, tenant: TenantHandle) -> list[date]:  # type: ignore[no-untyped-def]
    """Daily spend and attributed revenue of two channels ("search", "social") over the last
    MARKETING_DAYS days, saturating in the spend, so the budget page fits response curves.
    Spend on day i is 10,000 + 1,000 × (i mod 9). Returns the days, oldest first."""
    from datetime import timedelta

    from aethercrown.data.models import MarketingSpend
    from aethercrown.db.session import write_transaction

    first = clock.utcnow().date() - timedelta(days=MARKETING_DAYS)
    days = [first + timedelta(days=i) for i in range(MARKETING_DAYS)]
    with write_transaction(session_factory) as session:
        for i, day in enumerate(days):
            for channel, scale in (("search", 1.0), ("social", 0.6)):
                spend = 10_000 + 1_000 * (i % 9)
                revenue = int(scale * 60_000 * spend / (spend + 12_000))
                session.add(
                    MarketingSpend(
                        tenant_id=tenant.uid, channel=channel, day=day, spend=spend,
                        currency="USD", attributed_revenue=revenue, conversions=spend // 1_000,
                    )
                )  # fmt: skip
    return days
