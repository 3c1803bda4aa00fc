"""The audit store: append-only tables mirroring ``audit.chain``'s records.

Each row carries exactly the fields its HMAC covers (stored verbatim, timestamps
as the RFC 3339 strings that were hashed) plus the call's metadata. On
PostgreSQL a trigger refuses UPDATE and DELETE on these tables unless the
transaction set ``crp.audit_retention = 'on'`` (the retention path, which marks
erased spans TRUNCATED in ``audit_truncations``, 015§6.4).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from crp_gateway.store.models.base import Base, TenantOwned, UTCDateTime, utcnow

_ID = BigInteger().with_variant(Integer, "sqlite")


class AuditWindow(TenantOwned, Base):
    __tablename__ = "audit_windows"
    __table_args__ = (
        UniqueConstraint("window_id"),
        Index("ix_audit_windows_session", "tenant_id", "session_id", "window_number"),
        Index("ix_audit_windows_trail", "tenant_id", "trail_id"),
        Index("ix_audit_windows_created", "tenant_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(48))
    window_id: Mapped[str] = mapped_column(String(48))
    window_number: Mapped[int] = mapped_column(Integer)
    timestamp: Mapped[str] = mapped_column(String(40))
    content_hash: Mapped[str] = mapped_column(String(71))
    dpe_report_hash: Mapped[str] = mapped_column(String(71))
    prev_hmac: Mapped[str] = mapped_column(Text)
    hmac: Mapped[str] = mapped_column(String(71))
    trail_id: Mapped[str] = mapped_column(String(48))
    request_id: Mapped[str] = mapped_column(String(80))
    key_id: Mapped[str] = mapped_column(String(32))
    endpoint: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(16))
    status: Mapped[int] = mapped_column(Integer)
    #: The tenant master key version the session's HMAC key comes from.
    key_version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuditEvent(TenantOwned, Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("session_id", "seq"),
        Index("ix_audit_events_session", "tenant_id", "session_id", "seq"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(48))
    seq: Mapped[int] = mapped_column(Integer)
    event_type: Mapped[str] = mapped_column(String(48))
    severity: Mapped[str] = mapped_column(String(16))
    timestamp: Mapped[str] = mapped_column(String(40))
    window_id: Mapped[str] = mapped_column(String(48))
    data: Mapped[str] = mapped_column(Text)
    data_hash: Mapped[str] = mapped_column(String(71))
    prev_hmac: Mapped[str] = mapped_column(String(71))
    hmac: Mapped[str] = mapped_column(String(71))
    key_version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuditTenantLink(TenantOwned, Base):
    """The tenant's rolling chain over every window (G5)."""

    __tablename__ = "audit_tenant_links"
    __table_args__ = (
        UniqueConstraint("tenant_id", "seq"),
        Index("ix_audit_tenant_links_session", "tenant_id", "session_id", "seq"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(Integer)
    timestamp: Mapped[str] = mapped_column(String(40))
    session_id: Mapped[str] = mapped_column(String(48))
    window_id: Mapped[str] = mapped_column(String(48))
    window_number: Mapped[int] = mapped_column(Integer)
    window_hmac: Mapped[str] = mapped_column(String(71))
    prev_hmac: Mapped[str] = mapped_column(String(71))
    hmac: Mapped[str] = mapped_column(String(71))
    #: The tenant master key version of this link's chain key.
    key_version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuditTruncation(TenantOwned, Base):
    """A TRUNCATED marker: one erased span of one chain (015§6.4).

    The columns are ``chain.Truncation``'s fields: ``chain`` is ``windows``,
    ``events`` (``chain_id`` a session id) or ``tenant`` (the tenant id);
    ``first``/``last`` are window numbers or ``seq`` values. Written only by the
    retention path (``audit.retention``), in the transaction that erases the span.
    """

    __tablename__ = "audit_truncations"
    __table_args__ = (
        Index("ix_audit_truncations_chain", "tenant_id", "chain", "chain_id", "last"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    chain: Mapped[str] = mapped_column(String(16))
    chain_id: Mapped[str] = mapped_column(String(48))
    first: Mapped[int] = mapped_column(Integer)
    last: Mapped[int] = mapped_column(Integer)
    erased_at: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(200))
    prev_hmac: Mapped[str] = mapped_column(Text)
    last_hmac: Mapped[str] = mapped_column(String(71))
    hmac: Mapped[str] = mapped_column(String(71))
    #: The master key version of the key the marker is signed with.
    key_version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TenantKey(TenantOwned, Base):
    """A tenant's own random key (e.g. the audit master key), sealed by the vault.

    A purpose may keep several versions (the audit master keeps every one)."""

    __tablename__ = "tenant_keys"
    __table_args__ = (
        UniqueConstraint(
            "tenant_id", "purpose", "version", name="uq_tenant_keys_version"
        ),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    purpose: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    kek_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
