"""segment message ids: identify and group calls deduplicated by messageId per source

A replayed ``identify`` or ``group`` (an SDK retrying a batch whose answer it lost) must change
nothing. ``track`` calls were deduplicated already (the activity event keeps the message id);
identify and group change rows in place, so their message ids are kept here, one row per
(source, message id). A tenant table: row-level security on PostgreSQL, and its rows counted
by the stored-row quota's triggers like every other.

Revision ID: 0016_segment_message_ids
Revises: 0015_tenant_stored_rows
Create Date: 2026-12-03 12:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import aethercrown.db.base
from aethercrown.db import row_counts, tenant_scope

revision: str = "0016_segment_message_ids"
down_revision: str | Sequence[str] | None = "0015_tenant_stored_rows"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "segment_messages"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("received_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["segment_sources.id"],
            name=op.f("fk_segment_messages_source_id_segment_sources"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_segment_messages_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_messages")),
        sa.UniqueConstraint(
            "tenant_id",
            "source_id",
            "message_id",
            name=op.f("uq_segment_messages_tenant_id_source_id_message_id"),
        ),
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_segment_messages_tenant_id"), ["tenant_id"])
    connection = op.get_bind()
    row_counts.count_tenant_rows(connection, TABLE)
    if connection.dialect.name == "postgresql":
        tenant_scope.secure_tenant_table(connection, TABLE)


def downgrade() -> None:
    connection = op.get_bind()
    row_counts.uncount_tenant_rows(connection, TABLE)
    if connection.dialect.name == "postgresql":
        tenant_scope.unsecure_tenant_table(connection, TABLE)
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_segment_messages_tenant_id"))
    op.drop_table(TABLE)
