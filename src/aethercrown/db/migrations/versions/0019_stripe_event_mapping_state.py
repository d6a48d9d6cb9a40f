"""stripe event mapping state: webhooks are acknowledged once stored, mapped later in batches

The Stripe webhook stores the raw event and answers; a job maps unmapped events in batches.
Each event now records when it was mapped (empty: pending), and for an event whose object could
not be mapped, the failed attempts, the last error and when to try again. Events stored before
this migration were mapped when they arrived, so they are marked mapped at their arrival. No
table is added, so the stored-row counts and row-level security are unchanged.

Revision ID: 0019_stripe_event_mapping_state
Revises: 0018_segment_message_age
Create Date: 2026-12-03 15:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import aethercrown.db.base

revision: str = "0019_stripe_event_mapping_state"
down_revision: str | Sequence[str] | None = "0018_segment_message_age"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "stripe_events"


def upgrade() -> None:
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("mapped_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("map_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("map_error", sa.String(length=2000), nullable=True))
        batch_op.add_column(
            sa.Column("retry_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute(sa.text(f"UPDATE {TABLE} SET mapped_at = received_at"))
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index(
            "ix_stripe_events_unmapped",
            ["tenant_id", "id"],
            unique=False,
            postgresql_where=sa.text("mapped_at IS NULL"),
            sqlite_where=sa.text("mapped_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_index("ix_stripe_events_unmapped")
        batch_op.drop_column("retry_at")
        batch_op.drop_column("map_error")
        batch_op.drop_column("map_attempts")
        batch_op.drop_column("mapped_at")
