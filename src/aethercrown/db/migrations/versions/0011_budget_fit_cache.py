"""budget fit cache: channel posteriors stored per data fingerprint

Revision ID: 0011_budget_fit_cache
Revises: 0010_usage_fold
Create Date: 2026-12-02 14:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import aethercrown.db.base

revision: str = "0011_budget_fit_cache"
down_revision: str | Sequence[str] | None = "0010_usage_fold"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "budget_fit_cache",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column(
            "payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("computed_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_budget_fit_cache_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_fit_cache")),
        sa.UniqueConstraint(
            "tenant_id", "fingerprint", name=op.f("uq_budget_fit_cache_tenant_id_fingerprint")
        ),
    )
    with op.batch_alter_table("budget_fit_cache", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_budget_fit_cache_tenant_id"), ["tenant_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("budget_fit_cache", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_budget_fit_cache_tenant_id"))
    op.drop_table("budget_fit_cache")
