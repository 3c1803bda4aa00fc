"""Audit: a call's trail (``GET /crp/v3/trail/{trail_id}``) and verification.

The target of ``CRP-Compliance-Audit-Trail-URI``, for the tenant's admin keys:
the call's window and its events exactly as they were chained (the HMAC inputs
verbatim), never a key.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from crp_gateway.api.deps import AdminDep, RuntimeDep, SessionDep
from crp_gateway.audit.verify import verify_session
from crp_gateway.errors import NotFound
from crp_gateway.store.repositories import AuditRepository

router = APIRouter(tags=["audit"])

_WINDOW_FIELDS = (
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
_EVENT_FIELDS = (
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
        "window": {name: getattr(window, name) for name in _WINDOW_FIELDS},
        "events": [{name: getattr(e, name) for name in _EVENT_FIELDS} for e in events],
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
