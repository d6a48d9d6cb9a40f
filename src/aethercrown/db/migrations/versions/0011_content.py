"""content: product profiles, items with versions, tracked events

Revision ID: 0011_content
Revises: 0004_experiments
Create Date: 2026-12-02 13:57:15.656320
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import aethercrown.db.base

revision: str = "0011_content"
down_revision: str | Sequence[str] | None = "0004_experiments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "content_profiles",
        sa.Column("product_name", sa.String(length=200), nullable=False),
        sa.Column("audience", sa.String(length=300), nullable=False),
        sa.Column(
            "value_propositions",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "features", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column(
            "proof_points", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("tone", sa.String(length=20), nullable=False),
        sa.Column(
            "banned_words", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column(
            "links", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("postal_address", sa.Text(), nullable=False),
        sa.Column("sender_name", sa.String(length=200), nullable=False),
        sa.Column("provider_base_url", sa.String(length=500), nullable=True),
        sa.Column("provider_model", sa.String(length=200), nullable=True),
        sa.Column("provider_api_key", sa.LargeBinary(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_content_profiles_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_profiles")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_content_profiles_tenant_id")),
    )
    with op.batch_alter_table("content_profiles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_content_profiles_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "content_items",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("scheduled_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("due_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("headline_experiment_id", sa.Uuid(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["headline_experiment_id"],
            ["experiments.id"],
            name=op.f("fk_content_items_headline_experiment_id_experiments"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_content_items_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_items")),
    )
    with op.batch_alter_table("content_items", schema=None) as batch_op:
        batch_op.create_index("ix_content_items_due", ["status", "scheduled_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_content_items_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index("ix_content_items_tenant_kind", ["tenant_id", "kind"], unique=False)
        batch_op.create_index(
            "ix_content_items_tenant_scheduled", ["tenant_id", "scheduled_at"], unique=False
        )

    op.create_table(
        "content_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("occurred_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["content_items.id"],
            name=op.f("fk_content_events_item_id_content_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_content_events_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_events")),
        sa.UniqueConstraint(
            "tenant_id", "event_id", name=op.f("uq_content_events_tenant_id_event_id")
        ),
    )
    with op.batch_alter_table("content_events", schema=None) as batch_op:
        batch_op.create_index("ix_content_events_item_kind", ["item_id", "kind"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_content_events_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "content_versions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column(
            "inputs", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("fallback_reason", sa.Text(), nullable=True),
        sa.Column(
            "analysis", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("created_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["content_items.id"],
            name=op.f("fk_content_versions_item_id_content_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_content_versions_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_versions")),
        sa.UniqueConstraint("item_id", "version", name=op.f("uq_content_versions_item_id_version")),
    )
    with op.batch_alter_table("content_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_content_versions_tenant_id"), ["tenant_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("content_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_content_versions_tenant_id"))

    op.drop_table("content_versions")
    with op.batch_alter_table("content_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_content_events_tenant_id"))
        batch_op.drop_index("ix_content_events_item_kind")

    op.drop_table("content_events")
    with op.batch_alter_table("content_items", schema=None) as batch_op:
        batch_op.drop_index("ix_content_items_tenant_scheduled")
        batch_op.drop_index("ix_content_items_tenant_kind")
        batch_op.drop_index(batch_op.f("ix_content_items_tenant_id"))
        batch_op.drop_index("ix_content_items_due")

    op.drop_table("content_items")
    with op.batch_alter_table("content_profiles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_content_profiles_tenant_id"))

    op.drop_table("content_profiles")
