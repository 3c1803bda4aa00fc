"""CRP violation reports: the payload, when one is due, and the daily cap.

Payload (digest §3.6, G27): the union of the two shapes in the specs, the fields
of 006§3.16 (``crp_version``, ``session_id``, ``window_id``, ``timestamp``,
``violation_type``, ``directive_violated``, ``risk_level``,
``hallucination_score``, ``grounding_pct``, ``fabrication_count``,
``audit_trail_uri``) plus ``window_number`` from 002§5.13. A value the gateway
did not measure is JSON ``null``, never a made-up number: in zero-CKF mode
``grounding_pct`` is always ``null``.

Triggers (§3.6): any halt, any warning (a ``warn-on`` hit, or a violation of a
report-only policy, which can only warn), a fabrication count above zero, and a
BROKEN chain. One call sends at most one report, typed by its first violated
directive (the engine lists the halting directive first).

``violation_type`` uses 006§3.16's values where one fits and ours otherwise
(:class:`ViolationType`); the list is open in the spec.

Volume (016§7.1): each tenant may enqueue ``CRP_REPORTS_PER_DAY_FREE`` (100)
reports per UTC day on the free plan and ``CRP_REPORTS_PER_DAY_PAID`` on the
others, counted in shared state so every replica shares one budget. Reports
over it are dropped with a warning; the call itself is never affected.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from crp_gateway.governance.headers import PROTOCOL_VERSION
from crp_gateway.ids import new_id
from crp_gateway.logging import get_logger
from crp_gateway.settings import Settings
from crp_gateway.state import SharedState
from crp_gateway.store.models import OutboxStatus
from crp_gateway.store.models.base import utcnow

log = get_logger("crp_gateway.outbox")

REPORT_KIND = "violation_report"
FREE_PLAN = "free"
_DAY_SECONDS = 86_400


class ViolationType(StrEnum):
    """``violation_type`` values: 006§3.16's first, then ours."""

    HALT_ON_CRITICAL = "HALT_ON_CRITICAL"
    GROUNDING_BELOW_THRESHOLD = "GROUNDING_BELOW_THRESHOLD"
    FABRICATION_DETECTED = "FABRICATION_DETECTED"
    PII_DETECTED = "PII_DETECTED"
    FLOW_BELOW_THRESHOLD = "FLOW_BELOW_THRESHOLD"
    # Ours: the gateway's other checks, which 006§3.16 does not name.
    HALT_ON_RISK = "HALT_ON_RISK"
    OVERSIGHT_HOLD = "OVERSIGHT_HOLD"
    WARN_ON_RISK = "WARN_ON_RISK"
    REPETITION_EXCEEDED = "REPETITION_EXCEEDED"
    PARAMETRIC_SOURCE_BLOCKED = "PARAMETRIC_SOURCE_BLOCKED"
    NO_TRUSTED_SOURCE = "NO_TRUSTED_SOURCE"
    PROMPT_INJECTION_DETECTED = "PROMPT_INJECTION_DETECTED"
    CHAIN_BROKEN = "CHAIN_BROKEN"
    SAFETY_POLICY_VIOLATION = "SAFETY_POLICY_VIOLATION"


#: What each directive name in ``Decision.violations`` is reported as.
_BY_DIRECTIVE = {
    "oversight": ViolationType.OVERSIGHT_HOLD,
    "warn-on": ViolationType.WARN_ON_RISK,
    "block-pii": ViolationType.PII_DETECTED,
    "block-fabrication": ViolationType.FABRICATION_DETECTED,
    "block-repetition": ViolationType.REPETITION_EXCEEDED,
    "max-repetition": ViolationType.REPETITION_EXCEEDED,
    "block-parametric": ViolationType.PARAMETRIC_SOURCE_BLOCKED,
    "default-src": ViolationType.NO_TRUSTED_SOURCE,
    "prompt-injection": ViolationType.PROMPT_INJECTION_DETECTED,
    "require-grounding": ViolationType.GROUNDING_BELOW_THRESHOLD,
}


@dataclass(frozen=True, slots=True)
class ReportTrigger:
    """Why a call is reported: its ``violation_type`` and the directive, if any."""

    violation_type: ViolationType
    directive_violated: str | None


