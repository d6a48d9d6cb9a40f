"""Ad platforms' campaign-report exports into marketing spend, through the API and the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from aethercrown.cli import app as cli_app
from aethercrown.connectors.adspend import parse_day, parse_number
from aethercrown.settings import Settings, get_settings
from tests.conftest import TenantHandle

EXPORTS = Path(__file__).parent / "exports"


def _spend(client: TestClient, tenant: TenantHandle) -> dict[tuple[str, str], dict[str, Any]]:
    page = client.get("/api/v1/data/marketing", params={"limit": 500}, headers=tenant.headers)
    return {(r["channel"], r["day"]): r for r in page.json()["items"]}


def _upload(client: TestClient, tenant: TenantHandle, name: str, fmt: str) -> Any:
    return client.post(
        "/api/v1/connectors/marketing/import",
        params={"format": fmt},
        content=(EXPORTS / name).read_bytes(),
        headers={**tenant.headers, "Content-Type": "text/csv"},
    )


def test_numbers_and_dates_in_the_platforms_formats() -> None:
    assert parse_number("1,234.56") == parse_number("1.234,56") == parse_number("1 234,56")
    assert parse_number("--") == 0
    assert parse_number("$1,234") == 1234
    assert str(parse_day("1/2/2025")) == "2025-01-02"
    assert str(parse_day("Jan 2, 2025")) == "2025-01-02"
    assert str(parse_day("Thu, Jan 2, 2025")) == "2025-01-02"


def test_google_ads_meta_and_linkedin_reports_with_channel_rules(
    client: TestClient, tenant: TenantHandle
) -> None:
    rules = client.put(
        "/api/v1/connectors/marketing/channel-rules",
        json=[
            {"source": "google-ads", "pattern": "brand", "channel": "search-brand", "priority": 1},
            {"source": "any", "pattern": "retargeting", "channel": "retargeting"},
            {"source": "linkedin", "pattern": "ABM", "channel": "abm"},
        ],
        headers=tenant.headers,
    )
    assert rules.status_code == 200, rules.text
    google = _upload(client, tenant, "google_ads_campaign_report.csv", "google-ads")
    assert google.status_code == 200, google.text
    body = google.json()
    assert body["channels"] == ["google-ads", "search-brand"]
    assert [s["reason"] for s in body["skipped"]] == [
        "unreadable date 'Jan 32 2025'",
        "totals row",
        "totals row",
    ]
    spend = _spend(client, tenant)
    brand = spend[("search-brand", "2025-01-01")]
    assert (brand["spend"], brand["impressions"], brand["clicks"]) == (123_456, 12_345, 456)
    assert brand["attributed_revenue"] == 345_600 and brand["conversions"] == 12
    assert spend[("google-ads", "2025-01-02")]["spend"] == 0

    meta = _upload(client, tenant, "meta_ads_manager_export.csv", "meta")
    assert meta.status_code == 200, meta.text
    assert [s["reason"] for s in meta.json()["skipped"]] == ["no campaign name"]
    spend = _spend(client, tenant)
    assert spend[("retargeting", "2025-01-01")]["currency"] == "EUR"
    assert spend[("retargeting", "2025-01-01")]["spend"] == 41_235
    assert spend[("meta", "2025-01-01")]["spend"] == 102_000

    linkedin = _upload(client, tenant, "linkedin_campaign_performance.csv", "linkedin")
    assert linkedin.status_code == 200, linkedin.text
    spend = _spend(client, tenant)
    assert spend[("abm", "2025-01-02")]["spend"] == 125_050
    assert spend[("linkedin", "2025-01-02")]["currency"] == "EUR"
    # Importing the same report again changes nothing.
    again = _upload(client, tenant, "google_ads_campaign_report.csv", "google-ads").json()
    assert again["inserted"] == 0 and again["updated"] == 0


def test_bad_reports_are_4xx_and_store_nothing(
    client: TestClient, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    not_a_report = client.post(
        "/api/v1/connectors/marketing/import",
        params={"format": "meta"},
        content=b"a,b,c\n1,2,3\n",
        headers={**tenant.headers, "Content-Type": "text/csv"},
    )
    assert not_a_report.status_code == 422
    assert not_a_report.headers["content-type"] == "application/problem+json"
    unknown = _upload(client, tenant, "meta_ads_manager_export.csv", "tiktok")
    assert unknown.status_code == 422
    duplicate_rules = client.put(
        "/api/v1/connectors/marketing/channel-rules",
        json=[{"pattern": "x", "channel": "a"}, {"pattern": "X", "channel": "b"}],
        headers=tenant.headers,
    )
    assert duplicate_rules.status_code == 422
    bool_priority = client.put(
        "/api/v1/connectors/marketing/channel-rules",
        json=[{"pattern": "x", "channel": "a", "priority": False}],
        headers=tenant.headers,
    )
    assert bool_priority.status_code == 422
    assert (
        client.get("/api/v1/connectors/marketing/channel-rules", headers=tenant.headers).json()
        == []
    )
    assert _spend(client, tenant) == {}
    assert _upload(client, other_tenant, "meta_ads_manager_export.csv", "meta").status_code == 200
    assert _spend(client, tenant) == {}


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("AETHERCROWN_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("AETHERCROWN_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_cli_imports_an_ad_report(cli: CliRunner, client: TestClient, tenant: TenantHandle) -> None:
    path = EXPORTS / "linkedin_campaign_performance.csv"
    result = cli.invoke(
        cli_app, ["import", "marketing", "--tenant", "acme", "--format", "linkedin", str(path)]
    )
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout.strip().splitlines()[-1])
    # Without rules both LinkedIn campaigns of 2 January are channel "linkedin", one in USD and
    # one in EUR: the second cannot be added to the first, and is reported.
    assert report["channel_days"] == 2
    assert "currency EUR differs from USD" in report["skipped"][0]["reason"]
    assert ("linkedin", "2025-01-01") in _spend(client, tenant)
    wrong = cli.invoke(
        cli_app, ["import", "customers", "--tenant", "acme", "--format", "meta", str(path)]
    )
    assert wrong.exit_code != 0
