"""The HTTP 451 halt response: reason codes, body and headers (digest §4, §3.4).

Body (002§13.2): the five CRP fields `crp_halt_reason`, `session_id`,
`audit_trail_uri`, `oversight_required`, `retry_condition`, plus
`crp_halt_explanation` and, for OpenAI SDKs (G25), an `error` object
`{"message", "type": "crp_safety_halt", "param": null, "code": <reason>}`.

Decisions:

* Reason codes (§4 decision, G18): the three spec codes plus the extended
  set (`HaltReason`). `CRITICAL_HALLUCINATION_RISK` is used only when the risk
  class is CRITICAL; a `halt-on HIGH`/`MEDIUM` halt or a `human-review` hold of
  a HIGH answer is `SAFETY_POLICY_VIOLATION`, with the violated directives in
  `CRP-Safety-Policy-Violation`. `reason_for` maps the policy's `HaltCheck`s.
  `QUALITY_TIER_REJECTED` is listed for completeness; `require-quality`
  answers 503, not 451 (§3.4).
* Retry (§4, 012§5.2, G36): `new-session-required` for a depleted budget,
  `oversight-required` for every other halt (a retry of the same request halts
  again until a reviewer or a registration change allows it). A caller may
  pass an RFC 3339 datetime or delta-seconds instead. `oversight_required` is
  true exactly when the condition is `oversight-required`.
* Session id: while the session layer does not exist, a halted call is a
  one-window session of its own (G5, G14: no token => new session), so a
  fresh `crp_sess_` + 32 hex id (G34) is generated per call. `halt_response`
  generates it once for body and headers; callers of `halt_body` and
  `halt_headers` pass the same `new_session_id()` to both.
* `audit_trail_uri` is sent as JSON `null` until the audit trail exists: the
  field is present as 002§13.2 requires, but no URI that leads nowhere is
  invented. `CRP-Compliance-Audit-Trail-URI` (002§13.1) is then omitted, and
  so is `CRP-Safety-Hallucination-Risk` for a halt decided before dispatch
  (there is no answer to score); both are listed as gaps in the well-known
  document.
* Headers: `CRP-Safety-Retry-After` (MUST), `Link: <gateway>; rel="blocked-by"`
  (RFC 7725), `CRP-Context-Protocol-Version`, `CRP-Context-Session-Id`,
  `CRP-Safety-Policy-Violation`, audit-trail headers when known, on top of the
  call's `response_headers` (Policy-Applied, Risk, ...) when facts are given.
  `Content-Type` and the security headers are the framework's and the
  middleware's job.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from crp_gateway.governance.headers import (
    AUDIT_TRAIL_ID,
    AUDIT_TRAIL_URI,
    POLICY_VIOLATION,
    PROTOCOL_VERSION,
    PROTOCOL_VERSION_HEADER,
    RETRY_AFTER,
    SESSION_ID,
    CallFacts,
    CallOutcome,
    response_headers,
)
from crp_gateway.governance.policy import HaltCheck, RiskLevel

__all__ = [
    "ERROR_TYPE",
    "HALT_STATUS",
    "RETRY_NEW_SESSION",
    "RETRY_OVERSIGHT",
    "HaltReason",
    "HaltResponse",
    "blocked_by_link",
    "default_retry",
    "halt_body",
    "halt_headers",
    "halt_response",
    "new_session_id",
    "reason_for",
]

HALT_STATUS = 451
ERROR_TYPE = "crp_safety_halt"
RETRY_OVERSIGHT = "oversight-required"
RETRY_NEW_SESSION = "new-session-required"


class HaltReason(StrEnum):
    """`crp_halt_reason` codes: the spec's three, then the extended ones (§4)."""

    CRITICAL_HALLUCINATION_RISK = "CRITICAL_HALLUCINATION_RISK"
    UNACCEPTABLE_EU_AI_ACT = "UNACCEPTABLE_EU_AI_ACT"
    SAFETY_BUDGET_DEPLETED = "SAFETY_BUDGET_DEPLETED"
    GROUNDING_BELOW_THRESHOLD = "GROUNDING_BELOW_THRESHOLD"
    QUALITY_TIER_REJECTED = "QUALITY_TIER_REJECTED"
    UNTRUSTED_SOURCE = "UNTRUSTED_SOURCE"
    PROMPT_INJECTION_DETECTED = "PROMPT_INJECTION_DETECTED"
    SAFETY_POLICY_VIOLATION = "SAFETY_POLICY_VIOLATION"


