"""Against the demo simulator's ground truth: the MRR the dashboard reports for every month
equals the sum over the subscriptions truly alive at that month's end."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from aethercrown.core.models import Tenant
from aethercrown.simulate.config import SimConfig
from aethercrown.simulate.service import load_demo
from tests.conftest import TenantHandle


def test_mrr_equals_the_simulators_true_mrr(
    client: TestClient,
    tenant: TenantHandle,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    config = SimConfig(customers=150, months=6, seed=7, end=datetime(2025, 11, 1, tzinfo=UTC))
    load_demo(session_factory, tenant.slug, config, replay=False)
    with session_factory() as session:
        assert session.get(Tenant, tenant.uid) is not None
    from aethercrown.simulate.generator import generate

    truth = generate(config).truth
    months = sorted(truth.mrr_by_month)
    body = client.post(
        "/api/v1/dashboard/metrics/revenue",
        json={"start": months[0], "end": months[-1]},
        headers=tenant.headers,
    ).json()
    reported = {row["month"]: row["mrr"] for row in body["months"]}
    assert sum(truth.mrr_by_month.values()) > 0
    for month in months:
        assert reported.get(month, 0) == truth.mrr_by_month[month], month


def test_trial_conversion_equals_the_simulators_trial_outcomes(
    client: TestClient,
    tenant: TenantHandle,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    config = SimConfig(customers=300, months=6, seed=11, end=datetime(2025, 11, 1, tzinfo=UTC))
    load_demo(session_factory, tenant.slug, config, replay=False)
    from aethercrown.simulate.generator import generate

    truth = generate(config).truth
    ended: dict[str, int] = {}
    converted: dict[str, int] = {}
    for trial in truth.trials:
        if trial["converted"] is None:  # still running when the window closed
            continue
        month = trial["trial_end"][:7]
        ended[month] = ended.get(month, 0) + 1
        converted[month] = converted.get(month, 0) + int(trial["converted"])
    # The generator makes trials that do not convert, so the rate is not a constant 100 %.
    assert 0 < sum(converted.values()) < sum(ended.values())
    months = sorted(ended)
    body = client.post(
        "/api/v1/dashboard/metrics/revenue",
        json={"start": months[0], "end": months[-1]},
        headers=tenant.headers,
    ).json()
    reported = {row["month"]: row for row in body["months"]}
    for month in months:
        row = reported[month]
        assert (row["trials_ended"], row["trials_converted"]) == (
            ended[month],
            converted.get(month, 0),
        ), month
        assert row["trial_conversion_rate"] == round(converted.get(month, 0) / ended[month], 4)
