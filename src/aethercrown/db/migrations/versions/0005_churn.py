"""churn: model registry, scores, retention campaigns

Revision ID: 0005_churn
Revises: 0002_data
Create Date: 2026-11-25 21:13:58.062280
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import aethercrown.db.base

revision: str = "0005_churn"
down_revision: str | Sequence[str] | None = "0002_data"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "churn_models",
        sa.Column("feature_set", sa.String(length=10), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("window_start", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("window_end", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "features", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column(
            "training", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("roc_auc", sa.Float(), nullable=False),
        sa.Column("pr_auc", sa.Float(), nullable=False),
        sa.Column("brier", sa.Float(), nullable=False),
        sa.Column("ece", sa.Float(), nullable=False),
        sa.Column("top_decile_lift", sa.Float(), nullable=False),
        sa.Column("artifact", sa.LargeBinary(), nullable=False),
        sa.Column("promoted", sa.Boolean(), nullable=False),
        sa.Column("promoted_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_churn_models_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_churn_models")),
        sa.UniqueConstraint(
            "tenant_id",
            "feature_set",
            "version",
            name=op.f("uq_churn_models_tenant_id_feature_set_version"),
        ),
    )
    with op.batch_alter_table("churn_models", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_churn_models_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(
            "ix_churn_models_tenant_promoted",
            ["tenant_id", "feature_set", "promoted"],
            unique=False,
        )

    op.create_table(
        "churn_campaigns",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("cooldown_bucket", sa.Integer(), nullable=False),
        sa.Column("risk_level", sa.String(length=10), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column(
            "actions", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("discount_percent", sa.Integer(), nullable=False),
        sa.Column("holdout", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("model_version", sa.String(length=50), nullable=False),
        sa.Column("decision_id", sa.Uuid(), nullable=True),
        sa.Column("outcome", sa.String(length=10), nullable=True),
        sa.Column("outcome_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_churn_campaigns_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_churn_campaigns_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_churn_campaigns")),
        sa.UniqueConstraint(
            "tenant_id",
            "customer_id",
            "cooldown_bucket",
            name=op.f("uq_churn_campaigns_tenant_id_customer_id_cooldown_bucket"),
        ),
    )
    with op.batch_alter_table("churn_campaigns", schema=None) as batch_op:
        batch_op.create_index(
            "ix_churn_campaigns_tenant_created", ["tenant_id", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_churn_campaigns_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "churn_scores",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("scored_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("risk_level", sa.String(length=10), nullable=False),
        sa.Column("model_source", sa.String(length=20), nullable=False),
        sa.Column("model_version", sa.String(length=50), nullable=False),
        sa.Column(
            "factors", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_churn_scores_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_churn_scores_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_churn_scores")),
    )
    with op.batch_alter_table("churn_scores", schema=None) as batch_op:
        batch_op.create_index(
            "ix_churn_scores_tenant_customer", ["tenant_id", "customer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_churn_scores_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("churn_scores", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_churn_scores_tenant_id"))
        batch_op.drop_index("ix_churn_scores_tenant_customer")

    op.drop_table("churn_scores")
    with op.batch_alter_table("churn_campaigns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_churn_campaigns_tenant_id"))
        batch_op.drop_index("ix_churn_campaigns_tenant_created")

    op.drop_table("churn_campaigns")
    with op.batch_alter_table("churn_models", schema=None) as batch_op:
        batch_op.drop_index("ix_churn_models_tenant_promoted")
        batch_op.drop_index(batch_op.f("ix_churn_models_tenant_id"))

    op.drop_table("churn_models")
