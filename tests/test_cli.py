"""The CLI end to end, including `serve` in a real subprocess and a restart."""

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import typer.main
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from aethercrown.cli import app, startup_banner
from aethercrown.core.commandline import NOT_MIGRATED
from aethercrown.db import migrate
from aethercrown.settings import get_settings
from tests.conftest import bearer
from tests.servers import free_port, read_banner, running_server


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: no AetherCrown settings but the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AETHERCROWN_")}
    return {**env, "AETHERCROWN_RUN_AUTOMATION": "false", **extra}


@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A SQLite URL, not created yet, that in-process CLI invocations use."""
    url = f"sqlite:///{tmp_path / 'new' / 'cli.db'}"
    monkeypatch.setenv("AETHERCROWN_DATABASE_URL", url)
    monkeypatch.setenv("AETHERCROWN_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_serve_prints_where_to_go_and_a_one_time_admin_key_and_restart_keeps_everything(
    tmp_path: Path,
) -> None:
    env = {
        "AETHERCROWN_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "AETHERCROWN_DATA_DIR": str(tmp_path / "data"),
    }
    with running_server(env) as (base, proc):
        banner = read_banner(proc)
        assert banner["console"] == f"{base}/console"
        assert banner["API docs"] == f"{base}/docs"
        admin = banner["operator admin key"]
        assert admin.startswith("aca_")
        created = httpx.post(
            f"{base}/api/v1/tenants/create",
            json={"name": "Keep", "slug": "keep"},
            headers=bearer(admin),
        ).json()
    # The restart with two workers, read straight from the process (no waiting on /livez
    # first): when the banner appears the server answers, and it appears once.
    proc = subprocess.Popen(
        [sys.executable, "-m", "aethercrown", "serve", "--workers", "2"],
        env=_clean_env(**env, AETHERCROWN_PORT=str(free_port())),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    try:
        again = read_banner(proc)
        base = again["console"].removesuffix("/console")
        login = httpx.get(again["console"], follow_redirects=False)
        assert login.status_code == 303 and "/console/login" in login.headers["location"]
        # No new admin key is printed the second time; the old one and the tenant survive.
        assert "operator admin key" not in again and "first start" in again["keys"]
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
    finally:
        proc.terminate()
        rest, _ = proc.communicate(timeout=30)
        watchdog.cancel()
    assert rest == ""


def test_serve_on_a_busy_port_says_so_before_touching_the_database(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "aethercrown", "serve", "--port", str(port)],
            env=_clean_env(AETHERCROWN_DATABASE_URL=f"sqlite:///{tmp_path / 'b.db'}"),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"cannot listen on 127.0.0.1:{port} (Address already in use): choose another with --port"
    ]
    assert not (tmp_path / "b.db").exists()


def test_startup_banner_labels_each_key_once() -> None:
    banner = startup_banner(
        "http://127.0.0.1:8000", admin_key="aca_x", admin_key_given=False, demo_key="ack_y"
    )
    lines = banner.splitlines()
    assert lines[1] == "AetherCrown is running (Ctrl+C stops it)."
    assert "  console:            http://127.0.0.1:8000/console" in lines
    assert [line.split()[:4] for line in lines if "_x" in line or "_y" in line] == [
        ["operator", "admin", "key:", "aca_x"],
        ["demo", "tenant", "key:", "ack_y"],
    ]
    given = startup_banner("http://h:1", admin_key=None, admin_key_given=True, demo_key=None)
    assert "AETHERCROWN_BOOTSTRAP_ADMIN_KEY" in given and "aca_" not in given


def test_migrate_in_a_new_directory_creates_the_database_and_says_what_it_applied(
    tmp_path: Path,
) -> None:
    """The default database of a fresh clone, .aethercrown/aethercrown.db, in a directory that
    does not exist yet."""
    run = [sys.executable, "-m", "aethercrown", "migrate"]
    first = subprocess.run(run, cwd=tmp_path, env=_clean_env(), capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / ".aethercrown" / "aethercrown.db").is_file()
    lines = first.stderr.strip().splitlines()
    assert lines[0] == "applied 0001_foundation: foundation: tenants, tiers, keys, ledger"
    assert lines[-1] == f"database migrated: {len(lines) - 1} migration(s) applied"
    again = subprocess.run(run, cwd=tmp_path, env=_clean_env(), capture_output=True, text=True)
    assert again.returncode == 0
    assert again.stderr.strip() == "database current: no migration to apply"


# One invocation of every command; None for those that never open the database. A new command
# must be added here: it is then checked to go through core.commandline.open_database.
COMMANDS: dict[str, list[str] | None] = {
    "migrate": None,  # migrates by definition
    "serve": None,  # tested in a subprocess above
    "import": ["import", "{file}", "--tenant", "ttt", "--kind", "customers"],
    "export": ["export", "--tenant", "ttt", "--kind", "customers"],
    "demo": ["demo", "--tenant", "ttt"],
    "tenants create": ["tenants", "create", "T", "--slug", "ttt"],
    "tenants list": ["tenants", "list"],
    "tenants scale": ["tenants", "scale", "ttt", "--tier", "starter"],
    "tenants recount-rows": ["tenants", "recount-rows", "ttt"],
    "keys create": ["keys", "create", "--scope", "admin"],
    "keys list": ["keys", "list"],
    "keys rotate": ["keys", "rotate", "00000000-0000-0000-0000-000000000000"],
    "experiments analyze": None,  # reads a file
    "experiments list": ["experiments", "list", "--tenant", "ttt"],
    "budget optimize": ["budget", "optimize", "--tenant", "ttt", "--budget", "100"],
    "automate": ["automate", "--once"],
    "automate runs": ["automate", "runs"],
    "churn train": ["churn", "train", "--tenant", "ttt"],
    "churn score": ["churn", "score", "--tenant", "ttt"],
    "churn evaluate": None,  # reads a file
    "analytics revenue": ["analytics", "revenue", "--tenant", "ttt"],
    "analytics forecast": ["analytics", "forecast", "--tenant", "ttt"],
    "analytics refresh": ["analytics", "refresh", "--tenant", "ttt"],
    "analytics report": ["analytics", "report", "--tenant", "ttt"],
    "usage import": ["usage", "import", "{file}", "--tenant", "ttt"],
    "usage fold": ["usage", "fold"],
    "usage report": ["usage", "report", "--tenant", "ttt", "--customer", "c"],
    "connectors stripe connect": [
        "connectors",
        "stripe",
        "connect",
        "--tenant",
        "ttt",
        "--webhook-secret",
        "whsec_test",
    ],
    "connectors stripe backfill": ["connectors", "stripe", "backfill", "--tenant", "ttt"],
    "connectors stripe map": ["connectors", "stripe", "map", "--tenant", "ttt"],
    "connectors stripe retry": ["connectors", "stripe", "retry", "evt_x", "--tenant", "ttt"],
    "connectors stripe discard": ["connectors", "stripe", "discard", "evt_x", "--tenant", "ttt"],
    "alerts add": ["alerts", "add", "ops", "--tenant", "ttt", "--email", "ops@t.example"],
    "alerts list": ["alerts", "list", "--tenant", "ttt"],
    "alerts test": ["alerts", "test", "00000000-0000-0000-0000-000000000000", "--tenant", "ttt"],
    "alerts remove": [
        "alerts",
        "remove",
        "00000000-0000-0000-0000-000000000000",
        "--tenant",
        "ttt",
    ],
    "onboarding create": None,  # validates its request file before it opens the database
    "onboarding status": [
        "onboarding",
        "status",
        "00000000-0000-0000-0000-000000000000",
        "--tenant",
        "ttt",
    ],
    "onboarding report": [
        "onboarding",
        "report",
        "00000000-0000-0000-0000-000000000000",
        "--tenant",
        "ttt",
    ],
    "onboarding first-response": [
        "onboarding",
        "first-response",
        "no-such-ticket",
        "--tenant",
        "ttt",
    ],
    "content generate blog": [
        "content",
        "generate",
        "blog",
        "--topic",
        "t",
        "--keyphrase",
        "k",
        "--tenant",
        "ttt",
    ],
    "content campaign-emails": ["content", "campaign-emails", "churn", "--tenant", "ttt"],
}


def _command_names() -> set[str]:
    names: set[str] = set()

    def walk(command: object, path: list[str]) -> None:
        children = getattr(command, "commands", None)
        if children and path and getattr(command, "invoke_without_command", False):
            names.add(" ".join(path))
        if not children:
            names.add(" ".join(path))
            return
        for name, child in children.items():
            walk(child, [*path, name])

    walk(typer.main.get_command(app), [])
    return names


def test_every_command_that_needs_the_schema_says_what_to_run_with_no_migrate(
    cli_database: str, tmp_path: Path
) -> None:
    assert set(COMMANDS) == _command_names()
    data = tmp_path / "rows.ndjson"
    data.write_text("{}\n")
    runner = CliRunner()
    for name, args in COMMANDS.items():
        if args is None:
            continue
        argv = ["--no-migrate", *(str(data) if a == "{file}" else a for a in args)]
        result = runner.invoke(app, argv)
        assert (result.exit_code, result.stderr) == (1, NOT_MIGRATED + "\n"), (name, result)
    assert not migrate.is_current(create_engine(cli_database))


def test_a_command_on_a_new_database_migrates_it_first(cli_database: str) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["demo", "--tenant", "fresh", "--customers", "20", "--months", "2", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("database migrated: ")
    assert result.stdout.strip().startswith("ack_")
    listed = runner.invoke(app, ["tenants", "list"])
    assert listed.exit_code == 0 and '"slug":"fresh"' in listed.stdout
    assert listed.stderr == ""  # already current: nothing to say


def test_a_database_the_command_cannot_use_is_one_line_not_a_traceback(
    cli_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    engine = create_engine(cli_database)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('9999_future')"))
    engine.dispose()
    newer = runner.invoke(app, ["tenants", "list"])
    assert newer.exit_code == 1
    assert newer.stderr.splitlines() == [
        f"the database {cli_database} was migrated by a newer AetherCrown: "
        "upgrade AetherCrown to use it"
    ]
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("AETHERCROWN_DATABASE_URL", f"sqlite:///{tmp_path / 'a-file' / 'x.db'}")
    get_settings.cache_clear()
    unreachable = runner.invoke(app, ["tenants", "list"])
    assert unreachable.exit_code == 1 and len(unreachable.stderr.splitlines()) == 1
    assert unreachable.stderr.startswith("cannot open the database sqlite:///")


def test_keys_create_prints_the_key_alone(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    migrate.upgrade(url)
    monkeypatch.setenv("AETHERCROWN_DATABASE_URL", url)
    monkeypatch.setenv("AETHERCROWN_DATA_DIR", str(tmp_path))
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


def test_input_the_user_can_fix_is_one_line_not_a_traceback(cli_database: str) -> None:
    runner = CliRunner()
    bad_slug = runner.invoke(app, ["tenants", "create", "Acme", "--slug", "Not A Slug"])
    assert bad_slug.exit_code == 2, bad_slug.output
    assert bad_slug.exception is None or isinstance(bad_slug.exception, SystemExit)
    (line,) = bad_slug.stderr.splitlines()
    assert line.startswith("invalid input: slug: ")
    assert runner.invoke(app, ["tenants", "create", "Acme", "--slug", "acme"]).exit_code == 0
    taken = runner.invoke(app, ["tenants", "create", "Acme 2", "--slug", "acme"])
    assert taken.exit_code == 2 and len(taken.stderr.splitlines()) == 1, taken.output
    unknown_tier = runner.invoke(app, ["tenants", "scale", "acme", "--tier", "platinum"])
    assert unknown_tier.exit_code == 2 and len(unknown_tier.stderr.splitlines()) == 1
