"""active_user_months: the month grain of the distinct-active-user rollup, backfilled

Revision ID: 0012_active_user_months
Revises: 0012_active_user_days
Create Date: 2026-12-02 18:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_active_user_months"
down_revision: str | Sequence[str] | None = "0012_active_user_days"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "active_user_months",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_active_user_months_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_active_user_months_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "month", "customer_id", "user_id", name=op.f("pk_active_user_months")
        ),
    )
    if op.get_bind().dialect.name == "postgresql":
        month = "CAST(date_trunc('month', day) AS DATE)"
    else:
        month = "date(day, 'start of month')"
    op.execute(
        "INSERT INTO active_user_months (tenant_id, month, customer_id, user_id) "
        f"SELECT DISTINCT tenant_id, {month}, customer_id, user_id FROM active_user_days"
    )


def downgrade() -> None:
    op.drop_table("active_user_months")
