"""One audit record per call: a chained window, its events and a tenant link.

Every call, halted, refused and failed ones included (G19), becomes a window:
the first of a new session (``SESSION_CREATED``), or the next of the session its
token continues (``SESSION_CONTINUED``, chained to the token's tip; see
``audit.sessions``), closed by ``DISPATCH_COMPLETED``, ``SAFETY_HALT`` or
``DISPATCH_FAILED``, plus one link of the tenant's rolling chain (G5). Keys come
from the tenant's audit master key of the session's version
(``audit.master_keys``, §5.4). The record, with the call's usage row and any
violation report, is durable before :meth:`AuditRecorder.record` returns
(``writer.AuditWriter``); the returned :class:`SessionFacts` become the session
and provenance headers.

``content_hash`` covers the answer text the scanners read (G6);
``dpe_report_hash`` covers our analysis record: the outcome, the violated
directives, the heuristic risk and its method id, and ``halted`` (never
invented: an unscanned call hashes ``{}``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from crp_gateway.audit import ids
from crp_gateway.audit.chain import (
    EventRecord,
    JSONValue,
    TenantLink,
    content_hash,
    dpe_report_hash,
    format_timestamp,
    new_event,
    standalone_window_hmac,
    tenant_link_hmac,
    window_after,
)
from crp_gateway.audit.keys import session_hmac_key
from crp_gateway.audit.master_keys import TenantKeys
from crp_gateway.audit.sessions import Place
from crp_gateway.audit.writer import AuditEntry, AuditWriter
from crp_gateway.governance.headers import ChainIntegrity, SessionFacts
from crp_gateway.logging import get_logger
from crp_gateway.store.models.base import utcnow

log = get_logger("crp_gateway.audit")

#: Window outcomes besides the governance ones (PASS, WARN, HALT, ...).
OUTCOME_ERROR = "ERROR"  # the provider failed, or the gateway could not reach it
OUTCOME_REFUSED = "REFUSED"  # refused before dispatch (bad input, token, limits)
OUTCOME_CANCELLED = "CANCELLED"  # the client left before the answer ended


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
    error_code: str | None = None


@dataclass(frozen=True, slots=True)
class WindowRef:
    """Where a call's record sits, for what is sent about it (a report)."""

    session_id: str
    window_id: str
    window_number: int
    audit_trail_uri: str
    timestamp: str


#: Builds the outbox row of a call's violation report, or None for none.
ReportPlanner = Callable[[WindowRef], Awaitable[dict[str, Any] | None]]


