"""The console's sign-in sessions: a random id the browser holds in a cookie, of which only the
SHA-256 is stored, bound to the API key that signed in (revoking the key ends its sessions)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from aethercrown.clock import utcnow
from aethercrown.core.tenancy import TenantScoped
from aethercrown.db.base import Base


class WebSession(TenantScoped, Base):
    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
