import json
from pathlib import Path

from typer.testing import CliRunner

from aethercrown.cli import app
from aethercrown.clock import utcnow
from aethercrown.db import migrate
from aethercrown.db.engine import make_engine, make_session_factory
from aethercrown.db.session import write_transaction
from tests.metering.conftest import add_customer


def test_usage_import_and_report(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'usage.db'}"
    migrate.upgrade(url)
    monkeypatch.setenv("AETHERCROWN_DATABASE_URL", url)
    monkeypatch.setenv("AETHERCROWN_DATA_DIR", str(tmp_path))
    from aethercrown.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    assert runner.invoke(app, ["tenants", "create", "Acme", "--slug", "acme-u"]).exit_code == 0
    engine = make_engine(url)
    with write_transaction(make_session_factory(engine)) as s:
        from sqlalchemy import select

        from aethercrown.core.models import Tenant

        tenant_id = s.scalar(select(Tenant.id).where(Tenant.slug == "acme-u"))
        assert tenant_id is not None
        add_customer(s, tenant_id, "c-1", "starter")
    engine.dispose()

    now = utcnow().isoformat()
    lines = [
        json.dumps(
            {
                "id": f"e{i}",
                "customer": "c-1",
                "metric": "api_calls",
                "value": 100,
                "timestamp": now,
            }
        )
        for i in range(25)
    ]
    file = tmp_path / "events.ndjson"
    file.write_text("\n".join([*lines, lines[0]]) + "\n")
    result = runner.invoke(
        app, ["usage", "import", "--tenant", "acme-u", "--batch-size", "10", str(file)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "received": 26,
        "accepted": 25,
        "duplicates": 1,
        "alerts": 0,
    }
    folded = runner.invoke(app, ["usage", "fold"])  # the import folded its events already
    assert folded.exit_code == 0 and json.loads(folded.stdout)["events"] == 0, folded.output
    report = runner.invoke(app, ["usage", "report", "--tenant", "acme-u", "--customer", "c-1"])
    assert report.exit_code == 0, report.output
    metrics = {m["metric"]: m for m in json.loads(report.stdout)["metrics"]}
    assert metrics["api_calls"]["usage"] == 2500 and metrics["api_calls"]["capacity"] == 10_000

    bad = tmp_path / "bad.ndjson"
    bad.write_text(lines[1] + "\n{not json\n" + json.dumps({"id": "x", "customer": "c-1"}) + "\n")
    failed = runner.invoke(app, ["usage", "import", "--tenant", "acme-u", str(bad)])
    assert failed.exit_code == 1
    assert "line 2: not JSON" in failed.output and "line 3: metric" in failed.output
    unknown = tmp_path / "unknown.ndjson"
    unknown.write_text(json.dumps({"id": "z", "customer": "ghost", "metric": "api_calls"}) + "\n")
    rejected = runner.invoke(app, ["usage", "import", "--tenant", "acme-u", str(unknown)])
    assert rejected.exit_code == 1 and "unknown customer 'ghost'" in rejected.output
    missing = runner.invoke(app, ["usage", "report", "--tenant", "acme-u", "--customer", "zz"])
    assert missing.exit_code == 1
    get_settings.cache_clear()
