"""``aethercrown content generate blog`` prints the post and its SEO table, and stores it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from typer.testing import CliRunner

from aethercrown.cli import app
from aethercrown.content import service
from aethercrown.content.schemas import ProfileIn
from aethercrown.core.crypto import secret_box
from aethercrown.db import migrate
from aethercrown.db.engine import make_engine, make_session_factory
from aethercrown.db.session import write_transaction
from aethercrown.settings import get_settings
from aethercrown.tenants.service import resolve_tenant_ref
from tests.content.conftest import PROFILE


def test_generate_blog_from_the_command_line(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'content.db'}"
    migrate.upgrade(url)
    monkeypatch.setenv("AETHERCROWN_DATABASE_URL", url)
    monkeypatch.setenv("AETHERCROWN_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    runner = CliRunner()
    assert runner.invoke(app, ["tenants", "create", "Acme", "--slug", "acme-c"]).exit_code == 0
    args = [
        "content",
        "generate",
        "blog",
        "--topic",
        "reducing involuntary churn",
        "--keyphrase",
        "involuntary churn",
    ]

    missing = runner.invoke(app, [*args, "--tenant", "acme-c"])
    assert missing.exit_code == 1 and "no content profile" in missing.output

    engine = make_engine(url)
    with write_transaction(make_session_factory(engine)) as session:
        tenant_id = resolve_tenant_ref(session, "acme-c").id
        service.save_profile(
            session, tenant_id, ProfileIn.model_validate(PROFILE), secret_box(get_settings())
        )
    result = runner.invoke(app, [*args, "--tenant", "acme-c", "--words", "900"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("# Involuntary churn")
    for label in (
        "Keyphrase in SEO title",
        "Keyphrase density",
        "Flesch reading ease",
        "Passive voice",
        "written by: offline; stored as",
    ):
        assert label in result.output, label

    as_json = runner.invoke(app, [*args, "--tenant", "acme-c", "--output", "json", "--seed", "2"])
    stored = json.loads(as_json.output)
    assert stored["id"] and stored["analysis"]["word_count"] >= 800
    with write_transaction(make_session_factory(engine)) as session:
        assert service.get_item(session, tenant_id, uuid.UUID(stored["id"]))
    engine.dispose()

    profile_file = tmp_path / "profile.json"
    profile_file.write_text(json.dumps(PROFILE))
    offline = runner.invoke(app, [*args, "--profile", str(profile_file), "--output", "html"])
    assert offline.exit_code == 0 and "<h2>" in offline.output
    bad = runner.invoke(app, [*args, "--profile", str(profile_file), "--words", "50"])
    assert bad.exit_code == 2
    get_settings.cache_clear()