def _violation_type(directive: str, risk_level: str | None) -> ViolationType:
    if directive == "halt-on":
        return (
            ViolationType.HALT_ON_CRITICAL
            if risk_level == "CRITICAL"
            else ViolationType.HALT_ON_RISK
        )
    return _BY_DIRECTIVE.get(directive, ViolationType.SAFETY_POLICY_VIOLATION)


def report_trigger(
    *,
    outcome: str,
    violations: Sequence[str],
    risk_level: str | None,
    fabrication_count: int,
    chain_integrity: str | None = None,
) -> ReportTrigger | None:
    """The report a call's decision calls for, or ``None`` (§3.6 triggers).

    ``outcome`` is ``"PASS"``, ``"WARN"`` or ``"HALT"`` (``CallOutcome``), and
    ``violations`` the directive names of ``Decision.violations``.
    """
    if outcome in {"HALT", "WARN"}:
        if violations:
            first = violations[0]
            return ReportTrigger(_violation_type(first, risk_level), first)
        fallback = (
            ViolationType.SAFETY_POLICY_VIOLATION
            if outcome == "HALT"
            else ViolationType.WARN_ON_RISK
        )
        return ReportTrigger(fallback, None)
    if chain_integrity == "BROKEN":
        return ReportTrigger(ViolationType.CHAIN_BROKEN, None)
    if fabrication_count > 0:
        return ReportTrigger(ViolationType.FABRICATION_DETECTED, None)
    return None


@dataclass(frozen=True, slots=True)
class ViolationReport:
    """One report's facts, as the call's audit record states them.

    ``timestamp`` is the window's RFC 3339 timestamp. ``hallucination_score`` and
    ``grounding_pct`` are ``None`` unless measured; ``audit_trail_uri`` is
    ``None`` when the call has no trail.
    """

    session_id: str
    window_id: str
    window_number: int
    violation_type: str
    directive_violated: str | None
    risk_level: str | None
    hallucination_score: float | None
    grounding_pct: float | None
    fabrication_count: int
    audit_trail_uri: str | None
    timestamp: str

    def payload(self) -> dict[str, Any]:
        """The JSON object POSTed to ``report-uri``."""
        return {"crp_version": PROTOCOL_VERSION, **asdict(self)}

    @property
    def idempotency_key(self) -> str:
        """One report per window: a receiver may drop a second with this key."""
        return f"crp-report:{self.window_id}"


def report_row(
    tenant_id: str,
    target_url: str,
    report: ViolationReport,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """An ``outbox_messages`` row (for ``AuditEntry.outbox``) carrying ``report``."""
    moment = now or utcnow()
    body = json.dumps(report.payload(), separators=(",", ":"), sort_keys=True)
    return {
        "id": new_id("obx"),
        "tenant_id": tenant_id,
        "kind": REPORT_KIND,
        "target_url": target_url,
        "body": body,
        "idempotency_key": report.idempotency_key,
        "status": OutboxStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": moment,
        "last_error": None,
        "created_at": moment,
        "delivered_at": None,
    }


@dataclass(frozen=True, slots=True)
class ReportLimits:
    """Reports per tenant per UTC day, by plan."""

    free_per_day: int
    paid_per_day: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ReportLimits:
        return cls(
            free_per_day=settings.crp_reports_per_day_free,
            paid_per_day=settings.crp_reports_per_day_paid,
        )

    def per_day(self, plan: str) -> int:
        return self.free_per_day if plan == FREE_PLAN else self.paid_per_day


def _sendable(url: str) -> bool:
    """http(s) with a host; the sender applies the full rules at delivery."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in {"http", "https"} and bool(parts.hostname)


async def plan_report(
    state: SharedState,
    tenant_id: str,
    plan: str,
    *,
    report_uri: str | None,
    report: ViolationReport,
    limits: ReportLimits,
) -> dict[str, Any] | None:
    """The outbox row for ``report``, or ``None`` when nothing is to be sent.

    ``None`` when the policy names no ``report-uri``, when it is not an http(s)
    URL, or when the tenant used up its reports of the day (logged).
    """
    if report_uri is None:
        return None
    if not _sendable(report_uri):
        log.info("report.uri_unsupported", tenant_id=tenant_id)
        return None
    decision = await state.hit(
        tenant_id,
        "reports:day",
        limit=limits.per_day(plan),
        window_seconds=_DAY_SECONDS,
    )
    if not decision.allowed:
        log.warning("report.rate_limited", tenant_id=tenant_id)
        return None
    return report_row(tenant_id, report_uri, report)
