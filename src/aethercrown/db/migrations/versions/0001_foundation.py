"""foundation: tenants, tiers, keys, ledger

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-25 20:49:59.664465
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import aethercrown.db.base

revision: str = "0001_foundation"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_records",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.Column(
            "response_headers",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_records")),
        sa.UniqueConstraint("scope", "key", name=op.f("uq_idempotency_records_scope_key")),
    )
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_records_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "tiers",
        sa.Column("slug", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("monthly_price", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("requests_per_minute", sa.Integer(), nullable=False),
        sa.Column("max_stored_rows", sa.BigInteger(), nullable=False),
        sa.Column("max_seats", sa.Integer(), nullable=False),
        sa.Column("max_ai_agents", sa.Integer(), nullable=False),
        sa.Column("automation_min_interval_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("slug", name=op.f("pk_tiers")),
        sa.UniqueConstraint("rank", name=op.f("uq_tiers_rank")),
    )
    op.create_table(
        "tenants",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=63), nullable=False),
        sa.Column("tier_slug", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("webhook_url", sa.String(length=2000), nullable=True),
        sa.Column(
            "public_metrics",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "settings", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tier_slug"], ["tiers.slug"], name=op.f("fk_tenants_tier_slug_tiers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("slug", name=op.f("uq_tenants_slug")),
    )
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tenants_tier_slug"), ["tier_slug"], unique=False)

    op.create_table(
        "api_keys",
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column(
            "scopes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("display_prefix", sa.String(length=20), nullable=False),
        sa.Column("encrypted_secret", sa.LargeBinary(), nullable=True),
        sa.Column("managed", sa.Boolean(), nullable=False),
        sa.Column("security_level", sa.String(length=20), nullable=True),
        sa.Column("rotation_interval_days", sa.Integer(), nullable=True),
        sa.Column("lineage_id", sa.Uuid(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("rotated_to_id", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_api_keys_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_lineage_id"), ["lineage_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_api_keys_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "audit_events",
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("target_type", sa.String(length=50), nullable=False),
        sa.Column("target_id", sa.String(length=100), nullable=False),
        sa.Column(
            "details", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("created_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_audit_events_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_target_id"), ["target_id"], unique=False)
        batch_op.create_index(
            "ix_audit_events_tenant_created", ["tenant_id", "created_at"], unique=False
        )

    op.create_table(
        "decisions",
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("subject_type", sa.String(length=50), nullable=False),
        sa.Column("subject_id", sa.String(length=200), nullable=False),
        sa.Column("inputs_digest", sa.String(length=64), nullable=False),
        sa.Column(
            "output", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("predicted_value", sa.Float(), nullable=True),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("model_version", sa.String(length=50), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("created_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "outcome", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column("outcome_value", sa.Float(), nullable=True),
        sa.Column("outcome_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_decisions_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
    )
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_decisions_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(
            "ix_decisions_tenant_kind_created", ["tenant_id", "kind", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_decisions_tenant_subject", ["tenant_id", "subject_type", "subject_id"], unique=False
        )

    op.create_table(
        "tenant_request_counts",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_tenant_request_counts_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "day", "status", name=op.f("pk_tenant_request_counts")
        ),
    )
    seed_tiers()


# Platform tiers, editable later by the operator (PATCH /api/v1/platform/tiers/{slug}).
DEFAULT_TIERS = [
    # slug, name, rank, USD cents/month, req/min, stored rows, seats, AI agents, min interval s
    ("starter", "Starter", 1, 2900, 600, 1_000_000, 5, 2, 3600),
    ("professional", "Professional", 2, 9900, 3000, 10_000_000, 25, 10, 900),
    ("enterprise", "Enterprise", 3, 49900, 20000, 200_000_000, 500, 100, 300),
]


def seed_tiers() -> None:
    tiers = sa.table(
        "tiers",
        sa.column("slug", sa.String),
        sa.column("name", sa.String),
        sa.column("rank", sa.Integer),
        sa.column("monthly_price", sa.BigInteger),
        sa.column("currency", sa.String),
        sa.column("requests_per_minute", sa.Integer),
        sa.column("max_stored_rows", sa.BigInteger),
        sa.column("max_seats", sa.Integer),
        sa.column("max_ai_agents", sa.Integer),
        sa.column("automation_min_interval_seconds", sa.Integer),
        sa.column("created_at", aethercrown.db.base.UTCDateTime(timezone=True)),
        sa.column("updated_at", aethercrown.db.base.UTCDateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        tiers,
        [
            {
                "slug": slug,
                "name": name,
                "rank": rank,
                "monthly_price": price,
                "currency": "USD",
                "requests_per_minute": rpm,
                "max_stored_rows": rows,
                "max_seats": seats,
                "max_ai_agents": agents,
                "automation_min_interval_seconds": interval,
                "created_at": now,
                "updated_at": now,
            }
            for slug, name, rank, price, rpm, rows, seats, agents, interval in DEFAULT_TIERS
        ],
    )


def downgrade() -> None:
    op.drop_table("tenant_request_counts")
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_decisions_tenant_subject")
        batch_op.drop_index("ix_decisions_tenant_kind_created")
        batch_op.drop_index(batch_op.f("ix_decisions_tenant_id"))

    op.drop_table("decisions")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_tenant_created")
        batch_op.drop_index(batch_op.f("ix_audit_events_target_id"))

    op.drop_table("audit_events")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_api_keys_lineage_id"))

    op.drop_table("api_keys")
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tenants_tier_slug"))

    op.drop_table("tenants")
    op.drop_table("tiers")
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_records_created_at"))

    op.drop_table("idempotency_records")
