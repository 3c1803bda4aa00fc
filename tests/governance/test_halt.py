"""Tests for crp_gateway.governance.halt (digest §4, G18, G25, G36)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from crp_gateway.governance.halt import (
    HaltReason,
    default_retry,
    halt_body,
    halt_headers,
    halt_response,
    new_session_id,
    reason_for,
)
from crp_gateway.governance.headers import CallFacts, CallOutcome, SessionFacts
from crp_gateway.governance.policy import (
    HaltCheck,
    RiskLevel,
    parse_policy,
    resolve_policy,
)
from crp_gateway.governance.scanners import scan_input, scan_output

SESSION_ID = r"crp_sess_[A-Za-z0-9]{16,32}"
RFC3339_Z = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z"
# 002§5.15 values plus the non-ABNF ones the digest lists (G2).
RETRY_AFTER = rf"[0-9]+|oversight-required|new-session-required|{RFC3339_Z}"
LINK_BLOCKED_BY = r'<https?://[^<>\s"]+>; rel="blocked-by"'
REQUIRED_FIELDS = {
    "crp_halt_reason",
    "session_id",
    "audit_trail_uri",
    "oversight_required",
    "retry_condition",
}
GATEWAY = "https://gw.example"


def test_reason_codes_are_the_spec_and_extended_set() -> None:
    assert {reason.value for reason in HaltReason} == {
        "CRITICAL_HALLUCINATION_RISK",
        "UNACCEPTABLE_EU_AI_ACT",
        "SAFETY_BUDGET_DEPLETED",
        "GROUNDING_BELOW_THRESHOLD",
        "QUALITY_TIER_REJECTED",
        "UNTRUSTED_SOURCE",
        "PROMPT_INJECTION_DETECTED",
        "SAFETY_POLICY_VIOLATION",
    }


def test_body_has_every_required_field_and_the_error_object() -> None:
    body = halt_body(HaltReason.CRITICAL_HALLUCINATION_RISK)
    assert REQUIRED_FIELDS <= set(body)
    assert body["crp_halt_reason"] == "CRITICAL_HALLUCINATION_RISK"
    assert re.fullmatch(SESSION_ID, str(body["session_id"]))
    assert body["audit_trail_uri"] is None  # present, not invented
    assert body["oversight_required"] is True
    assert body["retry_condition"] == "oversight-required"
    error = body["error"]
    assert isinstance(error, dict)
    assert error["type"] == "crp_safety_halt"
    assert error["code"] == "CRITICAL_HALLUCINATION_RISK"
    assert isinstance(error["message"], str)
    assert error["message"]
    assert json.loads(json.dumps(body)) == body


def test_body_uses_the_given_values() -> None:
    sid = "crp_sess_" + "ab" * 16
    uri = f"{GATEWAY}/crp/v3/trail/crp_trail_" + "cd" * 16
    body = halt_body(
        HaltReason.PROMPT_INJECTION_DETECTED,
        session_id=sid,
        audit_trail_uri=uri,
        explanation="Blocked by policy.",
    )
    assert body["session_id"] == sid
    assert body["audit_trail_uri"] == uri
    assert body["crp_halt_explanation"] == "Blocked by policy."
    assert body["error"] == {
        "message": "Blocked by policy.",
        "type": "crp_safety_halt",
        "param": None,
        "code": "PROMPT_INJECTION_DETECTED",
    }


def test_budget_depletion_needs_a_new_session_not_oversight() -> None:
    body = halt_body(HaltReason.SAFETY_BUDGET_DEPLETED)
    assert body["retry_condition"] == "new-session-required"
    assert body["oversight_required"] is False
    assert default_retry(HaltReason.UNACCEPTABLE_EU_AI_ACT) == "oversight-required"


def test_datetime_retry_condition_is_rfc3339_utc() -> None:
    when = datetime(2026, 5, 25, 12, 0, 30, 123, tzinfo=timezone(timedelta(hours=2)))
    body = halt_body(HaltReason.SAFETY_POLICY_VIOLATION, retry_condition=when)
    assert body["retry_condition"] == "2026-05-25T10:00:30Z"
    assert body["oversight_required"] is False
    text = halt_body(
        HaltReason.SAFETY_POLICY_VIOLATION, retry_condition="2026-05-25T10:00:30+00:00"
    )
    assert re.fullmatch(RFC3339_Z, str(text["retry_condition"]))


@pytest.mark.parametrize("bad", ["soon", "2026-05-25T10:00:30", "-5"])
def test_invalid_retry_conditions_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="retry"):
        halt_body(HaltReason.SAFETY_POLICY_VIOLATION, retry_condition=bad)


def test_naive_datetime_is_refused() -> None:
    naive = datetime(2026, 5, 25, 10, 0, 0)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="timezone"):
        halt_body(HaltReason.SAFETY_POLICY_VIOLATION, retry_condition=naive)


def test_critical_code_only_for_critical_risk() -> None:
    assert (
        reason_for(HaltCheck.RISK, RiskLevel.CRITICAL)
        is HaltReason.CRITICAL_HALLUCINATION_RISK
    )
    assert (
        reason_for(HaltCheck.RISK, RiskLevel.HIGH) is HaltReason.SAFETY_POLICY_VIOLATION
    )
    assert reason_for(HaltCheck.RISK) is HaltReason.SAFETY_POLICY_VIOLATION
    assert (
        reason_for(HaltCheck.OVERSIGHT, RiskLevel.CRITICAL)
        is HaltReason.CRITICAL_HALLUCINATION_RISK
    )
    for check in HaltCheck:
        if check not in (HaltCheck.RISK, HaltCheck.OVERSIGHT):
            assert (
                reason_for(check, RiskLevel.CRITICAL)
                is not HaltReason.CRITICAL_HALLUCINATION_RISK
            )


def test_extended_codes_for_policy_checks() -> None:
    assert reason_for(HaltCheck.GROUNDING) is HaltReason.GROUNDING_BELOW_THRESHOLD
    assert (
        reason_for(HaltCheck.PROMPT_INJECTION) is HaltReason.PROMPT_INJECTION_DETECTED
    )
    assert reason_for(HaltCheck.NO_TRUSTED_SOURCE) is HaltReason.UNTRUSTED_SOURCE
    assert reason_for(HaltCheck.RESPONSE_PII) is HaltReason.SAFETY_POLICY_VIOLATION


def test_headers_carry_retry_after_and_blocked_by_link() -> None:
    headers = halt_headers(
        HaltReason.CRITICAL_HALLUCINATION_RISK,
        gateway_url=GATEWAY,
        violations=("halt-on",),
    )
    assert re.fullmatch(RETRY_AFTER, headers["CRP-Safety-Retry-After"])
    assert headers["CRP-Safety-Retry-After"] == "oversight-required"
    assert re.fullmatch(LINK_BLOCKED_BY, headers["Link"])
    assert GATEWAY in headers["Link"]
    assert re.fullmatch(SESSION_ID, headers["CRP-Context-Session-Id"])
    assert headers["CRP-Context-Protocol-Version"] == "3.0.0"
    assert headers["CRP-Safety-Policy-Violation"] == "halt-on"
    assert "CRP-Compliance-Audit-Trail-URI" not in headers


@pytest.mark.parametrize(
    "url", ["gw.example", 'https://gw.example/"x', "https://gw example", "ftp://gw"]
)
def test_link_needs_a_clean_http_url(url: str) -> None:
    with pytest.raises(ValueError, match="gateway_url"):
        halt_headers(HaltReason.SAFETY_POLICY_VIOLATION, gateway_url=url)


def test_new_session_ids_are_fresh_and_well_formed() -> None:
    first, second = new_session_id(), new_session_id()
    assert first != second
    assert re.fullmatch(r"crp_sess_[0-9a-f]{32}", first)


def _halted_facts(*, with_session: bool) -> CallFacts:
    prompt = "Tell me about 2026 results."
    in_scan = scan_input([prompt])
    session = (
        SessionFacts(
            session_id="crp_sess_" + "12" * 16,
            audit_trail_id="crp_trail_" + "34" * 16,
            audit_trail_uri=f"{GATEWAY}/crp/v3/trail/crp_trail_" + "34" * 16,
        )
        if with_session
        else None
    )
    return CallFacts(
        policy=resolve_policy(request=parse_policy("halt-on MEDIUM"), zero_ckf=True),
        input_scan=in_scan,
        output_scan=scan_output(
            "Revenue was 41.7 billion.", [prompt], input_scan=in_scan
        ),
        outcome=CallOutcome.HALT,
        violations=("halt-on",),
        session=session,
    )


def test_halt_response_agrees_on_session_and_retry() -> None:
    halt = halt_response(
        HaltReason.SAFETY_POLICY_VIOLATION,
        gateway_url=GATEWAY,
        facts=_halted_facts(with_session=False),
    )
    assert halt.status == 451
    assert halt.body["session_id"] == halt.headers["CRP-Context-Session-Id"]
    assert halt.body["retry_condition"] == halt.headers["CRP-Safety-Retry-After"]
    assert halt.headers["CRP-Safety-Policy-Applied"] == "halt-on MEDIUM"
    assert halt.headers["CRP-Safety-Policy-Violation"] == "halt-on"
    assert "CRP-Safety-Hallucination-Risk" in halt.headers
    assert halt.body["audit_trail_uri"] is None


def test_halt_response_takes_session_facts() -> None:
    facts = _halted_facts(with_session=True)
    assert facts.session is not None
    halt = halt_response(
        HaltReason.SAFETY_POLICY_VIOLATION, gateway_url=GATEWAY, facts=facts
    )
    assert halt.body["session_id"] == facts.session.session_id
    assert halt.body["audit_trail_uri"] == facts.session.audit_trail_uri
    uri = halt.headers["CRP-Compliance-Audit-Trail-URI"]
    assert uri == facts.session.audit_trail_uri


def test_halt_response_needs_a_halt_outcome() -> None:
    facts = _halted_facts(with_session=False)
    warned = CallFacts(
        policy=facts.policy,
        input_scan=facts.input_scan,
        outcome=CallOutcome.WARN,
        violations=("warn-on",),
    )
    with pytest.raises(ValueError, match="HALT"):
        halt_response(
            HaltReason.SAFETY_POLICY_VIOLATION, gateway_url=GATEWAY, facts=warned
        )


def test_halt_response_without_facts() -> None:
    halt = halt_response(
        HaltReason.UNACCEPTABLE_EU_AI_ACT,
        gateway_url=GATEWAY,
        retry_condition=datetime(2030, 1, 1, tzinfo=UTC),
    )
    assert halt.headers["CRP-Safety-Retry-After"] == "2030-01-01T00:00:00Z"
    assert REQUIRED_FIELDS <= set(halt.body)
