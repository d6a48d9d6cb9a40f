"""tenant stored rows: the database counts each tenant's rows per table

The stored-row quota was checked with one ``count(*)`` per tenant table on every ingest. From
here the tables' triggers keep ``tenant_stored_rows`` (see ``aethercrown.db.row_counts``), filled
once with what the tables hold now. The table is a tenant table: row-level security on
PostgreSQL like every other. SQLite gets the table, empty, and no triggers: it counts the rows
when the quota is read (see the module for why).

Revision ID: 0015_tenant_stored_rows
Revises: 0014_ticket_first_responses, 0014_alert_channels (it merges them: it counts both's tables)
Create Date: 2026-12-03 07:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from aethercrown.db import row_counts, tenant_scope

revision: str = "0015_tenant_stored_rows"
down_revision: str | Sequence[str] | None = (
    "0014_ticket_first_responses",
    "0014_alert_channels",
)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tenant tables whose rows the stored-row quota counts (every ``TenantScoped`` table at this
# revision), frozen here as a migration must be; later tables are counted by their migrations.
COUNTED = (
    "active_user_days",
    "alert_channels",
    "alert_deliveries",
    "active_user_months",
    "activity_events",
    "analytics_snapshots",
    "budget_fit_cache",
    "churn_campaigns",
    "churn_models",
    "churn_scores",
    "content_events",
    "content_items",
    "content_profiles",
    "content_versions",
    "customers",
    "decisions",
    "experiment_assignments",
    "experiment_covariates",
    "experiment_events",
    "experiments",
    "marketing_channel_rules",
    "marketing_spend",
    "metering_settings",
    "meters",
    "onboarding_steps",
    "onboardings",
    "payments",
    "price_plans",
    "pricing_factors",
    "renewal_models",
    "segment_sources",
    "segment_users",
    "simulated_truths",
    "sla_breaches",
    "sla_tiers",
    "stripe_connections",
    "stripe_events",
    "stripe_invoices",
    "subscriptions",
    "support_tickets",
    "task_attempts",
    "task_dependencies",
    "task_workers",
    "tasks",
    "ticket_first_responses",
    "upsell_campaigns",
    "usage_alerts",
    "usage_daily",
    "usage_events",
    "usage_unique_values",
    "web_sessions",
    "webhook_deliveries",
)


def upgrade() -> None:
    op.create_table(
        "tenant_stored_rows",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("table_name", sa.String(length=63), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_tenant_stored_rows_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenant_stored_rows")),
    )
    op.create_index(
        "ix_tenant_stored_rows_tenant_table",
        "tenant_stored_rows",
        ["tenant_id", "table_name"],
        unique=False,
    )
    connection = op.get_bind()
    # Every tenant's rows, to count them (row-level security is forced on the owner too).
    tenant_scope.connection_across_tenants(connection)
    row_counts.create_count_functions(connection)
    # Triggers first: creating one locks its table against writes until this commits, so the
    # counts filled next miss nothing written meanwhile.
    for table in COUNTED:
        row_counts.count_tenant_rows(connection, table)
    for table in COUNTED:
        row_counts.fill_counts(connection, table)
    if connection.dialect.name == "postgresql":
        tenant_scope.secure_tenant_table(connection, "tenant_stored_rows")


def downgrade() -> None:
    connection = op.get_bind()
    for table in COUNTED:
        row_counts.uncount_tenant_rows(connection, table)
    row_counts.drop_count_functions(connection)
    if connection.dialect.name == "postgresql":
        tenant_scope.unsecure_tenant_table(connection, "tenant_stored_rows")
    op.drop_index("ix_tenant_stored_rows_tenant_table", table_name="tenant_stored_rows")
    op.drop_table("tenant_stored_rows")
