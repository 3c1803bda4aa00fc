"""The durable outbox: messages to POST to a tenant's endpoint, at least once.

A row is written in the same transaction as the audit record it reports on, so a
message exists exactly when its record does. ``outbox.dispatcher`` delivers it
and moves it from ``pending`` to ``delivered``, or to ``dead`` after its last
attempt. While a dispatcher holds a message, ``next_attempt_at`` is its lease.

``last_error`` is our own short wording of the failure (``http 500``,
``timeout``, ``refused: address not public``); it never carries a URL, a query
string or anything the receiver sent back.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crp_gateway.store.models.base import Base, TenantOwned, UTCDateTime, utcnow

#: Longest ``last_error`` kept; longer wording is cut.
LAST_ERROR_LENGTH = 200


class OutboxStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class OutboxMessage(TenantOwned, Base):
    __tablename__ = "outbox_messages"
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        Index("ix_outbox_messages_due", "status", "next_attempt_at"),
        Index("ix_outbox_messages_tenant_created", "tenant_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    target_url: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    idempotency_key: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(
        String(LAST_ERROR_LENGTH), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
