"""The CLI end to end, including `serve` in a real subprocess and a restart."""

from pathlib import Path

import httpx
from typer.testing import CliRunner

from aethercrown.cli import app
from aethercrown.db import migrate
from tests.conftest import bearer
from tests.servers import running_server


def test_serve_prints_a_one_time_admin_key_and_restart_keeps_everything(tmp_path: Path) -> None:
    env = {
        "AETHERCROWN_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "AETHERCROWN_DATA_DIR": str(tmp_path / "data"),
    }
    with running_server(env) as (base, proc):
        assert proc.stdout is not None
        admin = proc.stdout.readline().strip()
        assert admin.startswith("aca_")
        created = httpx.post(
            f"{base}/api/v1/tenants/create",
            json={"name": "Keep", "slug": "keep"},
            headers=bearer(admin),
        ).json()
    with running_server(env) as (base, proc):
        # No new admin key is printed the second time; the old one and the tenant survive.
        assert (
            httpx.get(f"{base}/api/v1/tenants/{created['id']}", headers=bearer(admin)).status_code
            == 200
        )
        assert (
            httpx.get(
                f"{base}/api/v1/tenants/{created['id']}", headers=bearer(created["api_key"])
            ).json()["slug"]
            == "keep"
        )
    assert proc.stdout is not None and proc.stdout.read() == ""


def test_keys_create_prints_the_key_alone(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    migrate.upgrade(url)
    monkeypatch.setenv("AETHERCROWN_DATABASE_URL", url)
    monkeypatch.setenv("AETHERCROWN_DATA_DIR", str(tmp_path))
    from aethercrown.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    created = runner.invoke(app, ["tenants", "create", "Acme", "--slug", "acme-cli"])
    assert created.exit_code == 0, created.output
    result = runner.invoke(app, ["keys", "create", "--tenant", "acme-cli", "--scope", "investor"])
    assert result.exit_code == 0
    assert result.stdout.strip().startswith("ack_") and len(result.stdout.strip().splitlines()) == 1
    bad = runner.invoke(app, ["keys", "create", "--tenant", "acme-cli", "--scope", "root"])
    assert bad.exit_code == 2
    missing = runner.invoke(app, ["keys", "create", "--tenant", "nobody", "--scope", "investor"])
    assert missing.exit_code != 0
    get_settings.cache_clear()
