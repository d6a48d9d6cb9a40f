"""Row-level security's side of a unit of work: which tenant's rows the database shows it.

On PostgreSQL every table with a ``tenant_id`` column has row-level security enabled and forced
(migration 0013_row_level_security): a row is visible, and may be written, only when its
``tenant_id`` equals the transaction's ``aethercrown.tenant_id`` setting, or when the
transaction's ``aethercrown.all_tenants`` setting is ``on``. With neither set, a query sees no
tenant row at all. This is the second wall behind ``core.tenancy.TenantRepository``'s filter: a
query that forgets its filter still sees only the tenant the unit of work is scoped to.

- ``scope_to_tenant``: called by ``TenantRepository`` for the tenant it serves (the request's
  authenticated tenant), so the unit of work's transaction shows that tenant only.
- ``across_tenants`` (a block) and ``scope_to_all_tenants`` (the rest of the unit of work): the
  one deliberate way to cross tenants, for code paths that are meant to (looking an API key up by
  its hash before its tenant is known, the automation runner and the usage folder iterating
  tenants, the operator's installation-wide reads through a repository built with no tenant).
  Grep for them to audit every such path.

Both are transaction-local (``set_config(..., true)``, i.e. ``SET LOCAL``): applied when a
transaction begins and gone when it ends, so nothing leaks to the next user of a pooled
connection. On SQLite (no row-level security) they only record the scope.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, event, text
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

TENANT_SETTING = "aethercrown.tenant_id"
ALL_TENANTS_SETTING = "aethercrown.all_tenants"
ALL_TENANTS = "all"

_SCOPE = "aethercrown_tenant_scope"  # session.info: a tenant id as text, or ALL_TENANTS
_APPLIED = "aethercrown_tenant_scope_applied"  # session.info: the scope the transaction has
# session.info: where the unit of work's default scope comes from (a request's authenticated
# tenant, known only once its dependencies have run); asked each time a statement is about to
# run until the unit has a scope of its own.
_DEFAULT = "aethercrown_tenant_scope_default"

_SET_SCOPE = text(
    f"SELECT set_config('{TENANT_SETTING}', :tenant, true), "
    f"set_config('{ALL_TENANTS_SETTING}', :all_tenants, true)"
)


def _is_postgresql(bind: Any) -> bool:
    return bool(getattr(bind, "dialect", None) and bind.dialect.name == "postgresql")


def _set(connection: Connection, scope: str | None) -> None:
    everyone = scope == ALL_TENANTS
    tenant = "" if everyone or scope is None else scope
    connection.execute(_SET_SCOPE, {"tenant": tenant, "all_tenants": "on" if everyone else "off"})


def driver_scope_statement(scope: str | None) -> tuple[str, dict[str, str]]:
    """``_set``'s statement and parameters for a PostgreSQL driver (psycopg) connection used
    without a Core ``Connection`` (``db.prepared.ReadUnit``): run first in its transaction."""
    everyone = scope == ALL_TENANTS
    tenant = "" if everyone or scope is None else scope
    sql = (
        f"SELECT set_config('{TENANT_SETTING}', %(tenant)s, true), "
        f"set_config('{ALL_TENANTS_SETTING}', %(all_tenants)s, true)"
    )
    return sql, {"tenant": tenant, "all_tenants": "on" if everyone else "off"}


def _wanted(session: Session) -> str | None:
    scope: str | None = session.info.get(_SCOPE)
    if scope is None and (default := session.info.get(_DEFAULT)) is not None:
        scope = default()
    return scope


def _apply(session: Session) -> None:
    """Give the session's open transaction (if any) its current scope; a transaction not begun
    yet gets it when it begins (``_scope_new_transaction``)."""
    scope = _wanted(session)
    if not session.in_transaction() or session.info.get(_APPLIED) == scope:
        return
    if not _is_postgresql(session.get_bind()):
        return
    connection = session.connection()  # begins it on a connection if needed: then it is set
    if session.info.get(_APPLIED) != scope:
        _set(connection, scope)
        session.info[_APPLIED] = scope


def scope_by_default(session: Session, default: Callable[[], str | None]) -> None:
    """The scope of a unit of work that sets none itself: ``default()`` (a tenant id as text,
    ``ALL_TENANTS`` or None), asked when the unit's statements run. ``db.session`` gives a
    request's unit its authenticated tenant this way."""
    session.info[_DEFAULT] = default


