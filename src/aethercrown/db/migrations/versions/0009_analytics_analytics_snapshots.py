"""analytics snapshots

Revision ID: 0009_analytics
Revises: 0002_data
Create Date: 2026-11-25 21:05:43.645762
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import aethercrown.db.base

revision: str = "0009_analytics"
down_revision: str | Sequence[str] | None = "0002_data"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "analytics_snapshots",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("view", sa.String(length=300), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column(
            "payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("computed_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_analytics_snapshots_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_snapshots")),
        sa.UniqueConstraint(
            "tenant_id", "view", name=op.f("uq_analytics_snapshots_tenant_id_view")
        ),
    )
    with op.batch_alter_table("analytics_snapshots", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_analytics_snapshots_tenant_id"), ["tenant_id"], unique=False
        )
    op.create_index("ix_subscriptions_tenant_updated", "subscriptions", ["tenant_id", "updated_at"])
    op.create_index("ix_customers_tenant_updated", "customers", ["tenant_id", "updated_at"])
    op.create_index(
        "ix_activity_events_tenant_time", "activity_events", ["tenant_id", "occurred_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_activity_events_tenant_time", table_name="activity_events")
    op.drop_index("ix_customers_tenant_updated", table_name="customers")
    op.drop_index("ix_subscriptions_tenant_updated", table_name="subscriptions")
    with op.batch_alter_table("analytics_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analytics_snapshots_tenant_id"))

    op.drop_table("analytics_snapshots")
