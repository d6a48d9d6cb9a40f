"""What every command of the ``aethercrown`` CLI shares: opening (and migrating) the database,
a unit of work per command, and failing with one line. The domains' commands import these from
here; ``aethercrown.cli`` registers the commands."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from typer.core import TyperGroup

from aethercrown.core.errors import ProblemError
from aethercrown.core.keycache import publish_invalidations
from aethercrown.db import migrate as migrations
from aethercrown.db.engine import make_engine, make_session_factory
from aethercrown.db.session import write_transaction
from aethercrown.settings import Settings, get_settings

NOT_MIGRATED = "database not migrated: run `aethercrown migrate`"


# `aethercrown --no-migrate …`, for the command being run. Read where a command opens the
# database (open_database), not acted on in the callback: that runs before the sub-command's
# own options are parsed, `--help` included.
NO_MIGRATE: ContextVar[bool] = ContextVar("no_migrate", default=False)


def open_database(
    settings: Settings | None = None,
    *,
    migrate: bool | None = None,
    verbose: bool = False,
    **engine_options: Any,
) -> Engine:
    """The engine of a command that needs the schema; every command opens the database here.

    A new or outdated database is migrated first (``migrate``: default unless ``--no-migrate``
    was given), so no command meets a missing table; otherwise, and for a database that cannot
    be reached or that a newer AetherCrown migrated, the command stops with one line saying so.
    """
    settings = settings or get_settings()
    if migrate is None:
        migrate = not NO_MIGRATE.get()
    try:
        engine = make_engine(settings.database_url, **engine_options)
    except (SQLAlchemyError, OSError) as exc:
        _unreachable(settings.database_url, exc)
    try:
        _ready_schema(
            engine,
            settings.database_url,
            migrate=migrate,
            verbose=verbose,
            migration_url=settings.migration_database_url,
        )
    except BaseException:
        engine.dispose()
        raise
    return engine


def _ready_schema(
    engine: Engine, url: str, *, migrate: bool, verbose: bool, migration_url: str | None = None
) -> None:
    try:
        status = migrations.status(engine)
    except (SQLAlchemyError, OSError) as exc:
        _unreachable(url, exc)
    if status == "unknown":
        fail(
            f"the database {_shown(url)} was migrated by a newer AetherCrown: "
            "upgrade AetherCrown to use it"
        )
    if status == "current":
        if verbose:
            typer.echo("database current: no migration to apply", err=True)
        return
    if not migrate:
        fail(NOT_MIGRATED)
    # The tables' owner migrates when the application's role may only touch rows.
    applied = migrations.upgrade(migration_url or url)
    if verbose:
        for step in applied:
            typer.echo(f"applied {step.revision}: {step.doc}", err=True)
    typer.echo(f"database migrated: {len(applied)} migration(s) applied", err=True)


def _shown(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown by its scheme only
        return url.split(":", 1)[0] + ":…"


def _unreachable(url: str, exc: BaseException) -> NoReturn:
    # The driver's own message (connection refused, no such directory…) without the SQL and
    # the traceback: this is a setting or a service to fix, not a bug.
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    fail(f"cannot open the database {_shown(url)}: {reason[0] if reason else type(exc).__name__}")


@contextmanager
def unit_of_work(settings: Settings | None = None) -> Iterator[Session]:
    """A committed-on-success session for one CLI command. A write unit (the write lock taken
    up front: BEGIN IMMEDIATE on SQLite), since commands read then write beside a running API."""
    settings = settings or get_settings()
    engine = open_database(settings)
    # Key, tenant and tier changes made here reach the API processes' key caches at once.
    publish_invalidations(engine, settings.redis_url)
    try:
        with write_transaction(make_session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()


T = TypeVar("T")


def looked_up(lookup: Callable[[Session], T]) -> T:
    """What ``lookup`` finds in a unit of work of its own (a tenant named on the command line);
    a problem it raises (no such tenant) ends the command with its detail, status 1."""
    try:
        with unit_of_work() as session:
            return lookup(session)
    except ProblemError as exc:
        fail(exc.detail or exc.title)


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def invalid_input(exc: ValidationError) -> str:
    """A pydantic error as one line a person can act on: each field and what is wrong with it."""
    parts = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        parts.append(f"{field}: {error['msg']}" if field else error["msg"])
    return "invalid input: " + "; ".join(parts)


class CommandGroup(TyperGroup):
    """The root of the ``aethercrown`` command: input the user can fix, found by a schema or a
    service (a ValidationError or a ProblemError) anywhere below, ends the command with one line
    on stderr and status 2, never a traceback."""

    # Typer vendors its own click: its Context type is private, hence Any.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ValidationError as exc:
            fail(invalid_input(exc), 2)
        except ProblemError as exc:
            fail(f"{exc.title}: {exc.detail}" if exc.detail else exc.title, 2)
