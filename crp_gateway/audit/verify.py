"""Recomputing a session's chains from the stored records (§5.7).

A session verifies when its windows and events recompute under the session key,
the tenant's rolling chain recomputes under the tenant chain key, and every link
of that chain for the session still finds its window (so deleting a session's
last window, which its own chain cannot notice, is BROKEN at that link, G5).

Spans erased by retention (``audit.retention``) are read back from
``audit_truncations`` and put in the place of the records they replace, so an
erased session verifies as TRUNCATED (a window marker and an event marker), a
tenant chain with an erased prefix as TRUNCATED, and a change to any record or
marker that remains as BROKEN (015§6.4).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crp_gateway.audit.chain import (
    ChainKind,
    ChainStatus,
    EventRecord,
    TenantItem,
    TenantLink,
    Truncation,
    Verification,
    WindowRecord,
    verify_coverage,
    verify_events,
    verify_tenant_chain,
    verify_windows,
)
from crp_gateway.audit.keys import session_hmac_key, tenant_chain_key
from crp_gateway.audit.master_keys import AUDIT_MASTER, TenantKeys
from crp_gateway.audit.session_token import KeyRing
from crp_gateway.store.models import AuditTruncation
from crp_gateway.store.repositories import (
    AuditRepository,
    AuditRetentionRepository,
    TenantKeyRepository,
    TenantRepository,
)

R = TypeVar("R", WindowRecord, EventRecord, TenantLink)


def _record(cls: type[Any], row: Any) -> Any:
    return cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})


def truncation_of(row: AuditTruncation) -> Truncation:
    """A stored marker as the chain module's `Truncation`."""
    result: Truncation = _record(Truncation, row)
    return result


def _position(item: WindowRecord | EventRecord | TenantLink | Truncation) -> Any:
    # A marker sorts before a record at its first index; markers that start
    # alike (successive tenant prefixes) shortest first.
    if isinstance(item, Truncation):
        return (item.first, 0, item.last)
    if isinstance(item, WindowRecord):
        return (item.window_number, 1, 0)
    return (item.seq, 1, 0)


def in_chain_order(
    records: Iterable[R], markers: Iterable[Truncation]
) -> list[R | Truncation]:
    """Records (already in chain order) with markers in the place they erased.

    The sort is stable, so windows sharing a number (fan-out) keep their order.
    """
    items: list[R | Truncation] = list(records)
    items.extend(markers)
    items.sort(key=_position)
    return items


