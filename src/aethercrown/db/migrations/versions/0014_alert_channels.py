"""alert channels and their outbox

A tenant's Slack-compatible webhooks and email recipients, each with a filter, and one
delivery row per (channel, event); both tenant tables get row-level security on PostgreSQL.

Revision ID: 0014_alert_channels
Revises: 0013_row_level_security
Create Date: 2026-12-03 07:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import aethercrown.db.base
from aethercrown.db import tenant_scope

revision: str = "0014_alert_channels"
down_revision: str | Sequence[str] | None = "0013_row_level_security"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC = aethercrown.db.base.UTCDateTime(timezone=True)
TABLES = ("alert_channels", "alert_deliveries")


def upgrade() -> None:
    op.create_table(
        "alert_channels",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("event_types", JSON, nullable=False),
        sa.Column("min_severity", sa.String(length=10), nullable=False),
        sa.Column("webhook_url", sa.LargeBinary(), nullable=True),
        sa.Column("webhook_hint", sa.String(length=200), nullable=True),
        sa.Column("recipients", JSON, nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_alert_channels_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_channels")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_alert_channels_tenant_id_name")),
    )
    with op.batch_alter_table("alert_channels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_channels_tenant_id"), ["tenant_id"])
    op.create_table(
        "alert_deliveries",
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("pending_recipients", JSON, nullable=False),
        sa.Column("decision_id", sa.Uuid(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTC, nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", UTC, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("claimed_until", UTC, nullable=True),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["alert_channels.id"],
            name=op.f("fk_alert_deliveries_channel_id_alert_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
            name=op.f("fk_alert_deliveries_decision_id_decisions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_alert_deliveries_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
        sa.UniqueConstraint(
            "channel_id", "event_id", name=op.f("uq_alert_deliveries_channel_id_event_id")
        ),
    )
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_alert_deliveries_due", ["status", "next_attempt_at"])
        batch_op.create_index(batch_op.f("ix_alert_deliveries_channel_id"), ["channel_id"])
        batch_op.create_index(batch_op.f("ix_alert_deliveries_tenant_id"), ["tenant_id"])
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        for table in TABLES:
            tenant_scope.secure_tenant_table(connection, table)


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        for table in TABLES:
            tenant_scope.unsecure_tenant_table(connection, table)
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_deliveries_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_alert_deliveries_channel_id"))
        batch_op.drop_index("ix_alert_deliveries_due")
    op.drop_table("alert_deliveries")
    with op.batch_alter_table("alert_channels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_channels_tenant_id"))
    op.drop_table("alert_channels")
