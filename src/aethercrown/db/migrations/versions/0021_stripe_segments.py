"""stripe subscription segments: the segments the mapping wrote, by Stripe subscription

Revision ID: 0021_stripe_segments
Revises: 0020_stripe_dead_events
Create Date: 2026-12-04 14:27:34
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from aethercrown.db import row_counts, tenant_scope

revision: str = "0021_stripe_segments"
down_revision: str | Sequence[str] | None = "0020_stripe_dead_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "stripe_subscription_segments"

# The segments mapped so far: the subscriptions named "<a Stripe subscription's id>:…" (what the
# mapping found by LIKE before this table). substr/length, not LIKE: "_" in Stripe ids would be
# a wildcard.
_FILL = f"""
INSERT INTO {TABLE} (tenant_id, subscription, segment)
SELECT s.tenant_id, e.object_id, s.external_id
FROM subscriptions s
JOIN (
    SELECT DISTINCT tenant_id, object_id FROM stripe_events WHERE object_type = 'subscription'
) e ON e.tenant_id = s.tenant_id
    AND substr(s.external_id, 1, length(e.object_id) + 1) = e.object_id || ':'
"""


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("subscription", sa.String(length=255), nullable=False),
        sa.Column("segment", sa.String(length=200), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_stripe_subscription_segments_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_subscription_segments")),
        sa.UniqueConstraint(
            "tenant_id", "segment", name=op.f("uq_stripe_subscription_segments_tenant_id_segment")
        ),
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_stripe_subscription_segments_tenant_id"), ["tenant_id"], unique=False
        )
        batch_op.create_index(
            "ix_stripe_subscription_segments_tenant_subscription",
            ["tenant_id", "subscription"],
            unique=False,
        )
    connection = op.get_bind()
    row_counts.count_tenant_rows(connection, TABLE)
    if connection.dialect.name == "postgresql":
        # Every tenant's rows, whatever role runs the migration (row-level security is forced).
        connection.execute(sa.text("SELECT set_config('aethercrown.all_tenants', 'on', true)"))
    connection.execute(sa.text(_FILL))
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT set_config('aethercrown.all_tenants', '', true)"))
        tenant_scope.secure_tenant_table(connection, TABLE)


def downgrade() -> None:
    connection = op.get_bind()
    row_counts.uncount_tenant_rows(connection, TABLE)
    if connection.dialect.name == "postgresql":
        tenant_scope.unsecure_tenant_table(connection, TABLE)
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_index("ix_stripe_subscription_segments_tenant_subscription")
        batch_op.drop_index(batch_op.f("ix_stripe_subscription_segments_tenant_id"))
    op.drop_table(TABLE)