def _summary(result: Verification) -> dict[str, Any]:
    return {
        "status": result.status.value,
        "checked": result.checked,
        "index": result.index,
        "reason": result.reason or None,
        "truncated": [list(span) for span in result.truncated],
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
        """BROKEN if any part is; TRUNCATED if the session lost records.

        The tenant chain's erased prefix holds only erased sessions' links, so
        by itself it does not make this session TRUNCATED (``tenant_chain``
        still shows it).
        """
        parts = (self.windows, self.events, self.tenant_chain, self.coverage)
        if any(part.status is ChainStatus.BROKEN for part in parts):
            return ChainStatus.BROKEN
        own = (self.windows, self.events, self.coverage)
        if any(part.status is ChainStatus.TRUNCATED for part in own):
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


@dataclass(frozen=True, slots=True)
class TenantVerification:
    """A tenant's rolling chain and the sessions verified against it."""

    tenant_id: str
    chain: Verification
    sessions: tuple[SessionVerification, ...]

    @property
    def status(self) -> ChainStatus:
        statuses = [self.chain.status, *(s.status for s in self.sessions)]
        for status in (ChainStatus.BROKEN, ChainStatus.TRUNCATED):
            if status in statuses:
                return status
        return ChainStatus.VALID


@dataclass(frozen=True, slots=True)
class _TenantChain:
    tenant_id: str
    ring: KeyRing
    links: Sequence[TenantItem]
    result: Verification


def master_of(ring: KeyRing, version: int) -> bytes:
    """The master key of ``version``; a record naming an unknown one cannot
    verify, so an all-zero key stands in (its HMACs never match)."""
    keys = ring.candidates(version)
    return keys[0] if keys else bytes(32)


def chain_keys(
    ring: KeyRing, tenant_id: str, versions: Mapping[tuple[str, int], int]
) -> Callable[[TenantItem], bytes]:
    """Each tenant-chain item's key, by the version its row names
    (``versions``: ("link", seq) or ("marker", last) -> key version)."""
    derived: dict[int, bytes] = {}

    def key(item: TenantItem) -> bytes:
        position = (
            ("marker", item.last)
            if isinstance(item, Truncation)
            else ("link", item.seq)
        )
        version = versions.get(position, ring.current)
        if version not in derived:
            derived[version] = tenant_chain_key(master_of(ring, version), tenant_id)
        return derived[version]

    return key


async def _tenant_chain(
    sessions: async_sessionmaker[AsyncSession], keys: TenantKeys, tenant_id: str
) -> _TenantChain | None:
    """The tenant's verified rolling chain; None if it has no audit key, so no
    audit records (verifying never creates the key)."""
    async with sessions() as session:
        if await TenantKeyRepository(session, tenant_id).get(AUDIT_MASTER) is None:
            return None
        link_rows = await AuditRepository(session, tenant_id).tenant_links()
        retention = AuditRetentionRepository(session, tenant_id)
        marker_rows = await retention.markers(ChainKind.TENANT, tenant_id)
    ring = await keys.ring(tenant_id)
    links = in_chain_order(
        (_record(TenantLink, row) for row in link_rows),
        (truncation_of(row) for row in marker_rows),
    )
    versions = {("link", row.seq): row.key_version for row in link_rows} | {
        ("marker", row.last): row.key_version for row in marker_rows
    }
    result = verify_tenant_chain(
        links, chain_keys(ring, tenant_id, versions), tenant_id=tenant_id
    )
    return _TenantChain(tenant_id, ring, links, result)


async def _verify_one(
    sessions: async_sessionmaker[AsyncSession], chain: _TenantChain, session_id: str
) -> SessionVerification | None:
    tenant_id = chain.tenant_id
    async with sessions() as session:
        audit = AuditRepository(session, tenant_id)
        retention = AuditRetentionRepository(session, tenant_id)
        window_rows = await audit.windows(session_id)
        event_rows = await audit.events(session_id)
        window_markers = await retention.markers(ChainKind.WINDOWS, session_id)
        event_markers = await retention.markers(ChainKind.EVENTS, session_id)
    linked = any(
        isinstance(link, TenantLink) and link.session_id == session_id
        for link in chain.links
    )
    if not window_rows and not window_markers and not linked:
        return None
    # One session, one key version (the one it started with, sessions.py).
    versions = [row.key_version for row in window_rows] + [
        row.key_version for row in window_markers
    ]
    version = versions[0] if versions else chain.ring.current
    key = session_hmac_key(master_of(chain.ring, version), session_id)
    windows = in_chain_order(
        (_record(WindowRecord, row) for row in window_rows),
        (truncation_of(row) for row in window_markers),
    )
    events = in_chain_order(
        (_record(EventRecord, row) for row in event_rows),
        (truncation_of(row) for row in event_markers),
    )
    return SessionVerification(
        session_id=session_id,
        windows=verify_windows(windows, key, session_id=session_id),
        events=verify_events(events, key, session_id=session_id),
        tenant_chain=chain.result,
        coverage=verify_coverage(windows, chain.links, session_id=session_id),
    )


async def verify_session(
    sessions: async_sessionmaker[AsyncSession],
    keys: TenantKeys,
    tenant_id: str,
    session_id: str,
) -> SessionVerification | None:
    """The session's verification, or ``None`` if the tenant has no such session
    (neither records nor TRUNCATED markers)."""
    chain = await _tenant_chain(sessions, keys, tenant_id)
    if chain is None:
        return None
    return await _verify_one(sessions, chain, session_id)


async def _session_ids(
    sessions: async_sessionmaker[AsyncSession], tenant_id: str
) -> list[str]:
    """Sessions with windows, and sessions erased by retention."""
    async with sessions() as session:
        kept = await AuditRepository(session, tenant_id).session_ids()
        erased = await AuditRetentionRepository(session, tenant_id).erased_session_ids()
    return sorted({*kept, *erased})


async def verify_store(
    sessions: async_sessionmaker[AsyncSession],
    keys: TenantKeys,
    *,
    tenant_id: str | None = None,
    session_id: str | None = None,
) -> list[TenantVerification]:
    """Every tenant with audit records (or one), its rolling chain verified
    once, and each of its sessions (or one), erased ones included."""
    async with sessions() as session:
        tenants = (
            [tenant_id] if tenant_id else await TenantRepository(session).all_ids()
        )
    results: list[TenantVerification] = []
    for tenant in tenants:
        chain = await _tenant_chain(sessions, keys, tenant)
        if chain is None:
            continue
        session_ids = (
            [session_id]
            if session_id is not None
            else await _session_ids(sessions, tenant)
        )
        verified = [await _verify_one(sessions, chain, sid) for sid in session_ids]
        results.append(
            TenantVerification(
                tenant, chain.result, tuple(v for v in verified if v is not None)
            )
        )
    return results
