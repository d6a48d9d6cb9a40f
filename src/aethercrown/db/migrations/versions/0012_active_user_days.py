"""active_user_days: the per-day distinct-active-user rollup of activity_events, backfilled

Revision ID: 0012_active_user_days
Revises: 0002_data
Create Date: 2026-12-02 17:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_active_user_days"
down_revision: str | Sequence[str] | None = "0002_data"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "active_user_days",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_active_user_days_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_active_user_days_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "day", "customer_id", "user_id", name=op.f("pk_active_user_days")
        ),
    )
    # Events stored before this revision: their users' days, as ingestion would have kept them.
    if op.get_bind().dialect.name == "postgresql":
        day = "CAST(occurred_at AT TIME ZONE 'UTC' AS DATE)"
    else:
        day = "date(occurred_at)"
    op.execute(
        "INSERT INTO active_user_days (tenant_id, day, customer_id, user_id) "
        f"SELECT DISTINCT tenant_id, {day}, customer_id, user_id FROM activity_events"
    )


def downgrade() -> None:
    op.drop_table("active_user_days")
