"""ticket first responses: when each support ticket was first answered (SLA first response)

Revision ID: 0014_ticket_first_responses
Revises: 0013_row_level_security
Create Date: 2026-12-03 07:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import aethercrown.db.base
from aethercrown.db import tenant_scope

revision: str = "0014_ticket_first_responses"
down_revision: str | Sequence[str] | None = "0013_row_level_security"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "ticket_first_responses"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("responded_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", aethercrown.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["support_tickets.id"],
            name=op.f("fk_ticket_first_responses_ticket_id_support_tickets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_ticket_first_responses_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_first_responses")),
        sa.UniqueConstraint(
            "tenant_id", "ticket_id", name=op.f("uq_ticket_first_responses_tenant_id_ticket_id")
        ),
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ticket_first_responses_tenant_id"), ["tenant_id"], unique=False
        )
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        tenant_scope.secure_tenant_table(connection, TABLE)
        tenant_scope.grant_app_role(connection)


def downgrade() -> None:
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_first_responses_tenant_id"))
    op.drop_table(TABLE)