def inherit_scope(session: Session, source: Session) -> None:
    """Give ``session`` the scope ``source`` has now (a write unit recording what a read unit
    decided)."""
    scope = _wanted(source)
    if scope is not None:
        session.info[_SCOPE] = scope
        _apply(session)


def scope_to_tenant(session: Session, tenant_id: uuid.UUID) -> None:
    """Show this unit of work ``tenant_id``'s rows only (inside ``across_tenants``, all rows
    stay visible until the block ends)."""
    if session.info.get(_SCOPE) == ALL_TENANTS:
        return
    session.info[_SCOPE] = str(tenant_id)
    _apply(session)


def scope_to_all_tenants(session: Session) -> None:
    """Every tenant's rows for the rest of this unit of work: for a unit that is about several
    tenants by design (the automation runner's, the usage folder's, an operator's
    installation-wide listing), and for nothing else."""
    session.info[_SCOPE] = ALL_TENANTS
    _apply(session)


@contextmanager
def across_tenants(session: Session) -> Iterator[Session]:
    """Every tenant's rows for the duration of the block: for code paths meant to cross
    tenants, and for nothing else. The scope in force before is restored after."""
    before = session.info.get(_SCOPE)
    session.info[_SCOPE] = ALL_TENANTS
    _apply(session)
    try:
        yield session
    finally:
        if before is None:
            session.info.pop(_SCOPE, None)
        else:
            session.info[_SCOPE] = before
        if session.is_active:
            _apply(session)


def connection_across_tenants(connection: Connection) -> None:
    """``across_tenants`` for a Core connection's current transaction (a batched writer that
    stores several tenants' rows at once)."""
    if _is_postgresql(connection):
        _set(connection, ALL_TENANTS)


def scope_of(session: Session) -> str | None:
    """The session's scope: a tenant id as text, ``ALL_TENANTS``, or None (no tenant rows)."""
    return session.info.get(_SCOPE)


@event.listens_for(Session, "after_begin")
def _scope_new_transaction(
    session: Session, _transaction: SessionTransaction, connection: Connection
) -> None:
    session.info.pop(_APPLIED, None)
    if not _is_postgresql(connection):
        return
    scope = _wanted(session)
    if scope is not None:
        _set(connection, scope)
    session.info[_APPLIED] = scope


@event.listens_for(Session, "do_orm_execute")
def _scope_before_statement(state: ORMExecuteState) -> None:
    # A request's default scope may become known after its transaction began (a write unit
    # opens before the route's other dependencies run).
    if _DEFAULT in state.session.info:
        _apply(state.session)


@event.listens_for(Session, "before_flush")
def _scope_before_flush(session: Session, _context: Any, _instances: Any) -> None:
    if _DEFAULT in session.info:
        _apply(session)


@event.listens_for(Session, "after_transaction_end")
def _forget_applied(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_APPLIED, None)


# The role the application's connections act as on PostgreSQL (docs/operations.md): not a
# superuser, no BYPASSRLS, not the tables' owner. Migration 0012 creates it (NOLOGIN) when absent
# and grants it the data, never the schema; a deployment logs in as a member of it.
APP_ROLE = "aethercrown_app"
POLICY = "tenant_isolation"
# NULLIF: once set in a connection's life, an unset setting reads '' rather than NULL.
_VISIBLE = (
    f"current_setting('{ALL_TENANTS_SETTING}', true) = 'on' "
    f"OR tenant_id = NULLIF(current_setting('{TENANT_SETTING}', true), '')::uuid"
)

