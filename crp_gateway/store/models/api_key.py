from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crp_gateway.store.models.base import Base, TenantOwned, UTCDateTime, utcnow


class ApiKey(TenantOwned, Base):
    """A gateway key. ``id`` is the key's public id; the secret is only hashed.

    ``system_id`` binds the key to a registered AI system of the same tenant
    (its EU AI Act class and default policy); ``None`` is an unregistered caller.
    """

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64))
    hint: Mapped[str] = mapped_column(String(40))
    rpm_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    safety_policy: Mapped[str | None] = mapped_column(Text, nullable=True)
    system_id: Mapped[str | None] = mapped_column(
        ForeignKey("ai_systems.id"), index=True, nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
