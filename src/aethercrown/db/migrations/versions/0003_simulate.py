"""simulate

Revision ID: 0003_simulate
Revises: 0002_data
Create Date: 2026-11-25 21:16:50.565306
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import aethercrown.db.base

revision: str = "0003_simulate"
down_revision: str | Sequence[str] | None = "0002_data"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "simulated_truths",
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column(
            "config", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column(
            "truth", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column(
            "row_counts", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("generator_version", sa.String(length=20), nullable=False),
        sa.Column("generated_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_simulated_truths_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_simulated_truths")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_simulated_truths_tenant_id")),
    )
    with op.batch_alter_table("simulated_truths", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_simulated_truths_tenant_id"), ["tenant_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("simulated_truths", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_simulated_truths_tenant_id"))

    op.drop_table("simulated_truths")
