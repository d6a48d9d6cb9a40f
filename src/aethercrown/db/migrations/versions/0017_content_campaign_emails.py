"""content campaign emails: an item may be the email of a churn or upsell campaign

A retention or upsell campaign's email is written by the content module and stored as an item
linked to its campaign (kind + id: the campaign lives in the churn or the metering tables, so the
link is not a foreign key). One email per campaign: the unique index makes a second writer's
insert fail instead of doubling the email. Both columns are nullable, so every existing item
stays as it is; no table is added, so the stored-row counts are unchanged.

Revision ID: 0017_content_campaign_emails
Revises: 0016_segment_message_ids
Create Date: 2026-12-03 12:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_content_campaign_emails"
down_revision: str | Sequence[str] | None = "0016_segment_message_ids"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("content_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("campaign_kind", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("campaign_id", sa.Uuid(), nullable=True))
        batch_op.create_index(
            "ux_content_items_campaign",
            ["tenant_id", "campaign_kind", "campaign_id"],
            unique=True,
        )


def downgrade() -> None:
    with op.batch_alter_table("content_items", schema=None) as batch_op:
        batch_op.drop_index("ux_content_items_campaign")
        batch_op.drop_column("campaign_id")
        batch_op.drop_column("campaign_kind")
