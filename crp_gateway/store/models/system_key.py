from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from crp_gateway.store.models.base import Base, UTCDateTime, utcnow


class SystemKey(Base):
    """A random key of the gateway's own (not a tenant's), sealed by the vault.

    ``purpose`` names its use, e.g. ``gateway-key-hash``. It belongs to no tenant.
    """

    __tablename__ = "system_keys"

    purpose: Mapped[str] = mapped_column(String(64), primary_key=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    kek_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
