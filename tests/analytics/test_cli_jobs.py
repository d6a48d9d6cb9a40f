"""The analytics CLI and the snapshot job against the hand-computed company."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from aethercrown.analytics.jobs import JOBS
from aethercrown.analytics.models import AnalyticsSnapshot
from aethercrown.cli import app
from aethercrown.clock import utcnow
from aethercrown.core.jobs import all_jobs
from aethercrown.db.session import write_transaction
from aethercrown.settings import Settings
from tests.conftest import TenantHandle


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AETHERCROWN_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("AETHERCROWN_DATA_DIR", str(settings.data_dir))
    from aethercrown.settings import get_settings

    if hasattr(get_settings, "cache_clear"):
        get_settings.cache_clear()


def test_cli_revenue_forecast_and_report(
    cli_env: None, tenant: TenantHandle, company: dict[str, uuid.UUID], tmp_path: Path
) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["analytics", "revenue", "--tenant", "acme", "--start", "2026-03", "--end", "2026-04"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["month"], r["mrr"], r["churn"]) for r in rows] == [
        ("2026-03", 27900, 5220),
        ("2026-04", 41900, 0),
    ]
    bad = runner.invoke(
        app, ["analytics", "revenue", "--tenant", "acme", "--start", "2026-05", "--end", "2026-01"]
    )
    assert bad.exit_code == 2
    assert runner.invoke(app, ["analytics", "revenue", "--tenant", "nope"]).exit_code == 2
    forecast = runner.invoke(app, ["analytics", "forecast", "--tenant", "acme"])
    assert forecast.exit_code == 0 and "backtest" in json.loads(forecast.stdout)["mrr"]
    pdf = tmp_path / "report.pdf"
    made = runner.invoke(
        app,
        [
            "analytics",
            "report",
            "--tenant",
            "acme",
            "--month",
            "2026-03",
            "--format",
            "pdf",
            "--out",
            str(pdf),
        ],
    )
    assert made.exit_code == 0, made.output
    assert pdf.read_bytes().startswith(b"%PDF")


def test_snapshot_job_is_registered_and_refreshes(
    session_factory,
    tenant: TenantHandle,
    company: dict[str, uuid.UUID],  # type: ignore[no-untyped-def]
) -> None:
    assert "analytics_snapshots" in {job.name for job in all_jobs()}
    with write_transaction(session_factory) as session:
        summary = JOBS[0].run(session, tenant.uid, utcnow())
    assert summary == {"views_refreshed": 1}
    with write_transaction(session_factory) as session:
        snapshot = session.scalars(select(AnalyticsSnapshot)).one()
        assert snapshot.view == "revenue:*:*:*" and snapshot.payload["currency"] == "USD"
        june = next(r for r in snapshot.payload["series"] if r["month"] == "2026-06")
        assert june["mrr"] == 46733
