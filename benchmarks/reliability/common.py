"""What every part of the reliability suite shares: a row of the table, the databases it runs
on, and real ``aethercrown serve`` processes it can start, SIGKILL and restart."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from aethercrown.db import migrate as db_migrate
from aethercrown.db.tenant_scope import APP_ROLE, grant_app_role
from aethercrown.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# A fixed operator key for every server the suite starts (the env var wants >= 32 characters).
ADMIN_KEY = "aca_reliability-suite-operator-key-0123456789abcdef"
SECRET_KEY = "reliability-suite-secret-key-0123456789abcdef"


@dataclass
class Row:
    """One line of the table: which part, on which backend, what it did, how many failures it
    found (anything above 0 fails the run) and its figure."""

    part: str
    backend: str
    done: str
    failures: int
    figure: str
    skipped: bool = False


@dataclass
class Mode:
    quick: bool
    seed: int
    deadline: float  # time.monotonic() by which the whole run should be over
    redis_url: str | None = None

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


def format_table(rows: list[Row]) -> str:
    """The rows as one markdown table (pipes in cells escaped)."""
    header = ["part", "backend", "what was done", "failures", "figure"]

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
    ]
    for row in rows:
        failures = "skipped" if row.skipped else str(row.failures)
        values = [row.part, row.backend, row.done, failures, row.figure]
        lines.append("| " + " | ".join(cell(v) for v in values) + " |")
    return "\n".join(lines)


def log(message: str) -> None:
    """Progress on stderr, so stdout carries only the table."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Database:
    """A fresh database of one backend for one part: a new SQLite file, or the given
    PostgreSQL database with its ``public`` schema dropped and rebuilt."""

    backend: str
    url: str  # the owner's: migrations and the checks' own reads
    # What the servers connect as: on PostgreSQL a login of the row-level-security role
    # (docs/operations.md), so every part runs with the database's tenant wall up.
    app_url: str | None = None

    def engine(self) -> Engine:
        return create_engine(self.url)


# The login the servers use on PostgreSQL: a member of the row-level-security role.
APP_LOGIN = "aethercrown_reliability_app"


def create_database_if_absent(url: str) -> None:
    """A scratch PostgreSQL database named by ``url``, created (through the server's
    ``postgres`` database) when the server has none of that name: CI names one and runs."""
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            found = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": target.database},
            ).first()
            if found is None:
                conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        admin.dispose()


@contextmanager
def fresh_database(backend: str, postgres_url: str | None) -> Iterator[Database]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="aethercrown-reliability-") as tmp:
            yield Database("sqlite", f"sqlite:///{Path(tmp) / 'reliability.db'}")
        return
    assert postgres_url is not None
    url = Settings(database_url=postgres_url).database_url
    create_database_if_absent(url)
    engine = create_engine(make_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
        grant_app_role(conn)  # as migration 0012 would; its login must exist before servers
        conn.execute(
            text(
                "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
                f"'{APP_LOGIN}') THEN CREATE ROLE {APP_LOGIN} LOGIN IN ROLE {APP_ROLE}; "
                "END IF; END $$"
            )
        )
    engine.dispose()
    app_url = make_url(url).set(username=APP_LOGIN, password=None)
    yield Database("postgresql", url, app_url.render_as_string(hide_password=False))


def server_env(db: Database, data_dir: Path, mode: Mode, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AETHERCROWN_") or key == "AETHERCROWN_CLOCK_SHIFT_SECONDS"
    }
    env.update(
        {
            "AETHERCROWN_DATABASE_URL": db.app_url or db.url,
            "AETHERCROWN_MIGRATION_DATABASE_URL": db.url,
            "AETHERCROWN_DATA_DIR": str(data_dir),
            "AETHERCROWN_SECRET_KEY": SECRET_KEY,
            "AETHERCROWN_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
            "AETHERCROWN_RUN_AUTOMATION": "false",
            "AETHERCROWN_LOG_LEVEL": "WARNING",
        }
    )
    if mode.redis_url:
        env["AETHERCROWN_REDIS_URL"] = mode.redis_url
    env.update(extra)
    return env


def migrate(db: Database, data_dir: Path, mode: Mode) -> None:
    """Apply the migrations once, before several processes start on the database (in this
    process: a process of its own costs a start, tens of seconds on a busy machine)."""
    db_migrate.upgrade(db.url)


@dataclass
class Server:
    """One ``aethercrown serve`` process (one uvicorn worker, so the process is the server)
    that keeps its port across restarts: clients just retry until it answers again."""

    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aethercrown",
                "serve",
                "--no-migrate",
                "--port",
                str(self.port),
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=None if os.environ.get("RELIABILITY_SERVER_LOGS") else subprocess.DEVNULL,
            start_new_session=True,
        )
        self.starts += 1

    def wait_ready(self, timeout: float = 180.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.base}/livez", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no flush, no rollback."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


@contextmanager
def running_server(env: dict[str, str]) -> Iterator[Server]:
    server = Server(env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def admin_headers(**extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_KEY}", **extra}


@dataclass
class Tenant:
    id: str
    slug: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def create_tenant(client: httpx.Client, slug: str, tier: str = "enterprise") -> Tenant:
    response = client.post(
        "/api/v1/tenants/create",
        json={"name": slug.title(), "slug": slug, "tier": tier},
        headers=admin_headers(),
    )
    response.raise_for_status()
    body = response.json()
    return Tenant(id=body["id"], slug=slug, key=body["api_key"])


def unique_token(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}"


def expect(response: httpx.Response, *codes: int) -> Any:
    """The JSON body of a setup call that must succeed (the part cannot run otherwise)."""
    if response.status_code not in codes:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:300]}"
        )
    return response.json() if response.content else None
