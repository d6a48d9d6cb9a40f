"""API keys and other managed secrets, with their rotation lineage."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from aethercrown.clock import utcnow
from aethercrown.db.base import Base, UUIDPrimaryKey


class ApiKey(UUIDPrimaryKey, Base):
    """A secret. Only its SHA-256 is kept, except webhook secrets, which are kept encrypted
    because signing needs the secret itself."""

    __tablename__ = "api_keys"

    # NULL for operator (admin) keys, which belong to the installation.
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True, index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), default="api_key")
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    display_prefix: Mapped[str] = mapped_column(String(20))
    encrypted_secret: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # Managed keys carry a rotation schedule by security level.
    managed: Mapped[bool] = mapped_column(Boolean, default=False)
    security_level: Mapped[str | None] = mapped_column(String(20), nullable=True)
    rotation_interval_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Every key of one rotation chain shares the lineage id of the first.
    lineage_id: Mapped[uuid.UUID] = mapped_column(index=True)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    rotated_to_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    created_by: Mapped[str] = mapped_column(String(100), default="system")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)
