"""Audit API for a tenant's admin keys: trails, sessions, verification, export.

* ``GET /crp/v3/trail/{trail_id}``: the target of ``CRP-Compliance-Audit-Trail-URI``,
  one call's window and its session's events exactly as they were chained.
* ``GET /v1/audit/sessions``: the tenant's sessions, newest first, a page at a time.
* ``GET /v1/audit/sessions/{session_id}``: one session's windows and events.
* ``GET /v1/audit/verify``: recompute one session's chains.
* ``GET /v1/audit/export``: every session active in a time range, as NDJSON.

Every query is scoped to the caller's tenant (``store.audit_queries``), so
another tenant's session is simply not found. Records carry the HMAC inputs
verbatim and never a key (the session HMAC key is obtained separately, G10).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from crp_gateway.api.deps import AdminDep, RuntimeDep, SessionDep
from crp_gateway.audit.export import event_json, export_ndjson, window_json
from crp_gateway.audit.ids import SESSION_ID
from crp_gateway.audit.verify import verify_session
from crp_gateway.errors import InvalidRequest, NotFound
from crp_gateway.logging import get_logger
from crp_gateway.store.audit_queries import (
    AuditQueries,
    Position,
    SessionFilter,
    SessionSummary,
)
from crp_gateway.store.repositories import AuditRepository

log = get_logger("crp_gateway.audit")

router = APIRouter(tags=["audit"])

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})"
)
_CURSOR_VERSION = 1


@router.get("/crp/v3/trail/{trail_id}")
async def audit_trail(
    trail_id: str, admin: AdminDep, session: SessionDep
) -> dict[str, Any]:
    """One call's chained window and events."""
    audit = AuditRepository(session, admin.tenant_id)
    window = await audit.window_by_trail(trail_id)
    if window is None:
        raise NotFound("No audit trail has this id.", code="trail_not_found")
    events = await audit.events(window.session_id)
    return {
        "trail_id": trail_id,
        "window": window_json(window),
        "events": [event_json(e) for e in events],
    }


# --- parameters -------------------------------------------------------------------


def _moment(name: str, value: str) -> datetime:
    """An RFC 3339 date-time with an offset, as an aware UTC datetime."""
    problem = InvalidRequest(
        f"`{name}` must be an RFC 3339 date-time such as 2026-05-25T10:00:00Z "
        "(write a `+` offset as %2B in a URL).",
        code="invalid_timestamp",
        param=name,
    )
    if not _RFC3339.fullmatch(value):
        raise problem
    try:
        moment = datetime.fromisoformat(value.upper())
    except ValueError:
        raise problem from None
    return moment.astimezone(UTC)


def _optional_moment(name: str, value: str | None) -> datetime | None:
    return None if value is None else _moment(name, value)


def _check_order(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since > until:
        raise InvalidRequest(
            "`since` is later than `until`.", code="invalid_time_range", param="since"
        )


def _encode_cursor(position: Position) -> str:
    raw = json.dumps(
        [_CURSOR_VERSION, position.created_at.isoformat(), position.id],
        separators=(",", ":"),
    )
    return base64.urlsafe_b64encode(raw.encode("ascii")).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str | None) -> Position | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, created_at, key = json.loads(raw)
        moment = datetime.fromisoformat(created_at)
        if version != _CURSOR_VERSION or moment.tzinfo is None or type(key) is not int:
            raise ValueError("not one of our cursors")
    except (binascii.Error, UnicodeDecodeError, TypeError, ValueError):
        raise InvalidRequest(
            "`cursor` is not a cursor this endpoint returned.",
            code="invalid_cursor",
            param="cursor",
        ) from None
    return Position(moment.astimezone(UTC), key)


# --- sessions -----------------------------------------------------------------------


