"""Recomputing a session's chains from the stored records (§5.7).

A session verifies when its windows and events recompute under the session key,
the tenant's rolling chain recomputes under the tenant chain key, and every link
of that chain for the session still finds its window (so deleting a session's
last window, which its own chain cannot notice, is BROKEN at that link, G5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crp_gateway.audit.chain import (
    ChainStatus,
    EventRecord,
    TenantLink,
    Verification,
    WindowRecord,
    verify_coverage,
    verify_events,
    verify_tenant_chain,
    verify_windows,
)
from crp_gateway.audit.keys import session_hmac_key, tenant_chain_key
from crp_gateway.audit.recorder import TenantKeys
from crp_gateway.store.repositories import AuditRepository, TenantRepository


def _record(cls: type[Any], row: Any) -> Any:
    return cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})


def _summary(result: Verification) -> dict[str, Any]:
    return {
        "status": result.status.value,
        "checked": result.checked,
        "index": result.index,
        "reason": result.reason or None,
    }


@dataclass(frozen=True, slots=True)
class SessionVerification:
    session_id: str
    windows: Verification
    events: Verification
    tenant_chain: Verification
    coverage: Verification

    @property
    def status(self) -> ChainStatus:
        parts = (self.windows, self.events, self.tenant_chain, self.coverage)
        if any(part.status is ChainStatus.BROKEN for part in parts):
            return ChainStatus.BROKEN
        if any(part.status is ChainStatus.TRUNCATED for part in parts):
            return ChainStatus.TRUNCATED
        return ChainStatus.VALID

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "status": self.status.value,
            "windows": _summary(self.windows),
            "events": _summary(self.events),
            "tenant_chain": _summary(self.tenant_chain),
            "coverage": _summary(self.coverage),
        }


async def verify_session(
    sessions: async_sessionmaker[AsyncSession],
    keys: TenantKeys,
    tenant_id: str,
    session_id: str,
) -> SessionVerification | None:
    """The session's verification, or ``None`` if the tenant has no such session."""
    async with sessions() as session:
        audit = AuditRepository(session, tenant_id)
        window_rows = await audit.windows(session_id)
        event_rows = await audit.events(session_id)
        link_rows = await audit.tenant_links()
    if not window_rows and not any(r.session_id == session_id for r in link_rows):
        return None
    master = await keys.master(tenant_id)
    key = session_hmac_key(master, session_id)
    windows = [_record(WindowRecord, row) for row in window_rows]
    links = [_record(TenantLink, row) for row in link_rows]
    return SessionVerification(
        session_id=session_id,
        windows=verify_windows(windows, key, session_id=session_id),
        events=verify_events(
            [_record(EventRecord, row) for row in event_rows],
            key,
            session_id=session_id,
        ),
        tenant_chain=verify_tenant_chain(
            links, tenant_chain_key(master, tenant_id), tenant_id=tenant_id
        ),
        coverage=verify_coverage(windows, links, session_id=session_id),
    )


async def verify_store(
    sessions: async_sessionmaker[AsyncSession],
    keys: TenantKeys,
    *,
    tenant_id: str | None = None,
    session_id: str | None = None,
) -> list[tuple[str, SessionVerification]]:
    """Every audited session (of one tenant, or one session), verified."""
    async with sessions() as session:
        tenants = (
            [tenant_id] if tenant_id else await TenantRepository(session).all_ids()
        )
    results: list[tuple[str, SessionVerification]] = []
    for tenant in tenants:
        if session_id is not None:
            session_ids: list[str] = [session_id]
        else:
            async with sessions() as session:
                session_ids = list(await AuditRepository(session, tenant).session_ids())
        for sid in session_ids:
            result = await verify_session(sessions, keys, tenant, sid)
            if result is not None:
                results.append((tenant, result))
    return results
