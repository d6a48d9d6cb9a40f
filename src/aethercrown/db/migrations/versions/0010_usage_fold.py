"""usage rollups folded after ingestion: the fold cursor, and never-reused event ids

Revision ID: 0010_usage_fold
Revises: 0007_metering
Create Date: 2026-11-26 00:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import aethercrown.db.base

revision: str = "0010_usage_fold"
down_revision: str | Sequence[str] | None = "0007_metering"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_fold_cursor",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.Column("folded_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_usage_fold_cursor")),
    )
    # Events stored before this revision were folded as they arrived: start after them.
    op.execute(
        "INSERT INTO usage_fold_cursor (name, last_event_id) "
        "SELECT 'usage', COALESCE(MAX(id), 0) FROM usage_events"
    )
    if op.get_bind().dialect.name == "sqlite":
        # SQLite reuses the highest rowid after a delete unless the table is AUTOINCREMENT;
        # a reused id at or below the cursor would never be folded. (PostgreSQL's identity
        # sequence never reuses.)
        with op.batch_alter_table(
            "usage_events", recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass


def downgrade() -> None:
    op.drop_table("usage_fold_cursor")
