"""Audit retention: the one code path that deletes audit records (015§6.4).

`erase_before` erases every session whose newest window was stored before a
cutoff (its windows and events) and puts a TRUNCATED marker (`chain.truncate`,
under the session HMAC key) in the place of each of its two chains. It then
erases the longest prefix of the tenant's rolling chain whose links all belong
to erased sessions and marks it under the tenant chain key. Verification
(``audit.verify``) reads the markers back: erased spans are TRUNCATED, never a
silent gap, and every record that remains still verifies.

Decisions:

* Markers are append-only like the records. When a later run erases a longer
  prefix of the tenant chain, its marker is ``truncate([old marker, *links])``:
  it covers ``seq`` 1..n and chains from the old marker's ``prev`` (``""``).
  The old marker stays; `chain.verify_tenant_chain` chains on from the longest
  prefix marker only and checks each shorter one still verifies and lies
  inside it.
* The newest link of a tenant chain is never erased: the audit writer chains
  the next link from it (it reads the tip from ``audit_tenant_links``).
* Nothing unverified is sealed: every session to erase must verify (windows,
  events, and its links naming exactly its windows), and so must the prefix of
  the tenant chain; else the tenant's run is refused and nothing is erased.
* A session that may still be continued is never erased: the cutoff must be at
  least a token lifetime (1 h, 007§2) in the past, since a continuation after
  erasure would restart the session's event chain under its marker.
* One transaction per tenant, holding that tenant's audit lock (as the writer
  takes it), so erasure and markers commit together without stopping every
  other tenant's calls for the length of the run. On PostgreSQL it first runs
  ``SET LOCAL crp.audit_retention = 'on'``, the one switch that lets the
  append-only trigger pass a DELETE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

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
    format_timestamp,
    truncate,
    verify_events,
    verify_tenant_chain,
    verify_windows,
)
from crp_gateway.audit.keys import session_hmac_key, tenant_chain_key
from crp_gateway.audit.master_keys import AUDIT_MASTER, TenantKeys
from crp_gateway.audit.session_token import DEFAULT_LIFETIME, KeyRing
from crp_gateway.audit.verify import chain_keys, master_of, truncation_of
from crp_gateway.logging import get_logger
from crp_gateway.store.database import transaction
from crp_gateway.store.models import AuditTruncation
from crp_gateway.store.models.base import utcnow
from crp_gateway.store.repositories import (
    AuditRepository,
    AuditRetentionRepository,
    TenantKeyRepository,
    TenantRepository,
)

__all__ = [
    "MAX_REASON_LENGTH",
    "MIN_AGE",
    "RetentionRefused",
    "RetentionReport",
    "TenantErasure",
    "erase_before",
]

log = get_logger("crp_gateway.audit")

#: A cutoff must be at least this far in the past (a session token's lifetime).
MIN_AGE = timedelta(seconds=DEFAULT_LIFETIME)
MAX_REASON_LENGTH = 200


class RetentionRefused(Exception):
    """The run was refused before anything was erased (the message says why)."""


@dataclass(frozen=True, slots=True)
class TenantErasure:
    """What one tenant's run erased (or, in a dry run, would erase)."""

    tenant_id: str
    sessions: tuple[str, ...] = ()
    windows: int = 0
    events: int = 0
    links: int = 0
    markers: int = 0


@dataclass(frozen=True, slots=True)
class RetentionReport:
    before: datetime
    dry_run: bool
    tenants: tuple[TenantErasure, ...] = field(default=())

    @property
    def sessions(self) -> int:
        return sum(len(t.sessions) for t in self.tenants)

    @property
    def windows(self) -> int:
        return sum(t.windows for t in self.tenants)

    @property
    def events(self) -> int:
        return sum(t.events for t in self.tenants)

    @property
    def links(self) -> int:
        return sum(t.links for t in self.tenants)

    @property
    def markers(self) -> int:
        return sum(t.markers for t in self.tenants)


@dataclass
class _Plan:
    """One tenant's erasure, computed and verified before anything is deleted."""

    tenant_id: str
    sessions: list[str] = field(default_factory=list)
    windows: int = 0
    events: int = 0
    markers: list[tuple[Truncation, int]] = field(default_factory=list)  # + version
    last_link: int = 0  # erase the tenant chain's links 1..last_link
    links: int = 0

    def report(self) -> TenantErasure:
        return TenantErasure(
            tenant_id=self.tenant_id,
            sessions=tuple(self.sessions),
            windows=self.windows,
            events=self.events,
            links=self.links,
            markers=len(self.markers),
        )