# Tables whose installation-wide rows (tenant_id NULL) every tenant may read, though not write:
# the health samples of shared components (the database, Redis), which a tenant's check shows.
SHARED_READ_TABLES = frozenset({"health_samples"})


def tenant_tables(connection: Connection) -> list[str]:
    """The tables of the connection's schema that have a ``tenant_id`` column, read from the
    database itself, so a tenant table added by any migration is found."""
    rows = connection.execute(
        text(
            "SELECT c.table_name FROM information_schema.columns c "
            "JOIN information_schema.tables t "
            "ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
            "WHERE c.table_schema = current_schema() AND c.column_name = 'tenant_id' "
            "AND t.table_type = 'BASE TABLE' ORDER BY c.table_name"
        )
    )
    return [row[0] for row in rows]


def secure_tenant_table(connection: Connection, table: str) -> None:
    """Row-level security on one tenant table (PostgreSQL; idempotent): enabled, forced on the
    owner too, and one policy for reads and writes alike."""
    connection.execute(text(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY'))
    connection.execute(text(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY'))
    connection.execute(text(f'DROP POLICY IF EXISTS {POLICY} ON "{table}"'))
    readable = f"{_VISIBLE} OR tenant_id IS NULL" if table in SHARED_READ_TABLES else _VISIBLE
    connection.execute(
        text(f'CREATE POLICY {POLICY} ON "{table}" USING ({readable}) WITH CHECK ({_VISIBLE})')
    )


def unsecure_tenant_table(connection: Connection, table: str) -> None:
    connection.execute(text(f'DROP POLICY IF EXISTS {POLICY} ON "{table}"'))
    connection.execute(text(f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY'))
    connection.execute(text(f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY'))


def grant_app_role(connection: Connection) -> None:
    """Create ``APP_ROLE`` when absent (NOLOGIN: members log in) and give it the data of the
    current schema: rows, not DDL; tables and sequences later migrations create too."""
    connection.execute(
        text(
            "DO $$ BEGIN "
            f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN "
            f"CREATE ROLE {APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS; END IF; "
            # Two databases of one server migrating at once may both find it absent.
            "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        )
    )
    schema = connection.execute(text("SELECT current_schema()")).scalar_one()
    for statement in (
        f'GRANT USAGE ON SCHEMA "{schema}" TO {APP_ROLE}',
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO {APP_ROLE}',
        f'GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA "{schema}" TO {APP_ROLE}',
        f'ALTER DEFAULT PRIVILEGES IN SCHEMA "{schema}" '
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE}",
        f'ALTER DEFAULT PRIVILEGES IN SCHEMA "{schema}" '
        f"GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {APP_ROLE}",
    ):
        connection.execute(text(statement))


def revoke_app_role(connection: Connection) -> None:
    """Undo ``grant_app_role``'s grants in this schema; the role itself stays (it is the
    server's, and other databases may use it)."""
    schema = connection.execute(text("SELECT current_schema()")).scalar_one()
    for statement in (
        f'ALTER DEFAULT PRIVILEGES IN SCHEMA "{schema}" '
        f"REVOKE USAGE, SELECT, UPDATE ON SEQUENCES FROM {APP_ROLE}",
        f'ALTER DEFAULT PRIVILEGES IN SCHEMA "{schema}" '
        f"REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {APP_ROLE}",
        f'REVOKE ALL ON ALL SEQUENCES IN SCHEMA "{schema}" FROM {APP_ROLE}',
        f'REVOKE ALL ON ALL TABLES IN SCHEMA "{schema}" FROM {APP_ROLE}',
        f'REVOKE USAGE ON SCHEMA "{schema}" FROM {APP_ROLE}',
    ):
        connection.execute(text(statement))