class SessionSummaryOut(BaseModel):
    session_id: str
    window_count: int
    first_timestamp: str
    last_timestamp: str
    key_id: str
    last_outcome: str
    last_status: int
    last_trail_id: str

    @classmethod
    def of(cls, summary: SessionSummary) -> SessionSummaryOut:
        return cls(
            session_id=summary.session_id,
            window_count=summary.window_count,
            first_timestamp=summary.first_timestamp,
            last_timestamp=summary.last_timestamp,
            key_id=summary.key_id,
            last_outcome=summary.last_outcome,
            last_status=summary.last_status,
            last_trail_id=summary.last_trail_id,
        )


class SessionPage(BaseModel):
    object: str = "list"
    data: list[SessionSummaryOut]
    has_more: bool
    next_cursor: str | None


@router.get("/v1/audit/sessions")
async def list_sessions(
    admin: AdminDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
    since: str | None = None,
    until: str | None = None,
    key_id: str | None = None,
) -> SessionPage:
    """Sessions with a window in ``[since, until)`` (and by ``key_id``), newest
    first by their first such window; each summary covers the whole session."""
    start, end = _optional_moment("since", since), _optional_moment("until", until)
    _check_order(start, end)
    only = SessionFilter(since=start, until=end, key_id=key_id)
    queries = AuditQueries(session, admin.tenant_id)
    anchors = await queries.session_anchors(
        only, after=_decode_cursor(cursor), newest_first=True, limit=limit + 1
    )
    page = anchors[:limit]
    summaries = await queries.summaries([a.session_id for a in page])
    more = len(anchors) > limit
    return SessionPage(
        data=[SessionSummaryOut.of(summaries[a.session_id]) for a in page],
        has_more=more,
        next_cursor=_encode_cursor(page[-1].position) if more else None,
    )


@router.get("/v1/audit/sessions/{session_id}")
async def session_detail(
    session_id: str, admin: AdminDep, session: SessionDep
) -> dict[str, Any]:
    """One session's windows (by window number, then id) and events (by seq)."""
    audit = AuditRepository(session, admin.tenant_id)
    known = SESSION_ID.fullmatch(session_id) is not None
    windows = await audit.windows(session_id) if known else []
    if not windows:
        raise NotFound("No audited session has this id.", code="session_not_found")
    events = await audit.events(session_id)
    return {
        "session_id": session_id,
        "windows": [window_json(w) for w in windows],
        "events": [event_json(e) for e in events],
    }


@router.get("/v1/audit/verify")
async def verify(
    session_id: str, admin: AdminDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Recompute one session's chains: VALID, or BROKEN at the first bad record."""
    result = await verify_session(
        runtime.sessions, runtime.audit.keys, admin.tenant_id, session_id
    )
    if result is None:
        raise NotFound("No audited session has this id.", code="session_not_found")
    return result.to_json()


@router.post("/v1/audit/keys/rotate")
async def rotate_key(admin: AdminDep, runtime: RuntimeDep) -> dict[str, Any]:
    """Start the tenant's next audit master key version (never shown): new
    sessions and tenant-chain links use it; older records and tokens keep
    verifying with theirs. Other replicas switch within a minute."""
    version = await runtime.audit.keys.rotate(admin.tenant_id)
    log.info("audit.key_rotated", tenant_id=admin.tenant_id, key_version=version)
    return {"object": "audit_key", "key_version": version}


# --- export -------------------------------------------------------------------------


def _filename_moment(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


@router.get("/v1/audit/export")
async def export(
    admin: AdminDep,
    runtime: RuntimeDep,
    since: str | None = None,
    until: str | None = None,
    session_id: str | None = None,
) -> StreamingResponse:
    """NDJSON of every session with a window in ``[since, until)`` (``until``
    defaults to now), whole, in chain order; see ``audit.export``."""
    if since is None:
        raise InvalidRequest(
            "`since` is required (an RFC 3339 date-time).",
            code="missing_parameter",
            param="since",
        )
    start = _moment("since", since)
    end = datetime.now(UTC) if until is None else _moment("until", until)
    _check_order(start, end)
    only = SessionFilter(since=start, until=end, session_id=session_id)
    filename = f"crp-audit-{_filename_moment(start)}-{_filename_moment(end)}.ndjson"
    return StreamingResponse(
        export_ndjson(runtime.sessions, admin.tenant_id, only),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