_EXPLANATIONS: Mapping[HaltReason, str] = {
    HaltReason.CRITICAL_HALLUCINATION_RISK: (
        "The response was withheld: its hallucination risk is CRITICAL."
    ),
    HaltReason.UNACCEPTABLE_EU_AI_ACT: (
        "The registered AI system is classified UNACCEPTABLE under the EU AI Act."
    ),
    HaltReason.SAFETY_BUDGET_DEPLETED: (
        "The session's safety budget is depleted; start a new session."
    ),
    HaltReason.GROUNDING_BELOW_THRESHOLD: (
        "The response was withheld: its grounding is below the policy threshold."
    ),
    HaltReason.QUALITY_TIER_REJECTED: (
        "The context quality tier is not one the policy accepts."
    ),
    HaltReason.UNTRUSTED_SOURCE: (
        "The response draws on a source the safety policy does not trust."
    ),
    HaltReason.PROMPT_INJECTION_DETECTED: (
        "The request was blocked: prompt injection was detected."
    ),
    HaltReason.SAFETY_POLICY_VIOLATION: (
        "The call was halted because it violates the effective safety policy."
    ),
}

_CHECK_REASONS: Mapping[HaltCheck, HaltReason] = {
    HaltCheck.NO_TRUSTED_SOURCE: HaltReason.UNTRUSTED_SOURCE,
    HaltCheck.UNTRUSTED_SOURCE: HaltReason.UNTRUSTED_SOURCE,
    HaltCheck.PARAMETRIC_CONTENT: HaltReason.UNTRUSTED_SOURCE,
    HaltCheck.PROMPT_INJECTION: HaltReason.PROMPT_INJECTION_DETECTED,
    HaltCheck.GROUNDING: HaltReason.GROUNDING_BELOW_THRESHOLD,
    HaltCheck.UNGROUNDED_CLAIM: HaltReason.GROUNDING_BELOW_THRESHOLD,
}


def reason_for(check: HaltCheck, risk: RiskLevel | None = None) -> HaltReason:
    """The halt reason for a failed policy check (`risk` = the call's class).

    Risk and oversight halts are `CRITICAL_HALLUCINATION_RISK` only at
    CRITICAL; every check without a code of its own is
    `SAFETY_POLICY_VIOLATION`.
    """
    if check in (HaltCheck.RISK, HaltCheck.OVERSIGHT) and risk is RiskLevel.CRITICAL:
        return HaltReason.CRITICAL_HALLUCINATION_RISK
    return _CHECK_REASONS.get(check, HaltReason.SAFETY_POLICY_VIOLATION)


def default_retry(reason: HaltReason) -> str:
    """The `CRP-Safety-Retry-After` / `retry_condition` value for a reason."""
    if reason is HaltReason.SAFETY_BUDGET_DEPLETED:
        return RETRY_NEW_SESSION
    return RETRY_OVERSIGHT


def new_session_id() -> str:
    """A fresh `crp_sess_` id with 128 random bits as 32 lowercase hex (G34)."""
    return f"crp_sess_{secrets.token_hex(16)}"


_DELTA_SECONDS = re.compile(r"[0-9]{1,10}")


def _retry_value(retry: str | datetime | None, reason: HaltReason) -> str:
    """Validate a retry condition; datetimes become RFC 3339 UTC with `Z`."""
    if retry is None:
        return default_retry(reason)
    if isinstance(retry, datetime):
        if retry.utcoffset() is None:
            raise ValueError("retry datetime must be timezone-aware")
        utc = retry.astimezone(UTC).replace(tzinfo=None, microsecond=0)
        return utc.isoformat() + "Z"
    if retry in (RETRY_OVERSIGHT, RETRY_NEW_SESSION) or _DELTA_SECONDS.fullmatch(retry):
        return retry
    return _retry_value(_aware(retry), reason)


