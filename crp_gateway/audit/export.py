"""The audit records as JSON objects, and the NDJSON export of a time range.

Each record carries exactly the fields its HMAC covers, stored verbatim (the
chained timestamps, ``data`` as the canonical JSON that ``data_hash`` covers),
plus the call's metadata for windows. No key is ever part of a record: a
verifier obtains the session HMAC key separately (G10).

The export is a sequence of session blocks. A session is exported whole when
any of its windows was recorded in the range, so that each block verifies
from the root with ``verify_windows`` / ``verify_events`` and
``verify_coverage`` (a window of the same session outside the range comes
along rather than leaving a gap, G29). A block is the session's windows in
chain order (window number, then id), its events by ``seq``, then the
tenant-chain links anchoring its windows by ``seq``; each line names its kind
in ``"record"``. Blocks come in the order of the session's first window in the
range. Every event is exported (none is dropped), so the event chain stays
whole.

Memory stays flat whatever the range: sessions, windows, events and links are
read in keyset pages, each page in its own short database session, and sent as
one chunk. The range is not capped for that reason.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crp_gateway.store.audit_queries import AuditQueries, Position, SessionFilter
from crp_gateway.store.models import AuditEvent, AuditTenantLink, AuditWindow

WINDOW_FIELDS = (
    "session_id",
    "window_id",
    "window_number",
    "timestamp",
    "content_hash",
    "dpe_report_hash",
    "prev_hmac",
    "hmac",
    "request_id",
    "key_id",
    "endpoint",
    "provider",
    "model",
    "outcome",
    "status",
)
EVENT_FIELDS = (
    "seq",
    "event_type",
    "severity",
    "timestamp",
    "window_id",
    "data",
    "data_hash",
    "prev_hmac",
    "hmac",
)
LINK_FIELDS = (
    "tenant_id",
    "seq",
    "timestamp",
    "session_id",
    "window_id",
    "window_number",
    "window_hmac",
    "prev_hmac",
    "hmac",
)

#: Sessions per page, and windows, events or links per page within a session.
SESSION_PAGE = 100
RECORD_PAGE = 500


def window_json(row: AuditWindow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in WINDOW_FIELDS}


def event_json(row: AuditEvent) -> dict[str, Any]:
    return {name: getattr(row, name) for name in EVENT_FIELDS}


def _line(record: str, body: dict[str, Any]) -> str:
    text = json.dumps({"record": record, **body}, ensure_ascii=False)
    return text + "\n"


def _chunk(lines: Iterable[str]) -> bytes:
    return "".join(lines).encode("utf-8")


async def _session_block(
    sessions: async_sessionmaker[AsyncSession], tenant_id: str, session_id: str
) -> AsyncIterator[bytes]:
    after_window: tuple[int, int] | None = None
    while True:
        async with sessions() as session:
            windows = await AuditQueries(session, tenant_id).windows_page(
                session_id, after=after_window, limit=RECORD_PAGE
            )
        if windows:
            yield _chunk(_line("window", window_json(w)) for w in windows)
            after_window = (windows[-1].window_number, windows[-1].id)
        if len(windows) < RECORD_PAGE:
            break
    async for chunk in _linear(sessions, tenant_id, session_id, links=False):
        yield chunk
    async for chunk in _linear(sessions, tenant_id, session_id, links=True):
        yield chunk


async def _linear(
    sessions: async_sessionmaker[AsyncSession],
    tenant_id: str,
    session_id: str,
    *,
    links: bool,
) -> AsyncIterator[bytes]:
    """The session's events, or its tenant-chain links, page by page."""
    after = 0
    while True:
        async with sessions() as session:
            queries = AuditQueries(session, tenant_id)
            rows: Sequence[AuditEvent | AuditTenantLink]
            if links:
                rows = await queries.links_page(
                    session_id, after_seq=after, limit=RECORD_PAGE
                )
            else:
                rows = await queries.events_page(
                    session_id, after_seq=after, limit=RECORD_PAGE
                )
        if rows:
            yield _chunk(_record_line(row) for row in rows)
            after = rows[-1].seq
        if len(rows) < RECORD_PAGE:
            return


def _record_line(row: AuditEvent | AuditTenantLink) -> str:
    if isinstance(row, AuditTenantLink):
        return _line("tenant_link", {n: getattr(row, n) for n in LINK_FIELDS})
    return _line("event", {"session_id": row.session_id, **event_json(row)})


async def export_ndjson(
    sessions: async_sessionmaker[AsyncSession], tenant_id: str, only: SessionFilter
) -> AsyncIterator[bytes]:
    """The tenant's sessions matching ``only`` as NDJSON chunks, block by block."""
    after: Position | None = None
    while True:
        async with sessions() as session:
            anchors = await AuditQueries(session, tenant_id).session_anchors(
                only, after=after, newest_first=False, limit=SESSION_PAGE
            )
        for anchor in anchors:
            async for chunk in _session_block(sessions, tenant_id, anchor.session_id):
                yield chunk
        if len(anchors) < SESSION_PAGE:
            return
        after = anchors[-1].position
