"""Every SQL statement the gateway runs, grouped by table.

Tenant isolation lives here: a :class:`TenantScoped` repository is built for one
tenant and every statement it issues goes through :meth:`TenantScoped._select`,
:meth:`TenantScoped._update` or :meth:`TenantScoped._add`, which pin
``tenant_id``. ``tests/store/test_tenant_scope.py`` checks that no tenant-owned
query bypasses them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Delete, Select, Table, Update, func, or_, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from crp_gateway.store.models import (
    ApiKey,
    AuditEvent,
    AuditTenantLink,
    AuditTruncation,
    AuditWindow,
    Base,
    ProviderCredential,
    SystemKey,
    Tenant,
    TenantKey,
    TenantOwned,
    UsageRecord,
)

T = TypeVar("T", bound=TenantOwned)


def _table(model: type[Base]) -> Table:
    return Base.metadata.tables[model.__tablename__]


class TenantScoped:
    """Base for repositories of tenant-owned rows: one instance, one tenant."""

    def __init__(self, session: AsyncSession, tenant_id: str) -> None:
        self._session = session
        self._tenant_id = tenant_id

    def _select(self, model: type[T]) -> Select[T]:
        return select(model).where(model.tenant_id == self._tenant_id)

    def _update(self, model: type[T]) -> Update:
        return update(model).where(model.tenant_id == self._tenant_id)

    def _add(self, row: TenantOwned) -> None:
        if row.tenant_id != self._tenant_id:
            raise ValueError("row belongs to another tenant")
        self._session.add(row)


class TenantRepository:
    """The ``tenants`` table itself (not tenant-scoped: it is the scope)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, tenant_id: str) -> Tenant | None:
        return await self._session.get(Tenant, tenant_id)

    async def all_ids(self) -> Sequence[str]:
        """Every tenant id, for operator commands that walk all tenants."""
        return (
            await self._session.scalars(select(Tenant.id).order_by(Tenant.id))
        ).all()

    async def email_taken(self, email: str) -> bool:
        statement = select(func.count()).where(Tenant.email == email)
        return bool(await self._session.scalar(statement))

    def add(self, tenant: Tenant) -> None:
        self._session.add(tenant)

    async def set_safety_policy(self, tenant_id: str, policy: str | None) -> None:
        await self._session.execute(
            update(Tenant).where(Tenant.id == tenant_id).values(safety_policy=policy)
        )


class ApiKeyLookup:
    """Authentication's one cross-tenant read: a key by its public id."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def active_key(self, public_id: str) -> ApiKey | None:
        statement = select(ApiKey).where(
            ApiKey.id == public_id, ApiKey.revoked_at.is_(None)
        )
        return await self._session.scalar(statement)

    async def record_last_used(self, seen: Iterable[tuple[str, datetime]]) -> None:
        for key_id, at in seen:
            await self._session.execute(
                update(ApiKey)
                .where(
                    ApiKey.id == key_id,
                    or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < at),
                )
                .values(last_used_at=at)
            )


class ApiKeyRepository(TenantScoped):
    def add(self, key: ApiKey) -> None:
        self._add(key)

    async def list_active(self) -> Sequence[ApiKey]:
        statement = (
            self._select(ApiKey)
            .where(ApiKey.revoked_at.is_(None))
            .order_by(ApiKey.created_at, ApiKey.id)
        )
        return (await self._session.scalars(statement)).all()

    async def get_active(self, key_id: str) -> ApiKey | None:
        statement = self._select(ApiKey).where(
            ApiKey.id == key_id, ApiKey.revoked_at.is_(None)
        )
        return await self._session.scalar(statement)

    async def revoke(self, key_id: str, at: datetime) -> bool:
        statement = (
            self._update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        result: Any = await self._session.execute(statement)
        return bool(result.rowcount)


class ProviderRepository(TenantScoped):
    def add(self, credential: ProviderCredential) -> None:
        self._add(credential)

    async def get(self, name: str) -> ProviderCredential | None:
        statement = self._select(ProviderCredential).where(
            ProviderCredential.name == name
        )
        return await self._session.scalar(statement)

    async def list(self) -> Sequence[ProviderCredential]:
        statement = self._select(ProviderCredential).order_by(ProviderCredential.name)
        return (await self._session.scalars(statement)).all()

    async def delete(self, name: str) -> bool:
        credential = await self.get(name)
        if credential is None:
            return False
        await self._session.delete(credential)
        return True


class VaultRows:
    """Every sealed row, across tenants, for ``crp-gateway rotate-secret`` only."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def provider_credentials(self) -> Sequence[ProviderCredential]:
        statement = select(ProviderCredential).with_for_update()
        return (await self._session.scalars(statement)).all()

    async def system_keys(self) -> Sequence[SystemKey]:
        statement = select(SystemKey).with_for_update()
        return (await self._session.scalars(statement)).all()

    async def tenant_keys(self) -> Sequence[TenantKey]:
        statement = select(TenantKey).with_for_update()
        return (await self._session.scalars(statement)).all()


class SystemKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, purpose: str) -> SystemKey | None:
        return await self._session.get(SystemKey, purpose)

    def add(self, key: SystemKey) -> None:
        self._session.add(key)


@dataclass(frozen=True, slots=True)
class UsageTotals:
    requests: int
    prompt_tokens: int
    completion_tokens: int


class UsageRepository(TenantScoped):
    async def totals_since(self, since: datetime) -> UsageTotals:
        statement = self._select(UsageRecord).where(UsageRecord.created_at >= since)
        counted = statement.with_only_columns(
            func.count(),
            func.coalesce(func.sum(UsageRecord.prompt_tokens), 0),
            func.coalesce(func.sum(UsageRecord.completion_tokens), 0),
        )
        row: Any = (await self._session.execute(counted)).one()
        return UsageTotals(int(row[0]), int(row[1]), int(row[2]))

    async def recent(self, limit: int = 100) -> Sequence[UsageRecord]:
        statement = (
            self._select(UsageRecord).order_by(UsageRecord.id.desc()).limit(limit)
        )
        return (await self._session.scalars(statement)).all()


class AuditRepository(TenantScoped):
    """Reading one tenant's audit records (writing goes through ``AuditLog``)."""

    async def windows(self, session_id: str) -> Sequence[AuditWindow]:
        statement = (
            self._select(AuditWindow)
            .where(AuditWindow.session_id == session_id)
            .order_by(AuditWindow.window_number, AuditWindow.id)
        )
        return (await self._session.scalars(statement)).all()

    async def events(self, session_id: str) -> Sequence[AuditEvent]:
        statement = (
            self._select(AuditEvent)
            .where(AuditEvent.session_id == session_id)
            .order_by(AuditEvent.seq)
        )
        return (await self._session.scalars(statement)).all()

    async def session_ids(self) -> Sequence[str]:
        statement = (
            self._select(AuditWindow)
            .with_only_columns(AuditWindow.session_id)
            .distinct()
            .order_by(AuditWindow.session_id)
        )
        return (await self._session.scalars(statement)).all()

    async def window_by_trail(self, trail_id: str) -> AuditWindow | None:
        statement = self._select(AuditWindow).where(AuditWindow.trail_id == trail_id)
        return await self._session.scalar(statement)

    async def tenant_links(self) -> Sequence[AuditTenantLink]:
        statement = self._select(AuditTenantLink).order_by(AuditTenantLink.seq)
        return (await self._session.scalars(statement)).all()


class TenantKeyRepository(TenantScoped):
    async def get(self, purpose: str) -> TenantKey | None:
        """The newest version of a key."""
        statement = (
            self._select(TenantKey)
            .where(TenantKey.purpose == purpose)
            .order_by(TenantKey.version.desc())
            .limit(1)
        )
        return await self._session.scalar(statement)

    async def versions(self, purpose: str) -> Sequence[TenantKey]:
        """Every version of a key, oldest first (the audit master keeps all)."""
        statement = (
            self._select(TenantKey)
            .where(TenantKey.purpose == purpose)
            .order_by(TenantKey.version)
        )
        return (await self._session.scalars(statement)).all()

    def add(self, key: TenantKey) -> None:
        self._add(key)

    async def replace(
        self,
        purpose: str,
        version: int,
        *,
        ciphertext: bytes,
        wrapped_key: bytes,
        kek_id: str,
        at: datetime,
    ) -> bool:
        """Store the key's next version, if ``version`` is still the current one."""
        statement = (
            self._update(TenantKey)
            .where(TenantKey.purpose == purpose, TenantKey.version == version)
            .values(
                version=version + 1,
                ciphertext=ciphertext,
                wrapped_key=wrapped_key,
                kek_id=kek_id,
                created_at=at,
            )
            .execution_options(synchronize_session=False)
        )
        result: Any = await self._session.execute(statement)
        return bool(result.rowcount)


def audit_lock_name(tenant_id: str) -> str:
    """The PostgreSQL advisory lock that serialises extending a tenant's audit
    chains (the audit writer and retention both take it)."""
    return f"crp-audit:{tenant_id}"


