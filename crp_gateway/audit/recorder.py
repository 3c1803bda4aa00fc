"""One audit record per call: a chained window, its events and a tenant link.

Every call, halted ones included (G19), becomes a window of its own session
(G14: a call without a session token starts a new session) with the events
``SESSION_CREATED`` and ``DISPATCH_COMPLETED`` or ``SAFETY_HALT``, and one link of
the tenant's rolling chain (G5). Keys come from the tenant's audit master key
(random, sealed by the vault, created on first use; §5.4). The record is durable
before :meth:`AuditRecorder.record` returns (``writer.AuditWriter``), and the
returned :class:`SessionFacts` become the session and provenance headers.

``content_hash`` covers the answer text the scanners read (G6);
``dpe_report_hash`` covers our analysis record: the outcome, the violated
directives, the heuristic risk and its method id, and ``halted`` (never
invented: an unscanned call hashes ``{}``).
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crp_gateway.audit import ids
from crp_gateway.audit.chain import (
    JSONValue,
    TenantLink,
    content_hash,
    dpe_report_hash,
    format_timestamp,
    new_event,
    new_window,
    standalone_window_hmac,
    tenant_link_hmac,
)
from crp_gateway.audit.keys import session_hmac_key, tenant_chain_key
from crp_gateway.audit.writer import AuditEntry, AuditWriter
from crp_gateway.governance.headers import ChainIntegrity, SessionFacts
from crp_gateway.store.database import transaction
from crp_gateway.store.models import TenantKey
from crp_gateway.store.models.base import utcnow
from crp_gateway.store.repositories import TenantKeyRepository
from crp_gateway.vault import Context, Envelope, Vault

AUDIT_MASTER = "audit-master"
_CACHED_TENANTS = 10_000


def master_context(tenant_id: str, version: int) -> Context:
    return Context(owner=tenant_id, name=AUDIT_MASTER, version=version)


class TenantKeys:
    """Each tenant's audit master key, created on first use, cached opened."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], vault: Vault):
        self._sessions = sessions
        self._vault = vault
        self._cache: OrderedDict[str, bytes] = OrderedDict()

    async def master(self, tenant_id: str) -> bytes:
        if (cached := self._cache.get(tenant_id)) is not None:
            return cached
        row = await self._load(tenant_id)
        if row is None:
            await self._create(tenant_id)
            row = await self._load(tenant_id)
        if row is None:
            raise RuntimeError("the tenant's audit key vanished after creation")
        envelope = Envelope(row.ciphertext, row.wrapped_key, row.kek_id)
        key = self._vault.open(envelope, master_context(tenant_id, row.version))
        self._cache[tenant_id] = key
        if len(self._cache) > _CACHED_TENANTS:
            self._cache.popitem(last=False)
        return key

    async def _load(self, tenant_id: str) -> TenantKey | None:
        async with self._sessions() as session:
            return await TenantKeyRepository(session, tenant_id).get(AUDIT_MASTER)

    async def _create(self, tenant_id: str) -> None:
        envelope = self._vault.seal(
            secrets.token_bytes(32), master_context(tenant_id, 1)
        )
        try:
            async with transaction(self._sessions) as session:
                TenantKeyRepository(session, tenant_id).add(
                    TenantKey(
                        tenant_id=tenant_id,
                        purpose=AUDIT_MASTER,
                        version=1,
                        ciphertext=envelope.ciphertext,
                        wrapped_key=envelope.wrapped_key,
                        kek_id=envelope.kek_id,
                    )
                )
        except IntegrityError:
            pass  # another replica created it first


@dataclass(frozen=True, slots=True)
class CallRecord:
    """What the data path knows of a finished (or halted) call."""

    tenant_id: str
    key_id: str
    request_id: str
    endpoint: str
    provider: str
    model: str
    status: int
    outcome: str
    output_text: str
    report: dict[str, JSONValue] = field(default_factory=dict)
    halt_reason: str | None = None
    tokens_used: int | None = None
    policy_hash: str | None = None


class AuditRecorder:
    def __init__(self, writer: AuditWriter, keys: TenantKeys, *, gateway_url: str):
        self._writer = writer
        self.keys = keys
        self._trail_base = f"{gateway_url.rstrip('/')}/crp/v3/trail/"

    async def record(self, call: CallRecord) -> SessionFacts:
        """Chain and store ``call``; return its session headers' facts."""
        master = await self.keys.master(call.tenant_id)
        session_id, window_id = ids.new_session_id(), ids.new_window_id()
        trail_id = ids.new_trail_id()
        timestamp = format_timestamp(utcnow())
        key = session_hmac_key(master, session_id)
        window = new_window(
            key,
            (),
            session_id=session_id,
            window_id=window_id,
            timestamp=timestamp,
            content_hash=content_hash(call.output_text),
            dpe_report_hash=dpe_report_hash(call.report),
        )
        created = new_event(
            key,
            None,
            session_id=session_id,
            event_type="SESSION_CREATED",
            timestamp=timestamp,
            window_id=window_id,
            data={
                "session_id": session_id,
                "api_key_id": call.key_id,
                "safety_policy_hash": call.policy_hash or "",
            },
        )
        closing = new_event(
            key,
            created,
            session_id=session_id,
            event_type="SAFETY_HALT" if call.halt_reason else "DISPATCH_COMPLETED",
            timestamp=timestamp,
            window_id=window_id,
            data=_closing_data(call, window.content_hash),
        )
        chain_key = tenant_chain_key(master, call.tenant_id)

        def link(seq: int, prev: str) -> dict[str, Any]:
            unsigned = TenantLink(
                tenant_id=call.tenant_id,
                seq=seq,
                timestamp=timestamp,
                session_id=session_id,
                window_id=window_id,
                window_number=window.window_number,
                window_hmac=window.hmac,
                prev_hmac=prev,
                hmac="",
            )
            row = _fields(unsigned)
            row["hmac"] = tenant_link_hmac(chain_key, unsigned)
            return row

        window_row = _fields(window) | {
            "tenant_id": call.tenant_id,
            "trail_id": trail_id,
            "request_id": call.request_id,
            "key_id": call.key_id,
            "endpoint": call.endpoint,
            "provider": call.provider,
            "model": call.model,
            "outcome": call.outcome,
            "status": call.status,
        }
        events = tuple(
            _fields(event)
            | {
                "tenant_id": call.tenant_id,
                "severity": "CRITICAL" if event.event_type == "SAFETY_HALT" else "INFO",
            }
            for event in (created, closing)
        )
        await self._writer.append(
            AuditEntry(
                tenant_id=call.tenant_id, window=window_row, events=events, link=link
            )
        )
        return SessionFacts(
            session_id=session_id,
            window=window.window_number,
            max_windows=window.window_number,
            provenance_hmac=window.hmac,
            window_hmac=standalone_window_hmac(key, window),
            chain_integrity=ChainIntegrity.UNVERIFIED,
            audit_trail_id=trail_id,
            audit_trail_uri=self._trail_base + trail_id,
        )


def _closing_data(call: CallRecord, response_hash: str) -> dict[str, JSONValue]:
    if call.halt_reason:
        return {"crp_halt_reason": call.halt_reason, "status": call.status}
    data: dict[str, JSONValue] = {"response_hash": response_hash, "status": call.status}
    if call.tokens_used is not None:
        data["tokens_used"] = call.tokens_used
    return data


def _fields(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__dataclass_fields__} | {
        "created_at": utcnow()
    }