class AuditRecorder:
    def __init__(self, writer: AuditWriter, keys: TenantKeys, *, gateway_url: str):
        self._writer = writer
        self.keys = keys
        self._trail_base = f"{gateway_url.rstrip('/')}/crp/v3/trail/"
        self._background: set[asyncio.Task[None]] = set()

    def spawn(self, recording: Coroutine[Any, Any, Any]) -> None:
        """Record in the background (for a call whose task is being cancelled);
        :meth:`aclose` waits for it."""
        task = asyncio.get_running_loop().create_task(recording)
        self._background.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("audit.background_record_failed", error=type(error).__name__)

    async def aclose(self) -> None:
        """Wait for background records (before the writer closes)."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def record(
        self,
        call: CallRecord,
        place: Place | None = None,
        *,
        usage: dict[str, Any] | None = None,
        report: ReportPlanner | None = None,
    ) -> SessionFacts:
        """Chain and store ``call`` (with its ``usage`` row) as the window
        ``place`` names (None: a new session); return its session headers' facts.

        A new session's window is chained to nothing and opens its event chain
        with ``SESSION_CREATED``; a continued one is chained to the token's tip
        and its events follow the session's stored last event.
        """
        ring = await self.keys.ring(call.tenant_id)
        # A session keeps the key version it started with; links use the current.
        version = place.key_version if place is not None else ring.current
        master = await self.keys.master(call.tenant_id, version)
        session_id = place.session_id if place else ids.new_session_id()
        window_id, trail_id = ids.new_window_id(), ids.new_trail_id()
        timestamp = format_timestamp(utcnow())
        key = session_hmac_key(master, session_id)
        window = window_after(
            key,
            prev_hmac=place.parent_hmac if place else "",
            parent_number=place.parent_window if place else 0,
            session_id=session_id,
            window_id=window_id,
            timestamp=timestamp,
            content_hash=content_hash(call.output_text),
            dpe_report_hash=dpe_report_hash(call.report),
        )
        continued = place is not None and place.continued

        def events(last_seq: int, last_hmac: str) -> tuple[dict[str, Any], ...]:
            previous = _tip_event(session_id, last_seq, last_hmac)
            made: list[EventRecord] = []
            if not continued:
                previous = new_event(
                    key,
                    previous,
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
                made.append(previous)
            elif place is not None:
                previous = new_event(
                    key,
                    previous,
                    session_id=session_id,
                    event_type="SESSION_CONTINUED",
                    timestamp=timestamp,
                    window_id=window_id,
                    data={
                        "window_number": window.window_number,
                        "dag": place.dag.value,
                        "parent_hmac": place.parent_hmac,
                        "api_key_id": call.key_id,
                    },
                )
                made.append(previous)
            made.append(
                new_event(
                    key,
                    previous,
                    session_id=session_id,
                    event_type=_closing_type(call),
                    timestamp=timestamp,
                    window_id=window_id,
                    data=_closing_data(call, window.content_hash),
                )
            )
            return tuple(
                _fields(event)
                | {
                    "tenant_id": call.tenant_id,
                    "severity": _severity(event),
                    "key_version": version,
                }
                for event in made
            )

        chain_key = await self.keys.chain_key(call.tenant_id, ring.current)

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
            row["key_version"] = ring.current
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
            "key_version": version,
        }
        trail_uri = self._trail_base + trail_id
        planned = (
            await report(
                WindowRef(
                    session_id, window_id, window.window_number, trail_uri, timestamp
                )
            )
            if report is not None
            else None
        )
        await self._writer.append(
            AuditEntry(
                tenant_id=call.tenant_id,
                window=window_row,
                events=events,
                link=link,
                session_id=session_id,
                continued=continued,
                usage=usage,
                outbox=(planned,) if planned is not None else (),
            )
        )
        max_windows = place.limits.max_windows if place else window.window_number
        return SessionFacts(
            session_id=session_id,
            window=window.window_number,
            max_windows=max(max_windows, window.window_number),
            provenance_hmac=window.hmac,
            window_hmac=standalone_window_hmac(key, window),
            # A continuation's token tip matched the stored tip of its point, so
            # the link to the previous window is checked; a new session has none.
            chain_integrity=(
                ChainIntegrity.VALID if continued else ChainIntegrity.UNVERIFIED
            ),
            audit_trail_id=trail_id,
            audit_trail_uri=trail_uri,
        )

    async def record_usage(self, usage: dict[str, Any]) -> None:
        """A call that is not audited still has its usage row committed."""
        await self._writer.append(AuditEntry(tenant_id=usage["tenant_id"], usage=usage))

    def submit_usage(self, usage: dict[str, Any]) -> None:
        """:meth:`record_usage` without waiting (the client is already gone)."""
        self._writer.submit(AuditEntry(tenant_id=usage["tenant_id"], usage=usage))


def _tip_event(session_id: str, seq: int, hmac: str) -> EventRecord | None:
    """The session's stored last event, as far as chaining after it needs."""
    if seq == 0:
        return None
    return EventRecord(
        session_id=session_id,
        seq=seq,
        event_type="STORED",
        timestamp="",
        window_id="",
        data="",
        data_hash="",
        prev_hmac="",
        hmac=hmac,
    )


def _closing_type(call: CallRecord) -> str:
    if call.halt_reason:
        return "SAFETY_HALT"
    if call.outcome in (OUTCOME_ERROR, OUTCOME_REFUSED, OUTCOME_CANCELLED):
        return "DISPATCH_FAILED"
    return "DISPATCH_COMPLETED"


def _severity(event: EventRecord) -> str:
    if event.event_type == "SAFETY_HALT":
        return "CRITICAL"
    if event.event_type == "DISPATCH_FAILED":
        return "WARNING"
    return "INFO"


def _closing_data(call: CallRecord, response_hash: str) -> dict[str, JSONValue]:
    if call.halt_reason:
        return {"crp_halt_reason": call.halt_reason, "status": call.status}
    if call.error_code is not None:
        return {"error_code": call.error_code, "status": call.status}
    data: dict[str, JSONValue] = {"response_hash": response_hash, "status": call.status}
    if call.tokens_used is not None:
        data["tokens_used"] = call.tokens_used
    return data


def _fields(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__dataclass_fields__} | {
        "created_at": utcnow()
    }
