"""webhook delivery leases

A runner claims due deliveries for a while, sends them with no transaction open, then records
the outcomes; an expired lease may be claimed again.

Revision ID: 0011_webhook_lease
Revises: 0003_webhooks
Create Date: 2026-12-02 14:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import aethercrown.db.base

revision: str = "0011_webhook_lease"
down_revision: str | Sequence[str] | None = "0003_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "claimed_until", aethercrown.db.base.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(sa.Column("claim_token", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_column("claim_token")
        batch_op.drop_column("claimed_until")