def _refuse_unless_ok(result: Verification, what: str) -> None:
    if result.status is ChainStatus.BROKEN:
        raise RetentionRefused(
            f"{what} is BROKEN at index {result.index} ({result.reason}); "
            "it is evidence and is not erased"
        )


def _check_arguments(before: datetime, reason: str, now: datetime) -> None:
    if before.tzinfo is None:
        raise ValueError("the cutoff must be timezone-aware")
    if not reason or not reason.isprintable() or len(reason) > MAX_REASON_LENGTH:
        raise ValueError(
            f"the reason must be printable text of 1..{MAX_REASON_LENGTH} characters"
        )
    if before > now - MIN_AGE:
        raise RetentionRefused(
            "the cutoff must be at least one session-token lifetime "
            f"({DEFAULT_LIFETIME} s) in the past: newer sessions may still continue"
        )


async def _plan_session(
    audit: AuditRepository,
    retention: AuditRetentionRepository,
    plan: _Plan,
    ring: KeyRing,
    session_id: str,
    *,
    erased_at: str,
    reason: str,
) -> set[str]:
    """Add one session's markers to ``plan``; return its windows' HMACs."""
    if await retention.markers(ChainKind.WINDOWS, session_id):
        raise RetentionRefused(f"session {session_id} has windows and a marker")
    window_rows = await audit.windows(session_id)
    # the session's own key version (sessions keep the one they started with)
    version = window_rows[0].key_version if window_rows else ring.current
    key = session_hmac_key(master_of(ring, version), session_id)
    windows = [_window(row) for row in window_rows]
    events = [_event(row) for row in await audit.events(session_id)]
    _refuse_unless_ok(
        verify_windows(windows, key, session_id=session_id),
        f"session {session_id}'s window chain",
    )
    _refuse_unless_ok(
        verify_events(events, key, session_id=session_id),
        f"session {session_id}'s event chain",
    )
    plan.sessions.append(session_id)
    plan.windows += len(windows)
    plan.events += len(events)
    if windows:
        marker = truncate(key, windows, erased_at=erased_at, reason=reason)
        plan.markers.append((marker, version))
    if events:
        marker = truncate(key, events, erased_at=erased_at, reason=reason)
        plan.markers.append((marker, version))
    return {window.hmac for window in windows}


def _window(row: object) -> WindowRecord:
    return WindowRecord(
        **{name: getattr(row, name) for name in WindowRecord.__dataclass_fields__}
    )


def _event(row: object) -> EventRecord:
    return EventRecord(
        **{name: getattr(row, name) for name in EventRecord.__dataclass_fields__}
    )


def _link(row: object) -> TenantLink:
    return TenantLink(
        **{name: getattr(row, name) for name in TenantLink.__dataclass_fields__}
    )


async def _plan_tenant_prefix(
    retention: AuditRetentionRepository,
    plan: _Plan,
    ring: KeyRing,
    erased_windows: dict[str, set[str]],
    *,
    erased_at: str,
    reason: str,
) -> None:
    """Add the marker of the tenant chain's longest erasable prefix to ``plan``."""
    tenant_id = plan.tenant_id
    rows = await retention.markers(ChainKind.TENANT, tenant_id)
    previous = sorted((truncation_of(row) for row in rows), key=lambda m: m.last)
    start = previous[-1].last + 1 if previous else 1
    link_rows = await retention.links_from(start)
    links = [_link(row) for row in link_rows]
    versions = {("link", row.seq): row.key_version for row in link_rows} | {
        ("marker", row.last): row.key_version for row in rows
    }
    kept = await retention.sessions_with_windows() - set(erased_windows)
    erased = set(await retention.erased_session_ids()) | set(erased_windows)
    linked: dict[str, set[str]] = {}
    for link in links:
        linked.setdefault(link.session_id, set()).add(link.window_hmac)
    for session_id, hmacs in erased_windows.items():
        if linked.get(session_id, set()) != hmacs:
            raise RetentionRefused(
                f"session {session_id}'s windows and tenant links disagree"
            )
    prefix: list[TenantItem] = []
    for link in links[:-1]:  # the newest link stays: the writer chains from it
        if link.session_id in kept or link.session_id not in erased:
            break
        prefix.append(link)
    if not prefix:
        return
    _refuse_unless_ok(
        verify_tenant_chain(
            [*previous, *prefix],
            chain_keys(ring, tenant_id, versions),
            tenant_id=tenant_id,
        ),
        f"tenant {tenant_id}'s rolling chain",
    )
    span = [previous[-1], *prefix] if previous else prefix
    key = tenant_chain_key(master_of(ring, ring.current), tenant_id)
    marker = truncate(key, span, erased_at=erased_at, reason=reason)
    plan.markers.append((marker, ring.current))
    plan.last_link = len(prefix) + start - 1
    plan.links = len(prefix)


