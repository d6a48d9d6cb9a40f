"""Apply and inspect Alembic migrations programmatically (no alembic.ini needed)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import Script, ScriptDirectory
from sqlalchemy import Connection, Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@dataclass(frozen=True)
class Applied:
    """One migration an upgrade applied."""

    revision: str
    doc: str


def upgrade(url: str, revision: str = "heads") -> list[Applied]:
    """Apply pending migrations; returns those applied, in order (none: it was current)."""
    applied: list[Applied] = []

    def collect(*, step: MigrationInfo, **_: Any) -> None:
        script = step.up_revision
        doc = script.doc if isinstance(script, Script) else ""
        applied.append(Applied(", ".join(step.up_revision_ids), doc))

    config = alembic_config(url)
    config.attributes["on_version_apply"] = collect
    command.upgrade(config, revision)
    return applied


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


@cache
def expected_heads() -> frozenset[str]:
    """The heads of the migration scripts shipped with this code (one per domain branch).
    Cached: reading them parses every script (tens of ms), and they do not change while the
    process runs; the health check asks on every call."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def applied_heads(engine: Engine | Connection) -> set[str]:
    """The revisions the database is at; on a connection as given (the health check reads them
    in its own unit rather than opening a second connection)."""
    if isinstance(engine, Connection):
        return set(MigrationContext.configure(engine).get_current_heads())
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


@cache
def known_revisions() -> frozenset[str]:
    """Every revision the shipped migration scripts know."""
    scripts = ScriptDirectory.from_config(alembic_config())
    return frozenset(script.revision for script in scripts.walk_revisions())


def is_current(engine: Engine) -> bool:
    return applied_heads(engine) == expected_heads()


def status(engine: Engine) -> Literal["current", "pending", "unknown"]:
    """``current``; ``pending`` (new database, or migrations to apply); ``unknown``: the database
    holds revisions these scripts do not know, i.e. a newer AetherCrown migrated it."""
    applied = applied_heads(engine)
    if applied == expected_heads():
        return "current"
    return "unknown" if applied - known_revisions() else "pending"
