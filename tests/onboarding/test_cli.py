"""``aethercrown onboarding create|status|report``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aethercrown.cli import app
from aethercrown.db import migrate
from tests.onboarding.conftest import request_body
from tests.webhooks.test_service import Receiver


def test_create_status_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    url = f"sqlite:///{tmp_path / 'onboarding.db'}"
    migrate.upgrade(url)
    monkeypatch.setenv("AETHERCROWN_DATABASE_URL", url)
    monkeypatch.setenv("AETHERCROWN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AETHERCROWN_ONBOARDING_ALLOW_LOOPBACK_WEBHOOKS", "true")
    from aethercrown.settings import get_settings

    get_settings.cache_clear()
    try:
        runner = CliRunner()
        assert runner.invoke(app, ["tenants", "create", "Acme", "--slug", "acme-o"]).exit_code == 0
        file = tmp_path / "request.json"
        file.write_text(json.dumps(request_body(receiver.url)))
        created = runner.invoke(app, ["onboarding", "create", "--tenant", "acme-o", str(file)])
        assert created.exit_code == 0, created.output
        body = json.loads(created.stdout)
        assert body["portal_api_key"].startswith("ack_")
        assert body["current_step"] == "initial_health_check"

        status = runner.invoke(app, ["onboarding", "status", "--tenant", "acme-o", body["id"]])
        assert status.exit_code == 0 and json.loads(status.stdout)["status"] == "blocked"
        report = runner.invoke(app, ["onboarding", "report", "--tenant", "acme-o", body["id"]])
        assert report.exit_code == 0
        assert json.loads(report.stdout)["provisioned"]["account_creation"]["customer"] == "big-co"

        file.write_text(json.dumps(request_body(receiver.url, sla_tier="gold", external_id="x")))
        bad = runner.invoke(app, ["onboarding", "create", "--tenant", "acme-o", str(file)])
        assert bad.exit_code == 2 and "sla_tier" in bad.output
        missing = runner.invoke(app, ["onboarding", "status", "--tenant", "acme-o", "nope"])
        assert missing.exit_code == 1 and "not found" in missing.output
    finally:
        get_settings.cache_clear()
