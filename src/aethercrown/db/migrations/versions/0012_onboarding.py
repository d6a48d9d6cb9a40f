"""onboarding: SLA tiers, onboardings and their steps, SLA breaches

Revision ID: 0012_onboarding
Revises: 0002_data
Create Date: 2026-12-02 17:27:45.889671
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import aethercrown.db.base

revision: str = "0012_onboarding"
down_revision: str | Sequence[str] | None = "0002_data"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sla_tiers",
        sa.Column("slug", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("response_minutes", sa.Integer(), nullable=False),
        sa.Column("uptime_target_bp", sa.Integer(), nullable=False),
        sa.Column("dedicated_support", sa.Boolean(), nullable=False),
        sa.Column("custom_integration", sa.Boolean(), nullable=False),
        sa.Column("onboarding_target_hours", sa.Integer(), nullable=False),
        sa.Column(
            "credits",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_sla_tiers_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_tiers")),
        sa.UniqueConstraint("tenant_id", "slug", name=op.f("uq_sla_tiers_tenant_id_slug")),
    )
    with op.batch_alter_table("sla_tiers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sla_tiers_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "onboardings",
        sa.Column("customer_external_id", sa.String(length=200), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("sla_tier", sa.String(length=40), nullable=False),
        sa.Column(
            "request",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("current_step", sa.Integer(), nullable=False),
        sa.Column("portal_key_id", sa.Uuid(), nullable=True),
        sa.Column("started_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_onboardings_customer_id_customers"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["portal_key_id"],
            ["api_keys.id"],
            name=op.f("fk_onboardings_portal_key_id_api_keys"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_onboardings_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_onboardings")),
        sa.UniqueConstraint(
            "tenant_id",
            "customer_external_id",
            name=op.f("uq_onboardings_tenant_id_customer_external_id"),
        ),
    )
    with op.batch_alter_table("onboardings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_onboardings_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "onboarding_steps",
        sa.Column("onboarding_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("blocker", sa.Text(), nullable=True),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("claimed_until", aethercrown.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["onboarding_id"],
            ["onboardings.id"],
            name=op.f("fk_onboarding_steps_onboarding_id_onboardings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_onboarding_steps_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_onboarding_steps")),
        sa.UniqueConstraint(
            "onboarding_id", "position", name=op.f("uq_onboarding_steps_onboarding_id_position")
        ),
    )
    with op.batch_alter_table("onboarding_steps", schema=None) as batch_op:
        batch_op.create_index(
            "ix_onboarding_steps_due", ["status", "next_attempt_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_onboarding_steps_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "sla_breaches",
        sa.Column("onboarding_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("measured", sa.Float(), nullable=False),
        sa.Column("target", sa.Float(), nullable=False),
        sa.Column("credit_percent", sa.Float(), nullable=False),
        sa.Column("decision_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
            name=op.f("fk_sla_breaches_decision_id_decisions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["onboarding_id"],
            ["onboardings.id"],
            name=op.f("fk_sla_breaches_onboarding_id_onboardings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_sla_breaches_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_breaches")),
        sa.UniqueConstraint(
            "tenant_id",
            "onboarding_id",
            "kind",
            "month",
            "subject",
            name=op.f("uq_sla_breaches_tenant_id_onboarding_id_kind_month_subject"),
        ),
    )
    with op.batch_alter_table("sla_breaches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sla_breaches_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sla_breaches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sla_breaches_tenant_id"))

    op.drop_table("sla_breaches")
    with op.batch_alter_table("onboarding_steps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_onboarding_steps_tenant_id"))
        batch_op.drop_index("ix_onboarding_steps_due")

    op.drop_table("onboarding_steps")
    with op.batch_alter_table("onboardings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_onboardings_tenant_id"))

    op.drop_table("onboardings")
    with op.batch_alter_table("sla_tiers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sla_tiers_tenant_id"))

    op.drop_table("sla_tiers")
