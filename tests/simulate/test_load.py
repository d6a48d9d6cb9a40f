"""Loading the demo company through the real ingestion service, on every backend."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from aethercrown.analytics.models import AnalyticsSnapshot
from aethercrown.cli import app as cli_app
from aethercrown.core.errors import Conflict
from aethercrown.core.models import AuditEvent, Decision, Tenant
from aethercrown.data import service as data_service
from aethercrown.data.models import (
    ActivityEvent,
    Customer,
    MarketingSpend,
    Payment,
    Subscription,
    SupportTicket,
)
from aethercrown.db.session import write_transaction
from aethercrown.metering.models import UsageEvent
from aethercrown.settings import Settings
from aethercrown.simulate import SimConfig, generate
from aethercrown.simulate import service as simulate_service
from aethercrown.simulate.experiments import verdict_is_right
from aethercrown.simulate.models import SimulatedTruth
from aethercrown.simulate.service import load_demo
from aethercrown.simulate.truth import monthly_value
from tests.conftest import TenantHandle, bearer

# Fixed windows (May–October 2025): the same company on any day the suite runs.
SMALL = SimConfig(customers=100, months=6, seed=3, end=datetime(2025, 11, 1, tzinfo=UTC))
TABLES = {
    "customers": Customer,
    "subscriptions": Subscription,
    "activity": ActivityEvent,
    "tickets": SupportTicket,
    "payments": Payment,
    "marketing": MarketingSpend,
    "usage": UsageEvent,
}


def stored_counts(session_factory) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with session_factory() as session:
        return {
            kind: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for kind, model in TABLES.items()
        }


def test_load_writes_every_kind_and_the_truth_and_reloads_idempotently(
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    # The replay of the automation is tested on its own (test_replay.py).
    collector_during: set[bool] = set()
    result = load_demo(
        session_factory,
        "sim-demo",
        SMALL,
        replay=False,
        progress=lambda *_: collector_during.add(gc.isenabled()),
    )
    assert result.created_tenant and result.api_key and not result.skipped
    # The cyclic collector paused for the load (simulate.service), and running again after it.
    assert collector_during == {False} and gc.isenabled()
    company = generate(SMALL)
    expected = {kind: len(company.rows[kind]) for kind in TABLES}
    assert stored_counts(session_factory) == expected
    assert {k: v["inserted"] for k, v in result.counts.items()} == expected
    assert result.not_ingested == {} and expected["usage"] > 0
    with session_factory() as session:
        # The dashboards' default view is stored with the load (the first page reads it).
        views = session.scalars(
            select(AnalyticsSnapshot.view).where(AnalyticsSnapshot.tenant_id == result.tenant_id)
        )
        assert set(views) == {"revenue:*:*:*"}

    with session_factory() as session:
        tenant = session.scalars(select(Tenant).where(Tenant.slug == "sim-demo")).one()
        assert tenant.tier_slug == "enterprise"
        truth_row = session.scalars(select(SimulatedTruth)).one()
        assert truth_row.tenant_id == tenant.id and truth_row.seed == 3
        assert truth_row.config == SMALL.to_dict()
        assert truth_row.truth["churn"] == company.truth.to_dict()["churn"]
        # The stored subscriptions give back the truth's MRR at the end of the window.
        instant = datetime.combine(company.truth.end, datetime.min.time(), UTC)
        mrr = 0
        for sub in session.scalars(select(Subscription)):
            active = sub.started_at <= instant and (sub.ended_at is None or instant < sub.ended_at)
            if active and (sub.trial_end is None or sub.trial_end <= instant):
                mrr += monthly_value(
                    {
                        "amount": sub.amount,
                        "quantity": sub.quantity,
                        "discount_percent": sub.discount_percent,
                        "discount_amount": sub.discount_amount,
                        "interval": sub.interval,
                    }
                )
        last_month = sorted(company.truth.mrr_by_month)[-1]
        assert mrr == company.truth.mrr_by_month[last_month]
        churned = {c["customer"] for c in company.truth.churn if c["ended_within_window"]}
        ended = set(
            session.scalars(
                select(Customer.external_id)
                .join(Subscription, Subscription.customer_id == Customer.id)
                .where(Subscription.ended_at.is_not(None))
            )
        )
        assert churned <= ended

    again = load_demo(session_factory, "sim-demo", SMALL, replay=False)
    assert again.skipped and not again.created_tenant and again.api_key is None
    assert again.summary["customers"] == 100
    forced = load_demo(session_factory, "sim-demo", SMALL, force=True, replay=False)
    assert not forced.skipped
    assert all(c["inserted"] == 0 and c["updated"] == 0 for c in forced.counts.values())
    assert {k: v["unchanged"] for k, v in forced.counts.items()} == expected
    assert stored_counts(session_factory) == expected
    with pytest.raises(Conflict):
        load_demo(
            session_factory,
            "sim-demo",
            SimConfig(customers=100, months=6, seed=4, end=SMALL.end),
            replay=False,
        )
    with session_factory() as session:
        actions = set(session.scalars(select(AuditEvent.action)))
        assert {"simulate.demo_loaded", "simulate.demo_reloaded"} <= actions
        assert session.scalar(select(func.count()).select_from(SimulatedTruth)) == 1


def test_truth_api(
    client: TestClient,
    tenant: TenantHandle,
    other_tenant: TenantHandle,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    assert client.get("/api/v1/simulate/truth", headers=tenant.headers).status_code == 404
    assert client.get("/api/v1/simulate/truth").status_code == 401
    with write_transaction(session_factory) as session:
        result = load_demo(session, tenant.slug, SMALL)  # an existing tenant: no new key
    assert not result.created_tenant and result.api_key is None

    response = client.get("/api/v1/simulate/truth", headers=tenant.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    truth = generate(SMALL).truth
    assert body["seed"] == 3 and body["tenant_id"] == tenant.id
    assert body["truth"]["hazard"]["coefficients"] == truth.hazard["coefficients"]
    assert body["truth"]["mrr_by_month"] == truth.mrr_by_month
    assert set(body["truth"]["channels"]) == set(truth.channels)
    assert body["row_counts"]["ingested"]["usage"]["inserted"] > 0
    # Another tenant's key sees nothing of it.
    assert client.get("/api/v1/simulate/truth", headers=other_tenant.headers).status_code == 404

    as_of = "2025-08-01"
    response = client.get(
        "/api/v1/simulate/truth/churn-probabilities",
        params={"as_of": as_of, "horizon_days": 30},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    oracle = response.json()
    expected = truth.churn_probabilities(datetime(2025, 8, 1, tzinfo=UTC), 30)
    labels = truth.churned_within(datetime(2025, 8, 1, tzinfo=UTC), 30)
    assert {i["customer"]: i["probability"] for i in oracle["items"]} == pytest.approx(expected)
    assert oracle["churned"] == sum(labels.values())
    for params, field in (
        ({"as_of": "2030-01-01"}, "as_of"),
        ({"as_of": "2025-08-01", "horizon_days": 0}, "horizon_days"),
        ({"as_of": "2025-08-01", "mode": "crystal"}, "mode"),
        ({"as_of": "yesterday"}, "as_of"),
    ):
        bad = client.get(
            "/api/v1/simulate/truth/churn-probabilities", params=params, headers=tenant.headers
        )
        assert bad.status_code == 422, (params, bad.text)
        assert field in bad.text


def test_demo_cli_creates_the_tenant_once(
    settings: Settings,
    monkeypatch,  # type: ignore[no-untyped-def]
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    from aethercrown.settings import get_settings

    monkeypatch.setenv("AETHERCROWN_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("AETHERCROWN_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    runner = CliRunner()
    args = ["demo", "--tenant", "cli-demo", "--customers", "60", "--months", "3", "--seed", "9"]
    # A fixed end (the same company on both runs), and no replay (test_replay.py covers it).
    args += ["--end", "2025-08-01", "--no-replay"]
    first = runner.invoke(cli_app, args)
    assert first.exit_code == 0, first.output
    key = first.stdout.strip().splitlines()[-1]
    assert key.startswith("ack_")
    counts = stored_counts(session_factory)
    assert counts["customers"] == 60
    second = runner.invoke(cli_app, args)
    assert second.exit_code == 0, second.output
    assert "ack_" not in second.stdout and "already holds" in second.output
    assert stored_counts(session_factory) == counts
    other_seed = runner.invoke(cli_app, [*args[:8], "10", *args[9:]])
    assert other_seed.exit_code == 1 and "already holds a simulated company" in other_seed.output
    later = runner.invoke(cli_app, [*args[:-3], "--end", "2025-08-02T09:30", "--no-replay"])
    assert later.exit_code == 1 and "another company" in later.output
    assert "2025-08-01T00:00:00Z" in later.output  # what to pass to keep the one it holds
    future = runner.invoke(cli_app, ["demo", "--tenant", "f-demo", "--end", "2100-01-01"])
    assert future.exit_code == 1 and "future" in future.output
    short = runner.invoke(cli_app, ["demo", "--tenant", "x", "--no-replay"])
    assert short.exit_code == 2 and "--tenant" in short.output
    bad = runner.invoke(cli_app, ["demo", "--tenant", "x-demo", "--customers", "0"])
    assert bad.exit_code == 2
    with session_factory() as session:
        customer_key = session.scalars(select(Tenant.slug)).all()
        assert "x-demo" not in customer_key
    get_settings.cache_clear()
    assert bearer(key)["Authorization"].startswith("Bearer ack_")


def test_serve_demo_loads_the_demo_tenant_on_the_first_start_only(
    settings: Settings,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    from aethercrown.simulate.cli import load_demo_once

    small = SimConfig(customers=40, months=2, seed=1, end=datetime(2025, 7, 1, tzinfo=UTC))
    loaded = load_demo_once(settings, small, replay=False)
    assert loaded is not None and loaded.api_key and loaded.api_key.startswith("ack_")
    counts = stored_counts(session_factory)
    assert counts["customers"] == 40
    assert load_demo_once(settings, small, replay=False) is None
    assert load_demo_once(settings) is None  # the default config does not reload either
    assert stored_counts(session_factory) == counts


def test_load_creates_the_simulated_experiments_with_results(
    client: TestClient,
    tenant: TenantHandle,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    with write_transaction(session_factory) as session:
        result = load_demo(session, tenant.slug, SMALL)
    company = generate(SMALL)
    truth = {e["key"]: e for e in company.truth.experiments}
    assert set(result.experiments) == set(truth)
    rows = company.rows["experiment_assignments"]
    visitors = {key: sum(1 for r in rows if r["experiment"] == key) for key in truth}
    for key, loaded in result.experiments.items():
        assert loaded["created"] and loaded["users"] == visitors[key]
    listed = client.get("/api/v1/content/ab-test", headers=tenant.headers).json()["items"]
    assert len(listed) == 3 and all(e["status"] == "stopped" for e in listed)
    # Each verdict, given at the experiment's simulated end, is judged against the true effect.
    with session_factory() as session:
        verdicts = session.scalars(
            select(Decision).where(Decision.kind == "experiment_verdict")
        ).all()
    assert len(verdicts) == 3
    for verdict in verdicts:
        key = next(
            k for k, e in result.experiments.items() if e["experiment_id"] == verdict.subject_id
        )
        spec = truth[key]
        assert verdict.created_at == verdict.outcome_at == datetime.fromisoformat(spec["end"])
        assert verdict.outcome["has_real_effect"] == spec["has_real_effect"]
        assert verdict.outcome_value == float(
            verdict_is_right(spec, verdict.output["verdict"], verdict.output["winner"])
        )
    assert verdict_is_right(truth["homepage_hero_aa"], "inconclusive", None)
    assert not verdict_is_right(truth["homepage_hero_aa"], "loser", None)
    assert not verdict_is_right(truth["pricing_page_cta"], "inconclusive", None)
    for key, loaded in result.experiments.items():
        body = client.get(
            f"/api/v1/content/ab-test/{loaded['experiment_id']}/results", headers=tenant.headers
        ).json()
        primary = body["metrics"][0]
        assert sum(v["users"] for v in primary["variants"]) == visitors[key]
        assert sum(v["impressions"] for v in primary["variants"]) == visitors[key]
        if key == "homepage_hero_aa":
            assert body["verdict"] != "winner"  # an A/A test has no winner
    # A forced reload leaves the experiments as they are.
    with write_transaction(session_factory) as session:
        again = load_demo(session, tenant.slug, SMALL, force=True)
    assert all(not e["created"] for e in again.experiments.values())
    listed = client.get("/api/v1/content/ab-test", headers=tenant.headers).json()["items"]
    assert len(listed) == 3


def test_the_typed_rows_the_loader_trusts_are_what_validation_makes_of_the_text_rows() -> None:
    # The loader writes these kinds through ingest_rows(trusted=True), past the per-field
    # validation: their typed rows must be exactly what validating the text rows gives.
    from aethercrown.data.kinds import get_kind
    from aethercrown.simulate.service import TRUSTED_KINDS

    def shape(row: dict[str, object]) -> dict[str, tuple[str, str]]:
        return {k: (type(v).__name__, repr(v)) for k, v in row.items()}

    # A window ending mid-afternoon too (a partial last day).
    partial = SimConfig(
        customers=120, months=4, seed=11, end=datetime(2025, 3, 15, 13, 45, tzinfo=UTC)
    )
    for config in (SMALL, partial):
        company = generate(config)
        for kind in sorted(TRUSTED_KINDS):
            table = company.rows[kind]
            adapter = get_kind(kind).adapter
            for text, typed in zip(
                table.batches(5_000), table.batches(5_000, typed=True), strict=True
            ):
                assert [shape(r) for r in adapter.validate_python(text)] == [
                    shape(r) for r in typed
                ], kind


def test_a_fresh_sqlite_load_builds_the_activity_indexes_after_its_events(
    session_factory,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Into an empty database the activity indexes are dropped for the load and built again
    after it: the schema ends as migrated, and the active-user rollup equals the events'."""
    engine = session_factory.kw["bind"]
    if engine.dialect.name != "sqlite":
        pytest.skip("only SQLite builds the indexes after the load")
    deferred: list[bool] = []
    original = data_service.fresh_activity_load

    @contextmanager
    def spy(session, tenant_id):  # type: ignore[no-untyped-def]
        with original(session, tenant_id) as did:
            deferred.append(did)
            yield did

    monkeypatch.setattr(simulate_service, "fresh_activity_load", spy)
    schema = "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'activity_events' ORDER BY name"
    with engine.connect() as conn:
        before = conn.exec_driver_sql(schema).all()
    load_demo(session_factory, "sim-demo", SMALL, replay=False)
    assert deferred == [True]
    with engine.connect() as conn:
        assert conn.exec_driver_sql(schema).all() == before
        users = conn.exec_driver_sql(
            "SELECT count(*) FROM (SELECT DISTINCT date(occurred_at), customer_id, user_id"
            " FROM activity_events)"
        ).scalar()
        months = conn.exec_driver_sql(
            "SELECT count(*) FROM (SELECT DISTINCT date(occurred_at, 'start of month'),"
            " customer_id, user_id FROM activity_events)"
        ).scalar()
        assert (
            users
            and conn.exec_driver_sql("SELECT count(*) FROM active_user_days").scalar() == users
        )
        assert conn.exec_driver_sql("SELECT count(*) FROM active_user_months").scalar() == months

    # A second tenant's load meets stored events: the indexes stay, batches roll up as they go.
    deferred.clear()
    load_demo(session_factory, "sim-demo-2", SMALL, replay=False)
    assert deferred == [False]


def test_the_usage_loaded_by_columns_is_what_the_event_rows_store(
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    """The loader stores the usage events column by column (``load_event_columns``): the rows
    stored must be those the API-shaped ``load_events`` stores for the same events."""
    from sqlalchemy import delete

    from aethercrown.metering.service import load_events

    result = load_demo(session_factory, "sim-demo", SMALL, replay=False)
    e = UsageEvent
    stored = select(
        e.event_id, e.customer_id, e.metric, e.value, e.occurred_at, e.properties
    ).order_by(e.event_id)
    with write_transaction(session_factory) as session:
        by_columns = session.execute(stored).all()
        session.execute(delete(UsageEvent))
        for rows in generate(SMALL).rows["usage"].batches(5_000):
            load_events(session, result.tenant_id, rows)
        by_rows = session.execute(stored).all()
    assert len(by_columns) == result.counts["usage"]["inserted"] > 0
    assert by_columns == by_rows
