"""segment message ids pruned by age: an index on segment_messages.received_at

The daily ``connectors.segment_messages_prune`` job deletes the message ids older than the
retention (``connectors.jobs.SEGMENT_MESSAGE_RETENTION``) in chunks; the index finds them
without scanning the table.

Revision ID: 0018_segment_message_age
Revises: 0017_content_campaign_emails
Create Date: 2026-12-03 16:05:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018_segment_message_age"
down_revision: str | Sequence[str] | None = "0017_content_campaign_emails"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "segment_messages"


def upgrade() -> None:
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_segment_messages_received_at"), ["received_at"])


def downgrade() -> None:
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_segment_messages_received_at"))
