"""row-level security on every tenant table (PostgreSQL)

A merge of every branch: it runs once every table exists. Each table with a ``tenant_id`` column
(read from the database, so whatever the branches created) gets row-level security, enabled and
forced, with one policy: a row is visible and writable only in a transaction scoped to its tenant
(``aethercrown.tenant_id``) or to all tenants (``aethercrown.all_tenants = on``); see
``aethercrown.db.tenant_scope``. The role the application acts as, ``aethercrown_app``, is
created when absent and given the rows. SQLite has no row-level security: nothing to do.

Revision ID: 0013_row_level_security
Revises: every other head (0003_simulate … 0012_web_sessions)
Create Date: 2026-12-02 17:40:00
"""

from collections.abc import Sequence

from alembic import op

from aethercrown.db import tenant_scope

revision: str = "0013_row_level_security"
down_revision: str | Sequence[str] | None = (
    "0003_simulate",
    "0005_churn",
    "0008_ops",
    "0009_analytics",
    "0011_budget_fit_cache",
    "0011_content",
    "0011_webhook_lease",
    "0012_active_user_months",
    "0012_connectors",
    "0012_onboarding",
    "0012_web_sessions",
)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "postgresql":
        return
    for table in tenant_scope.tenant_tables(connection):
        tenant_scope.secure_tenant_table(connection, table)
    tenant_scope.grant_app_role(connection)


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "postgresql":
        return
    tenant_scope.revoke_app_role(connection)
    for table in tenant_scope.tenant_tables(connection):
        tenant_scope.unsecure_tenant_table(connection, table)