def _aware(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("retry condition is not a CRP retry value") from None
    if parsed.utcoffset() is None:
        raise ValueError("retry datetime must carry a UTC offset")
    return parsed


def halt_body(
    reason: HaltReason,
    *,
    session_id: str | None = None,
    audit_trail_uri: str | None = None,
    explanation: str | None = None,
    retry_condition: str | datetime | None = None,
) -> dict[str, object]:
    """The 451 JSON body (see the module docstring for the `None` defaults)."""
    retry = _retry_value(retry_condition, reason)
    message = explanation or _EXPLANATIONS[reason]
    return {
        "crp_halt_reason": reason.value,
        "session_id": session_id or new_session_id(),
        "audit_trail_uri": audit_trail_uri,
        "oversight_required": retry == RETRY_OVERSIGHT,
        "retry_condition": retry,
        "crp_halt_explanation": message,
        "error": {
            "message": message,
            "type": ERROR_TYPE,
            "param": None,
            "code": reason.value,
        },
    }


_LINK_TARGET = re.compile(r"https?://[!#-;=?-~]+")  # no space, '"', '<', '>'


def blocked_by_link(gateway_url: str) -> str:
    """`Link` value naming the gateway as the blocking entity (RFC 7725 §3)."""
    if not _LINK_TARGET.fullmatch(gateway_url):
        raise ValueError("gateway_url must be an absolute http(s) URL")
    return f'<{gateway_url}>; rel="blocked-by"'


def halt_headers(
    reason: HaltReason,
    *,
    gateway_url: str,
    session_id: str | None = None,
    retry_condition: str | datetime | None = None,
    violations: Iterable[str] = (),
    audit_trail_id: str | None = None,
    audit_trail_uri: str | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The 451 headers, on top of `base` (normally `response_headers(facts)`)."""
    headers = dict(base or {})
    headers[PROTOCOL_VERSION_HEADER] = PROTOCOL_VERSION
    headers[RETRY_AFTER] = _retry_value(retry_condition, reason)
    headers["Link"] = blocked_by_link(gateway_url)
    headers[SESSION_ID] = session_id or headers.get(SESSION_ID) or new_session_id()
    names = ",".join(dict.fromkeys(violations))
    if names:
        headers[POLICY_VIOLATION] = names
    if audit_trail_id is not None:
        headers[AUDIT_TRAIL_ID] = audit_trail_id
    if audit_trail_uri is not None:
        headers[AUDIT_TRAIL_URI] = audit_trail_uri
    return headers


@dataclass(frozen=True)
class HaltResponse:
    """Status, headers and JSON body of one 451, with one session id."""

    status: int
    headers: dict[str, str]
    body: dict[str, object]


def halt_response(
    reason: HaltReason,
    *,
    gateway_url: str,
    facts: CallFacts | None = None,
    session_id: str | None = None,
    audit_trail_id: str | None = None,
    audit_trail_uri: str | None = None,
    explanation: str | None = None,
    retry_condition: str | datetime | None = None,
) -> HaltResponse:
    """Body and headers of a halt that agree on the session id and retry value.

    With `facts` (outcome HALT) the call's `response_headers` are included, its
    violations name the directives, and its session facts fill in the session
    id and audit trail when not given.
    """
    if facts is not None and facts.outcome is not CallOutcome.HALT:
        raise ValueError("halt_response needs facts with outcome HALT")
    session = facts.session if facts else None
    sid = session_id or (session.session_id if session else None) or new_session_id()
    trail_id = audit_trail_id or (session.audit_trail_id if session else None)
    trail_uri = audit_trail_uri or (session.audit_trail_uri if session else None)
    retry = _retry_value(retry_condition, reason)
    headers = halt_headers(
        reason,
        gateway_url=gateway_url,
        session_id=sid,
        retry_condition=retry,
        violations=facts.violations if facts else (),
        audit_trail_id=trail_id,
        audit_trail_uri=trail_uri,
        base=response_headers(facts) if facts else None,
    )
    body = halt_body(
        reason,
        session_id=sid,
        audit_trail_uri=trail_uri,
        explanation=explanation,
        retry_condition=retry,
    )
    return HaltResponse(HALT_STATUS, headers, body)
