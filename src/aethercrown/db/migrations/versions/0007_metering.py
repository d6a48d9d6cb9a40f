"""metering

Revision ID: 0007_metering
Revises: 0002_data
Create Date: 2026-11-25 21:10:09.820278
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import aethercrown.db.base

revision: str = "0007_metering"
down_revision: str | Sequence[str] | None = "0002_data"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "metering_settings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("warning_bp", sa.Integer(), nullable=False),
        sa.Column("critical_bp", sa.Integer(), nullable=False),
        sa.Column("upsell_growth_bp", sa.Integer(), nullable=False),
        sa.Column("upsell_high_usage_bp", sa.Integer(), nullable=False),
        sa.Column("upsell_sustained_days", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_metering_settings_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metering_settings")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_metering_settings_tenant_id")),
    )
    with op.batch_alter_table("metering_settings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_metering_settings_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "meters",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("aggregation", sa.String(length=10), nullable=False),
        sa.Column("unit", sa.String(length=40), nullable=False),
        sa.Column("unique_property", sa.String(length=100), nullable=True),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_meters_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meters")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_meters_tenant_id_name")),
    )
    with op.batch_alter_table("meters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_meters_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "price_plans",
        sa.Column("slug", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("monthly_price", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "capacities", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column(
            "overage", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_price_plans_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_plans")),
        sa.UniqueConstraint("tenant_id", "slug", name=op.f("uq_price_plans_tenant_id_slug")),
    )
    with op.batch_alter_table("price_plans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_price_plans_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "pricing_factors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column(
            "tables", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_pricing_factors_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pricing_factors")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_pricing_factors_tenant_id")),
    )
    with op.batch_alter_table("pricing_factors", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pricing_factors_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "renewal_models",
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column(
            "params", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column(
            "metrics", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("trained_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_renewal_models_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_renewal_models")),
    )
    with op.batch_alter_table("renewal_models", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_renewal_models_tenant_id"), ["tenant_id"], unique=False
        )
        batch_op.create_index(
            "ix_renewal_models_tenant_trained", ["tenant_id", "trained_at"], unique=False
        )

    op.create_table(
        "upsell_campaigns",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("current_plan", sa.String(length=40), nullable=True),
        sa.Column("recommended_plan", sa.String(length=40), nullable=False),
        sa.Column("monthly_price", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "reasons", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("decision_id", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_upsell_campaigns_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_upsell_campaigns_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upsell_campaigns")),
        sa.UniqueConstraint(
            "tenant_id",
            "customer_id",
            "period_start",
            name=op.f("uq_upsell_campaigns_tenant_id_customer_id_period_start"),
        ),
    )
    with op.batch_alter_table("upsell_campaigns", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_upsell_campaigns_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "usage_alerts",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("metric", sa.String(length=100), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("threshold_bp", sa.Integer(), nullable=False),
        sa.Column("usage", sa.Float(), nullable=False),
        sa.Column("capacity", sa.Float(), nullable=False),
        sa.Column("plan", sa.String(length=40), nullable=False),
        sa.Column("webhook_delivery_id", sa.Uuid(), nullable=True),
        sa.Column("fired_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_usage_alerts_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_usage_alerts_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_alerts")),
        sa.UniqueConstraint(
            "tenant_id",
            "customer_id",
            "metric",
            "period_start",
            "level",
            name=op.f("uq_usage_alerts_tenant_id_customer_id_metric_period_start_level"),
        ),
    )
    with op.batch_alter_table("usage_alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_usage_alerts_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "usage_daily",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("metric", sa.String(length=100), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("event_count", sa.BigInteger(), nullable=False),
        sa.Column("value_sum", sa.Float(), nullable=False),
        sa.Column("value_max", sa.Float(), nullable=False),
        sa.Column("latest_value", sa.Float(), nullable=False),
        sa.Column("latest_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("unique_count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_usage_daily_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_usage_daily_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_daily")),
        sa.UniqueConstraint(
            "tenant_id",
            "customer_id",
            "metric",
            "day",
            name=op.f("uq_usage_daily_tenant_id_customer_id_metric_day"),
        ),
    )
    op.create_table(
        "usage_events",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("metric", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("occurred_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "properties", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("received_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_usage_events_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_usage_events_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_events")),
        sa.UniqueConstraint(
            "tenant_id", "event_id", name=op.f("uq_usage_events_tenant_id_event_id")
        ),
    )
    with op.batch_alter_table("usage_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_usage_events_customer_metric_time",
            ["customer_id", "metric", "occurred_at"],
            unique=False,
        )

    op.create_table(
        "usage_unique_values",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("metric", sa.String(length=100), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("value_key", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_usage_unique_values_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_usage_unique_values_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_unique_values")),
        sa.UniqueConstraint(
            "tenant_id",
            "customer_id",
            "metric",
            "day",
            "value_key",
            name=op.f("uq_usage_unique_values_tenant_id_customer_id_metric_day_value_key"),
        ),
    )


def downgrade() -> None:
    op.drop_table("usage_unique_values")
    with op.batch_alter_table("usage_events", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_events_customer_metric_time")

    op.drop_table("usage_events")
    op.drop_table("usage_daily")
    with op.batch_alter_table("usage_alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_usage_alerts_tenant_id"))

    op.drop_table("usage_alerts")
    with op.batch_alter_table("upsell_campaigns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_upsell_campaigns_tenant_id"))

    op.drop_table("upsell_campaigns")
    with op.batch_alter_table("renewal_models", schema=None) as batch_op:
        batch_op.drop_index("ix_renewal_models_tenant_trained")
        batch_op.drop_index(batch_op.f("ix_renewal_models_tenant_id"))

    op.drop_table("renewal_models")
    with op.batch_alter_table("pricing_factors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pricing_factors_tenant_id"))

    op.drop_table("pricing_factors")
    with op.batch_alter_table("price_plans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_price_plans_tenant_id"))

    op.drop_table("price_plans")
    with op.batch_alter_table("meters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meters_tenant_id"))

    op.drop_table("meters")
    with op.batch_alter_table("metering_settings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_metering_settings_tenant_id"))

    op.drop_table("metering_settings")