async def _plan(
    session: AsyncSession,
    plan: _Plan,
    ring: KeyRing,
    *,
    before: datetime,
    erased_at: str,
    reason: str,
) -> None:
    audit = AuditRepository(session, plan.tenant_id)
    retention = AuditRetentionRepository(session, plan.tenant_id)
    erased_windows: dict[str, set[str]] = {}
    for session_id in await retention.sessions_ended_before(before):
        erased_windows[session_id] = await _plan_session(
            audit,
            retention,
            plan,
            ring,
            session_id,
            erased_at=erased_at,
            reason=reason,
        )
    await _plan_tenant_prefix(
        retention, plan, ring, erased_windows, erased_at=erased_at, reason=reason
    )


async def _apply(retention: AuditRetentionRepository, plan: _Plan) -> None:
    windows = events = 0
    for session_id in plan.sessions:
        erased = await retention.erase_session(session_id)
        windows, events = windows + erased[0], events + erased[1]
    links = await retention.erase_links_through(plan.last_link) if plan.links else 0
    if (windows, events, links) != (plan.windows, plan.events, plan.links):
        raise RuntimeError("audit records changed under the retention lock")
    for truncation, version in plan.markers:
        retention.add(_marker_row(plan.tenant_id, truncation, version))


def _marker_row(
    tenant_id: str, truncation: Truncation, version: int
) -> AuditTruncation:
    return AuditTruncation(
        tenant_id=tenant_id,
        created_at=utcnow(),
        key_version=version,
        **{name: getattr(truncation, name) for name in Truncation.__dataclass_fields__},
    )


async def _erase_tenant(
    sessions: async_sessionmaker[AsyncSession],
    keys: TenantKeys,
    tenant_id: str,
    *,
    before: datetime,
    erased_at: str,
    reason: str,
    dry_run: bool,
) -> TenantErasure:
    async with sessions() as session:
        if await TenantKeyRepository(session, tenant_id).get(AUDIT_MASTER) is None:
            return TenantErasure(tenant_id)  # no audit key: no audit records
    ring = await keys.ring(tenant_id)
    plan = _Plan(tenant_id)
    if dry_run:
        async with sessions() as session:
            await _plan(
                session, plan, ring, before=before, erased_at=erased_at, reason=reason
            )
        return plan.report()
    async with transaction(sessions) as session:
        retention = AuditRetentionRepository(session, tenant_id)
        await retention.allow_erasure()
        await _plan(
            session, plan, ring, before=before, erased_at=erased_at, reason=reason
        )
        await _apply(retention, plan)
    if plan.sessions or plan.links:
        log.info(
            "audit.retention_erased",
            tenant_id=tenant_id,
            sessions=len(plan.sessions),
            windows=plan.windows,
            events=plan.events,
            links=plan.links,
        )
    return plan.report()


async def erase_before(
    sessions: async_sessionmaker[AsyncSession],
    keys: TenantKeys,
    *,
    tenant_id: str | None,
    before: datetime,
    reason: str,
    dry_run: bool = False,
    now: datetime | None = None,
) -> RetentionReport:
    """Erase the sessions of one tenant (or every tenant) whose newest window
    was stored before ``before``, marking every erased span TRUNCATED.

    ``dry_run`` plans and verifies the same erasure without deleting anything.
    ``now`` (the clock, for tests) bounds the cutoff: see `MIN_AGE`. Raises
    `RetentionRefused` when a tenant's run was refused; tenants before it in
    the run stay erased (each commits on its own).
    """
    moment = now or utcnow()
    _check_arguments(before, reason, moment)
    erased_at = format_timestamp(moment)
    async with sessions() as session:
        if tenant_id is not None:
            if await TenantRepository(session).get(tenant_id) is None:
                raise RetentionRefused(f"no tenant {tenant_id}")
            tenants: Sequence[str] = [tenant_id]
        else:
            tenants = await TenantRepository(session).all_ids()
    done = [
        await _erase_tenant(
            sessions,
            keys,
            tenant,
            before=before,
            erased_at=erased_at,
            reason=reason,
            dry_run=dry_run,
        )
        for tenant in tenants
    ]
    return RetentionReport(
        before=before,
        dry_run=dry_run,
        tenants=tuple(t for t in done if t.sessions or t.links),
    )
