"""stripe dead events: set aside after too many failed mappings; invoices by subscription

After ``stripe_mapping_max_attempts`` failed attempts an event is marked dead (``dead_at``,
keeping its last error): the mapping job no longer claims it, and its object is mapped from its
other events. An operator retries it (it is pending again) or discards it (``discarded_at``: it
stays stored, so a redelivery of the same event id changes nothing, but is never mapped). The
mapping looks up the invoices of the subscriptions it maps; ``stripe_invoices`` had no index for
that. No table is added, so the stored-row counts and row-level security are unchanged.

Revision ID: 0020_stripe_dead_events
Revises: 0019_stripe_event_mapping_state
Create Date: 2026-12-03 19:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import aethercrown.db.base

revision: str = "0020_stripe_dead_events"
down_revision: str | Sequence[str] | None = "0019_stripe_event_mapping_state"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "stripe_events"


def upgrade() -> None:
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("dead_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("discarded_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("stripe_invoices", schema=None) as batch_op:
        batch_op.create_index(
            "ix_stripe_invoices_tenant_subscription", ["tenant_id", "subscription"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("stripe_invoices", schema=None) as batch_op:
        batch_op.drop_index("ix_stripe_invoices_tenant_subscription")
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_column("discarded_at")
        batch_op.drop_column("dead_at")
