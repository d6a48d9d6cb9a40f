"""``aethercrown alerts``: add, list, test and remove channels from the command line, the test
send reaching a real SMTP server."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from aethercrown.cli import app as cli_app
from aethercrown.settings import Settings, get_settings
from tests.alerts.conftest import Mailbox, SlackReceiver
from tests.conftest import TenantHandle


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("AETHERCROWN_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("AETHERCROWN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("AETHERCROWN_SMTP_HOST", settings.smtp_host)
    monkeypatch.setenv("AETHERCROWN_SMTP_PORT", str(settings.smtp_port))
    monkeypatch.setenv("AETHERCROWN_ALERTS_ALLOW_LOOPBACK_WEBHOOKS", "true")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_channels_from_the_command_line(
    cli: CliRunner,
    client: TestClient,
    tenant: TenantHandle,
    mailbox: Mailbox,
    slack: SlackReceiver,
) -> None:
    added = cli.invoke(
        cli_app,
        ["alerts", "add", "finance", "--tenant", "acme", "--email", "cfo@acme.example",
         "--event", "budget.*", "--min-severity", "warning"],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    channel = orjson.loads(added.stdout)
    assert channel["kind"] == "email" and channel["event_types"] == ["budget.*"]
    room = cli.invoke(
        cli_app, ["alerts", "add", "room", "--tenant", "acme", "--slack-url", slack.url]
    )
    assert room.exit_code == 0 and "secret" not in room.stdout
    listed = [orjson.loads(line) for line in cli.invoke(
        cli_app, ["alerts", "list", "--tenant", "acme"]
    ).stdout.splitlines()]  # fmt: skip
    assert [c["name"] for c in listed] == ["finance", "room"]
    sent = cli.invoke(cli_app, ["alerts", "test", channel["id"], "--tenant", "acme"])
    assert sent.exit_code == 0, sent.output
    assert orjson.loads(sent.stdout)["delivered"] is True
    [(to, message)] = mailbox.messages
    assert to == ["cfo@acme.example"] and "Test message" in message["Subject"]
    mailbox.refuse.add("cfo@acme.example")
    refused = cli.invoke(cli_app, ["alerts", "test", channel["id"], "--tenant", "acme"])
    assert refused.exit_code == 1 and "550" in orjson.loads(refused.stdout)["error"]
    bad = cli.invoke(cli_app, ["alerts", "add", "x", "--tenant", "acme", "--email", "nope"])
    assert bad.exit_code == 2 and bad.stderr.startswith("invalid input: recipients.0")
    private = cli.invoke(
        cli_app, ["alerts", "add", "x", "--tenant", "acme", "--slack-url", "https://10.0.0.1/h"]
    )
    assert private.exit_code == 2 and "private" in private.stderr
    removed = cli.invoke(cli_app, ["alerts", "remove", channel["id"], "--tenant", "acme"])
    assert removed.exit_code == 0
    gone = cli.invoke(cli_app, ["alerts", "remove", channel["id"], "--tenant", "acme"])
    assert gone.exit_code == 2 and "not found" in gone.stderr
    stranger = cli.invoke(cli_app, ["alerts", "list", "--tenant", "ghost"])
    assert stranger.exit_code == 1 and "ghost" in stranger.stderr
    assert client.get("/api/v1/alert-channels", headers=tenant.headers).json()[0]["name"] == "room"