class AuditLog:
    """The SQLite audit writer's reads under its write lock (``audit.writer``).

    Synchronous on purpose: the writer runs a whole batch in a worker thread (one
    thread hop per batch instead of one per statement). PostgreSQL batches go
    straight to asyncpg instead, with advisory locks.
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def lock(self) -> None:
        """Take SQLite's write lock now, before the tips are read, so that two
        processes cannot read the same tip: a write statement that misses."""
        self._connection.execute(
            text("UPDATE audit_tenant_links SET seq = seq WHERE id = -1")
        )

    def tenant_tip(self, tenant_id: str) -> tuple[int, str]:
        """The last link's sequence number and HMAC, ``(0, "")`` for none."""
        statement = (
            select(AuditTenantLink.seq, AuditTenantLink.hmac)
            .where(AuditTenantLink.tenant_id == tenant_id)
            .order_by(AuditTenantLink.seq.desc())
            .limit(1)
        )
        row = self._connection.execute(statement).first()
        return (int(row[0]), str(row[1])) if row else (0, "")

    def event_tip(self, tenant_id: str, session_id: str) -> tuple[int, str]:
        """The session's last event's sequence number and HMAC, ``(0, "")``."""
        statement = (
            select(AuditEvent.seq, AuditEvent.hmac)
            .where(
                AuditEvent.tenant_id == tenant_id, AuditEvent.session_id == session_id
            )
            .order_by(AuditEvent.seq.desc())
            .limit(1)
        )
        row = self._connection.execute(statement).first()
        return (int(row[0]), str(row[1])) if row else (0, "")


class AuditRetentionRepository(TenantScoped):
    """One tenant's TRUNCATED markers, and the erasure they stand for (015§6.4).

    The deletes are the only ones of audit records; ``audit.retention`` runs
    them after `allow_erasure` in the transaction that adds the markers.
    """

    def _delete(self, model: type[Base]) -> Delete:
        table = _table(model)
        return table.delete().where(table.c.tenant_id == self._tenant_id)

    async def allow_erasure(self) -> None:
        """Lock the tenant's chains as the audit writer does, and (PostgreSQL)
        lift the append-only trigger for this transaction only."""
        if self._session.get_bind().dialect.name == "postgresql":
            await self._session.execute(text("SET LOCAL crp.audit_retention = 'on'"))
            await self._session.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:t, 0))"),
                {"t": audit_lock_name(self._tenant_id)},
            )
        else:  # a primary-key miss takes SQLite's write lock now
            await self._session.execute(
                self._update(AuditTenantLink)
                .where(AuditTenantLink.id == -1)
                .values(seq=AuditTenantLink.seq)
                .execution_options(synchronize_session=False)
            )

    async def markers(self, chain: str, chain_id: str) -> Sequence[AuditTruncation]:
        statement = (
            self._select(AuditTruncation)
            .where(AuditTruncation.chain == chain, AuditTruncation.chain_id == chain_id)
            .order_by(AuditTruncation.first, AuditTruncation.last, AuditTruncation.id)
        )
        return (await self._session.scalars(statement)).all()

    async def erased_session_ids(self) -> Sequence[str]:
        """Sessions with a window-chain marker (erased whole by retention)."""
        statement = (
            self._select(AuditTruncation)
            .with_only_columns(AuditTruncation.chain_id)
            .where(AuditTruncation.chain == "windows")
            .distinct()
            .order_by(AuditTruncation.chain_id)
        )
        return (await self._session.scalars(statement)).all()

    async def sessions_ended_before(self, before: datetime) -> Sequence[str]:
        """Sessions whose newest window was stored before ``before``."""
        statement = (
            self._select(AuditWindow)
            .with_only_columns(AuditWindow.session_id)
            .group_by(AuditWindow.session_id)
            .having(func.max(AuditWindow.created_at) < before)
            .order_by(AuditWindow.session_id)
        )
        return (await self._session.scalars(statement)).all()

    async def sessions_with_windows(self) -> set[str]:
        statement = (
            self._select(AuditWindow)
            .with_only_columns(AuditWindow.session_id)
            .distinct()
        )
        return set((await self._session.scalars(statement)).all())

    async def links_from(self, seq: int) -> Sequence[AuditTenantLink]:
        """The tenant chain from ``seq`` on, in order."""
        statement = (
            self._select(AuditTenantLink)
            .where(AuditTenantLink.seq >= seq)
            .order_by(AuditTenantLink.seq)
        )
        return (await self._session.scalars(statement)).all()

    async def erase_session(self, session_id: str) -> tuple[int, int]:
        """Delete a session's windows and events; their counts."""
        counts = []
        for model in (AuditWindow, AuditEvent):
            table = _table(model)
            result: Any = await self._session.execute(
                self._delete(model).where(table.c.session_id == session_id)
            )
            counts.append(int(result.rowcount))
        return counts[0], counts[1]

    async def erase_links_through(self, seq: int) -> int:
        """Delete the tenant chain's links ``1..seq``; their count."""
        table = _table(AuditTenantLink)
        result: Any = await self._session.execute(
            self._delete(AuditTenantLink).where(table.c.seq <= seq)
        )
        return int(result.rowcount)

    def add(self, marker: AuditTruncation) -> None:
        self._add(marker)
