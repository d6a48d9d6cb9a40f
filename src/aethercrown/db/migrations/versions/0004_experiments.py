"""experiments

Revision ID: 0004_experiments
Revises: 0002_data
Create Date: 2026-11-25 21:07:24.577629
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import aethercrown.db.base

revision: str = "0004_experiments"
down_revision: str | Sequence[str] | None = "0002_data"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("hypothesis", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("seed", sa.String(length=200), nullable=False),
        sa.Column("hash_version", sa.Integer(), nullable=False),
        sa.Column("coverage", sa.Float(), nullable=False),
        sa.Column(
            "variants",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "weights",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "configured_weights",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "metrics",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("engine", sa.String(length=12), nullable=False),
        sa.Column("alpha", sa.Float(), nullable=False),
        sa.Column("mde", sa.Float(), nullable=False),
        sa.Column("power", sa.Float(), nullable=False),
        sa.Column("sequential_tuning", sa.Float(), nullable=False),
        sa.Column("correction", sa.String(length=4), nullable=False),
        sa.Column("bandit", sa.Boolean(), nullable=False),
        sa.Column("bandit_floor", sa.Float(), nullable=False),
        sa.Column("last_verdict", sa.String(length=20), nullable=True),
        sa.Column("started_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("archived_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_experiments_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
    )
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_experiments_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index("ix_experiments_tenant_status", ["tenant_id", "status"], unique=False)

    op.create_table(
        "experiment_assignments",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("experiment_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("variant", sa.Integer(), nullable=False),
        sa.Column("assigned_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_assignments_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_experiment_assignments_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiment_assignments")),
        sa.UniqueConstraint(
            "experiment_id", "user_id", name=op.f("uq_experiment_assignments_experiment_id_user_id")
        ),
    )
    with op.batch_alter_table("experiment_assignments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_experiment_assignments_experiment_variant",
            ["experiment_id", "variant"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_experiment_assignments_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "experiment_covariates",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("experiment_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("metric_key", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_covariates_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_experiment_covariates_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiment_covariates")),
        sa.UniqueConstraint(
            "experiment_id",
            "user_id",
            "metric_key",
            name=op.f("uq_experiment_covariates_experiment_id_user_id_metric_key"),
        ),
    )
    with op.batch_alter_table("experiment_covariates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_experiment_covariates_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "experiment_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("experiment_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("variant", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("metric_key", sa.String(length=100), nullable=True),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("occurred_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_events_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_experiment_events_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiment_events")),
        sa.UniqueConstraint(
            "experiment_id", "event_id", name=op.f("uq_experiment_events_experiment_id_event_id")
        ),
    )
    with op.batch_alter_table("experiment_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_experiment_events_metric_user",
            ["experiment_id", "metric_key", "user_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_experiment_events_tenant_id"), ["tenant_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("experiment_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_experiment_events_tenant_id"))
        batch_op.drop_index("ix_experiment_events_metric_user")

    op.drop_table("experiment_events")
    with op.batch_alter_table("experiment_covariates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_experiment_covariates_tenant_id"))

    op.drop_table("experiment_covariates")
    with op.batch_alter_table("experiment_assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_experiment_assignments_tenant_id"))
        batch_op.drop_index("ix_experiment_assignments_experiment_variant")

    op.drop_table("experiment_assignments")
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_index("ix_experiments_tenant_status")
        batch_op.drop_index(batch_op.f("ix_experiments_tenant_id"))

    op.drop_table("experiments")
