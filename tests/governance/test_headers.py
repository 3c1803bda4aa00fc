"""Tests for crp_gateway.governance.headers (digest §2, §2.3, G20-G24, G37).

Header values are checked against regexes written from the §2 formats and the
base ABNF, not against strings produced by the code under test.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re

import pytest

from crp_gateway.governance.headers import (
    REJECTED_REQUEST_HEADERS,
    REQUEST_HEADERS,
    RESPONSE_ONLY_HEADERS,
    SECURITY_HEADERS,
    CallFacts,
    CallOutcome,
    ChainIntegrity,
    RequestHeaderError,
    SessionFacts,
    StripReason,
    check_request_headers,
    context_etag,
    crp_headers_event,
    response_headers,
)
from crp_gateway.governance.policy import (
    OversightMode,
    ResolvedPolicy,
    format_policy,
    parse_policy,
    resolve_policy,
)
from crp_gateway.governance.scanners import (
    InputScan,
    OutputScan,
    scan_input,
    scan_output,
)

# --- formats from digest §2 -------------------------------------------------------

FRACTION = r"[0-9]+\.[0-9]+"
CRP_HASH = r"sha256:[0-9A-Fa-f]{64}"
DIRECTIVE_ITEM = r"[a-z][a-z-]*(?: [^;]+)?"
ADJUSTMENT = r"directive=[^;,]+; adjusted-to=[^;,]+; reason=zero-ckf-mode"
FORMATS: dict[str, str] = {
    "CRP-Context-Protocol-Version": r"[0-9]+\.[0-9]+\.[0-9]+",
    "CRP-Context-Session-Id": r"crp_sess_[A-Za-z0-9]{16,32}",
    "CRP-Context-Window": r"[0-9]+/[0-9]+",
    "CRP-Context-Continuation-Id": r"crp_cont_[A-Za-z0-9]{16,32}",
    "CRP-Context-Quality-Tier": r"[SABCD]|N/A",
    "CRP-Context-Saturation": FRACTION,
    "CRP-Context-Facts-Used": r"[0-9]+/[0-9]+",
    "CRP-Context-Tokens-Used": r"[0-9]+",
    "CRP-Context-Strategy": (
        r"push|pull|reflexive|agentic|hierarchical|batch|streaming|fan-out|fan-in"
    ),
    "CRP-Context-ETag": CRP_HASH,
    "CRP-Context-Cache-Status": r"(?:HIT|MISS|PARTIAL)(?:; reason=[A-Za-z0-9_-]+)?",
    "CRP-Context-Mode": r"zero-ckf|partial-ckf|full-ckf",
    "CRP-Safety-Hallucination-Risk": r"CRITICAL|HIGH|MEDIUM|LOW",
    "CRP-Safety-Hallucination-Score": FRACTION,
    "CRP-Safety-Attribution": r"CONTEXT_GROUNDED|PARAMETRIC|MIXED|UNVERIFIABLE",
    "CRP-Safety-Grounding-Pct": rf"{FRACTION}|N/A",
    "CRP-Safety-Fabrications": r"[0-9]+",
    "CRP-Safety-Oversight-Mode": r"auto|human-review|halt|log-only",
    "CRP-Safety-Policy-Applied": rf"(?:{DIRECTIVE_ITEM}(?:; {DIRECTIVE_ITEM})*)?",
    "CRP-Safety-Policy-Adjustment": rf"{ADJUSTMENT}(?:, {ADJUSTMENT})*",
    "CRP-Safety-Policy-Violation": r"[a-z0-9-]+(?:,[a-z0-9-]+)*",
    "CRP-Provenance-HMAC": CRP_HASH,
    "CRP-Provenance-Window-HMAC": CRP_HASH,
    "CRP-Provenance-Chain-Integrity": r"VALID|BROKEN|PARTIAL|UNVERIFIED",
    "CRP-Compliance-EU-AI-Act": r"UNACCEPTABLE|HIGH|LIMITED|MINIMAL|UNKNOWN",
    "CRP-Compliance-GDPR-PII": r"true|false",
    "CRP-Compliance-Audit-Trail-Id": r"crp_trail_[A-Za-z0-9]{16,32}",
    "CRP-Compliance-Audit-Trail-URI": r"https://\S+",
    "CRP-Compliance-Data-Residency": r"[A-Z]{2}",
    "CRP-Agent-Revision-Round": r"[0-9]+/[0-9]+",
    "CRP-Memory-CKF-Hits": r"[0-9]+",
    "CRP-Set-Session": r"token=[A-Za-z0-9_\-.]+(?:; [A-Za-z-]+(?:=[^;]*)?)*",
    "CRP-Quality-Repetition": (
        rf"(?:NONE|MINOR|SIGNIFICANT|SEVERE)(?:; overlap={FRACTION})?"
    ),
    "CRP-Onboarding-Hint": r"[a-z0-9-]+",
    "CRP-Activation-Status": r"[a-z0-9=-]+(?:; [a-z0-9=-]+)*",
}

# SHA-256("|0"), the empty fact set under 003§7.5, as printed in digest §5.8.
EMPTY_SET_ETAG = (
    "sha256:ef12efbd765f9ad308460dc13dd2d5d06784bbe91adb0bf5fa752eddf10a38eb"
)

PROMPT = "When was the Eiffel Tower built? Mail me at jane.doe@example.com."
ANSWER = (
    "MARKER-ZQXJ-7731 The tower opened on 31 March 1889 and is 330 metres tall; "
    "see https://example.org/eiffel for 7,000,000 annual visitors."
)


def zero_ckf_policy(text: str = "halt-on CRITICAL; block-ungrounded") -> ResolvedPolicy:
    return resolve_policy(request=parse_policy(text), zero_ckf=True)


@pytest.fixture
def input_scan() -> InputScan:
    return scan_input([PROMPT])


@pytest.fixture
def output_scan(input_scan: InputScan) -> OutputScan:
    return scan_output(ANSWER, [PROMPT], input_scan=input_scan)


@pytest.fixture
def facts(input_scan: InputScan, output_scan: OutputScan) -> CallFacts:
    return CallFacts(
        policy=zero_ckf_policy(),
        input_scan=input_scan,
        output_scan=output_scan,
        outcome=CallOutcome.WARN,
        violations=("warn-on",),
        prompt_tokens=12,
        completion_tokens=30,
        data_residency="EU",
        session=SessionFacts(
            session_id="crp_sess_" + "a1" * 16,
            window=1,
            max_windows=5,
            continuation_id="crp_cont_" + "b2" * 16,
            set_session="token=abc.def; Path=/; Max-Age=3600; Signed; SameSite=Strict",
            provenance_hmac="sha256:" + "c3" * 32,
            window_hmac="sha256:" + "d4" * 32,
            chain_integrity=ChainIntegrity.UNVERIFIED,
            audit_trail_id="crp_trail_" + "e5" * 16,
            audit_trail_uri="https://gw.example/crp/v3/trail/crp_trail_" + "e5" * 16,
        ),
    )


# --- response headers: formats ------------------------------------------------------


def test_every_emitted_header_has_a_known_format_and_matches_it(
    facts: CallFacts,
) -> None:
    headers = response_headers(facts)
    unknown = set(headers) - set(FORMATS)
    assert not unknown, f"headers without a §2 format: {unknown}"
    for name, value in headers.items():
        assert re.fullmatch(FORMATS[name], value), (name, value)


def test_full_facts_emit_the_expected_header_set(facts: CallFacts) -> None:
    headers = response_headers(facts)
    assert set(headers) == set(FORMATS)


def test_fractions_are_within_zero_and_one(facts: CallFacts) -> None:
    headers = response_headers(facts)
    for name in ("CRP-Context-Saturation", "CRP-Safety-Hallucination-Score"):
        assert 0.0 <= float(headers[name]) <= 1.0


def test_protocol_version_is_3_0_0(facts: CallFacts) -> None:
    assert response_headers(facts)["CRP-Context-Protocol-Version"] == "3.0.0"


def test_zero_ckf_fixed_values_of_spec_017(facts: CallFacts) -> None:
    headers = response_headers(facts)
    assert headers["CRP-Context-Mode"] == "zero-ckf"
    assert headers["CRP-Context-Quality-Tier"] == "N/A"
    assert float(headers["CRP-Context-Saturation"]) == 0.0
    assert headers["CRP-Context-Facts-Used"] == "0/0"
    assert headers["CRP-Safety-Attribution"] == "PARAMETRIC"
    assert headers["CRP-Safety-Grounding-Pct"] == "N/A"
    assert headers["CRP-Memory-CKF-Hits"] == "0"
    assert headers["CRP-Context-Cache-Status"].startswith("MISS")
    assert "CRP-Safety-Distortions" not in headers
    assert "CRP-Safety-Omissions" not in headers


def test_etag_is_the_empty_set_hash(facts: CallFacts) -> None:
    independent = "sha256:" + hashlib.sha256(b"|0").hexdigest()
    etag = response_headers(facts)["CRP-Context-ETag"]
    assert etag == independent == EMPTY_SET_ETAG


def test_context_etag_matches_the_digest_vector_and_ignores_order() -> None:
    vector = "sha256:ea60ee9d8ea4f4d652564d375d3222e972c6b54172ecea4502e2f35b00ea925e"
    assert context_etag(["f2", "f1"]) == context_etag(["f1", "f2"]) == vector


def test_no_zero_ckf_values_outside_zero_ckf_mode(facts: CallFacts) -> None:
    with_ckf = dataclasses.replace(
        facts, policy=resolve_policy(request=parse_policy("halt-on CRITICAL"))
    )
    headers = response_headers(with_ckf)
    for name in (
        "CRP-Context-Mode",
        "CRP-Context-Quality-Tier",
        "CRP-Context-ETag",
        "CRP-Safety-Attribution",
        "CRP-Safety-Grounding-Pct",
        "CRP-Memory-CKF-Hits",
        "CRP-Safety-Policy-Adjustment",
    ):
        assert name not in headers


def test_every_relaxation_is_announced(facts: CallFacts) -> None:
    policy = resolve_policy(
        request=parse_policy("default-src context; require-grounding 0.80"),
        report_only=parse_policy("block-ungrounded"),
        zero_ckf=True,
    )
    value = response_headers(dataclasses.replace(facts, policy=policy))[
        "CRP-Safety-Policy-Adjustment"
    ]
    entries = value.split(", ")
    assert len(entries) == 3
    directives = {re.match(r"directive=([^;]+);", e).group(1) for e in entries}  # type: ignore[union-attr]
    assert directives == {
        "default-src context",
        "require-grounding 0.80",
        "block-ungrounded",
    }


def test_policy_applied_is_the_enforced_policy(facts: CallFacts) -> None:
    applied = response_headers(facts)["CRP-Safety-Policy-Applied"]
    reparsed = parse_policy(applied, allow_internal=True)
    assert reparsed == facts.policy.policy
    assert "block-ungrounded" not in applied.split("; ")


def test_heuristic_signals_follow_the_output_scan(
    facts: CallFacts, output_scan: OutputScan
) -> None:
    headers = response_headers(facts)
    assert int(headers["CRP-Safety-Fabrications"]) == output_scan.fabrication.count
    assert int(headers["CRP-Safety-Fabrications"]) > 0
    score = float(headers["CRP-Safety-Hallucination-Score"])
    assert score == pytest.approx(output_scan.risk.score)
    expected = (
        "CRITICAL"
        if score >= 0.70
        else "HIGH"
        if score >= 0.45
        else "MEDIUM"
        if score >= 0.20
        else "LOW"
    )
    assert headers["CRP-Safety-Hallucination-Risk"] == expected


def test_risk_is_omitted_for_an_unpublished_method(
    facts: CallFacts, output_scan: OutputScan
) -> None:
    assert facts.output_scan is not None
    unpublished = dataclasses.replace(output_scan.risk, method="vendor.dpe/9")
    scan = dataclasses.replace(output_scan, risk=unpublished)
    headers = response_headers(dataclasses.replace(facts, output_scan=scan))
    assert "CRP-Safety-Hallucination-Risk" not in headers
    assert "CRP-Safety-Hallucination-Score" not in headers


def test_no_answer_means_no_answer_signals(facts: CallFacts) -> None:
    headers = response_headers(
        dataclasses.replace(facts, output_scan=None, outcome=CallOutcome.HALT)
    )
    for name in (
        "CRP-Safety-Hallucination-Risk",
        "CRP-Safety-Hallucination-Score",
        "CRP-Safety-Fabrications",
        "CRP-Quality-Repetition",
        "CRP-Safety-Attribution",
    ):
        assert name not in headers
    assert headers["CRP-Compliance-GDPR-PII"] == "true"  # from the prompt


def test_gdpr_pii_false_without_personal_data(facts: CallFacts) -> None:
    clean_in = scan_input(["What is two plus two?"])
    clean_out = scan_output("Four.", ["What is two plus two?"], input_scan=clean_in)
    headers = response_headers(
        dataclasses.replace(facts, input_scan=clean_in, output_scan=clean_out)
    )
    assert headers["CRP-Compliance-GDPR-PII"] == "false"


def test_no_value_is_copied_from_model_output(facts: CallFacts) -> None:
    fragments = {"MARKER", "ZQXJ", "7731", "example.org", "eiffel", "1889", "330"}
    for value in response_headers(facts).values():
        for fragment in fragments:
            assert fragment not in value


def test_tokens_used_needs_both_counts(facts: CallFacts) -> None:
    assert response_headers(facts)["CRP-Context-Tokens-Used"] == str(12 + 30)
    partial = dataclasses.replace(facts, completion_tokens=None)
    assert "CRP-Context-Tokens-Used" not in response_headers(partial)


def test_strategy_and_oversight(facts: CallFacts) -> None:
    headers = response_headers(facts)
    assert headers["CRP-Context-Strategy"] == "push"
    assert headers["CRP-Safety-Oversight-Mode"] == "auto"
    stricter = dataclasses.replace(
        facts, streamed=True, requested_oversight=OversightMode.HALT
    )
    headers = response_headers(stricter)
    assert headers["CRP-Context-Strategy"] == "streaming"
    assert headers["CRP-Safety-Oversight-Mode"] == "halt"
    looser = dataclasses.replace(
        facts,
        policy=zero_ckf_policy("oversight human-review"),
        requested_oversight=OversightMode.LOG_ONLY,
    )
    assert response_headers(looser)["CRP-Safety-Oversight-Mode"] == "human-review"


def test_violations_and_outcomes(facts: CallFacts) -> None:
    warned = dataclasses.replace(facts, violations=("warn-on", "block-pii", "warn-on"))
    assert (
        response_headers(warned)["CRP-Safety-Policy-Violation"] == "warn-on,block-pii"
    )
    passed = dataclasses.replace(facts, outcome=CallOutcome.PASS, violations=())
    assert "CRP-Safety-Policy-Violation" not in response_headers(passed)
    with pytest.raises(ValueError, match="PASS"):
        dataclasses.replace(facts, outcome=CallOutcome.PASS)
    with pytest.raises(ValueError, match="violation"):
        dataclasses.replace(facts, violations=("Halt On",))


def test_session_headers_are_absent_without_a_session(facts: CallFacts) -> None:
    headers = response_headers(dataclasses.replace(facts, session=None))
    for name in (
        "CRP-Context-Session-Id",
        "CRP-Context-Window",
        "CRP-Provenance-HMAC",
        "CRP-Provenance-Chain-Integrity",
        "CRP-Compliance-Audit-Trail-Id",
        "CRP-Set-Session",
    ):
        assert name not in headers


@pytest.mark.parametrize(
    "change",
    [
        {"session_id": "crp_sess_short"},
        {"session_id": "sess_" + "a" * 32},
        {"window": 6},
        {"window": 0},
        {"max_windows": None},
        {"provenance_hmac": "sha256=" + "c3" * 32},
        {"audit_trail_id": "crp_trail_x"},
        {"continuation_id": "crp_cont_" + "!" * 16},
        {"set_session": "abc.def"},
    ],
)
def test_session_facts_reject_malformed_values(
    facts: CallFacts, change: dict[str, object]
) -> None:
    assert facts.session is not None
    with pytest.raises(ValueError):  # noqa: PT011 - several messages
        dataclasses.replace(facts.session, **change)  # type: ignore[arg-type]


def test_extra_is_merged_last_and_validated(facts: CallFacts) -> None:
    extra = {"CRP-Context-Strategy": "reflexive", "CRP-Agent-Tool-Calls": "2"}
    headers = response_headers(dataclasses.replace(facts, extra=extra))
    assert headers["CRP-Context-Strategy"] == "reflexive"
    assert headers["CRP-Agent-Tool-Calls"] == "2"
    with pytest.raises(ValueError, match="CRP"):
        dataclasses.replace(facts, extra={"X-Other": "1"})
    injected = dataclasses.replace(facts, extra={"CRP-Agent-Tool-Calls": "1\r\nX: y"})
    with pytest.raises(ValueError, match="ASCII"):
        response_headers(injected)


def test_invalid_call_facts(facts: CallFacts) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        dataclasses.replace(facts, prompt_tokens=-1)
    with pytest.raises(ValueError, match="revision_round"):
        dataclasses.replace(facts, revision_round=2)
    with pytest.raises(ValueError, match="data_residency"):
        dataclasses.replace(facts, data_residency="eu-west")


def test_policy_applied_can_be_empty(facts: CallFacts) -> None:
    permissive = dataclasses.replace(facts, policy=resolve_policy(zero_ckf=True))
    headers = response_headers(permissive)
    assert headers["CRP-Safety-Policy-Applied"] == format_policy(parse_policy(""))
    assert headers["CRP-Safety-Policy-Applied"] == ""


# --- security headers -----------------------------------------------------------------


def test_security_headers_are_the_015_7_set() -> None:
    assert dict(SECURITY_HEADERS) == {
        "Strict-Transport-Security": "max-age=31536000; includeSubDomains; preload",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "Permissions-Policy": "geolocation=(), microphone=(), camera=()",
        "Cache-Control": "no-store, no-cache, private",
    }
    with pytest.raises(TypeError):
        SECURITY_HEADERS["X-Frame-Options"] = "SAMEORIGIN"  # type: ignore[index]


# --- SSE verdict event ----------------------------------------------------------------


def test_crp_headers_event_framing(facts: CallFacts) -> None:
    headers = {**response_headers(facts), "Content-Type": "text/event-stream"}
    raw = crp_headers_event(headers)
    text = raw.decode("ascii")
    match = re.fullmatch(r"event: crp-headers\ndata: ([^\n]+)\n\n", text)
    assert match is not None, text
    payload = json.loads(match.group(1))
    assert payload == {k: v for k, v in headers.items() if k.startswith("CRP-")}
    assert "Content-Type" not in payload


# --- request headers ------------------------------------------------------------------


def test_allowlisted_headers_are_accepted_case_insensitively() -> None:
    check = check_request_headers(
        {
            "crp-safety-policy": " halt-on CRITICAL ",
            "CRP-SAFETY-MODE": "strict",
            "Crp-Safety-Policy-Report-Only": "block-pii",
            "crp-session-token": "payload.sig",
            "crp-context-session-id": "crp_sess_" + "0" * 32,
            "crp-compliance-data-residency": "EU",
            "crp-safety-oversight-mode": "halt",
            "crp-provider-key": "sk-live-secret",
            "content-type": "application/json",
            "authorization": "Bearer crp_gw_x",
        }
    )
    assert check.policy == "halt-on CRITICAL"
    assert check.mode == "strict"
    assert check.report_only_policy == "block-pii"
    assert check.session_token == "payload.sig"
    assert check.session_id == "crp_sess_" + "0" * 32
    assert check.provider_key == "sk-live-secret"
    assert check.get("crp-compliance-data-residency") == "EU"
    assert check.get("CRP-Safety-Oversight-Mode") == "halt"
    assert "Content-Type" not in check.accepted
    assert check.stripped == ()
    assert "sk-live-secret" not in repr(check)
    assert "payload.sig" not in repr(check)


@pytest.mark.parametrize(
    "name",
    [
        "CRP-Safety-Hallucination-Risk",
        "crp-safety-hallucination-score",
        "CRP-Safety-Attribution",
        "CRP-Safety-Fabrications",
        "CRP-Safety-Grounding-Pct",
        "CRP-Safety-Policy-Applied",
    ],
)
def test_response_only_safety_header_is_rejected_without_echo(name: str) -> None:
    secret_value = "LOW-but-do-not-echo-4412"
    with pytest.raises(RequestHeaderError) as caught:
        check_request_headers({name: secret_value, "CRP-Safety-Policy": "halt-on HIGH"})
    canonical = next(n for n in REJECTED_REQUEST_HEADERS if n.lower() == name.lower())
    assert caught.value.header == canonical
    assert canonical in str(caught.value)
    assert secret_value not in str(caught.value)


def test_provenance_and_compliance_headers_are_stripped() -> None:
    check = check_request_headers(
        {
            "CRP-Provenance-HMAC": "sha256:" + "0" * 64,
            "crp-compliance-gdpr-pii": "false",
            "CRP-Quality-Repetition": "NONE",
            "CRP-Set-Session": "token=x",
            "CRP-Safety-Policy": "halt-on HIGH",
        }
    )
    assert check.accepted == ("CRP-Safety-Policy",)
    assert {(s.name, s.reason) for s in check.stripped} == {
        ("CRP-Provenance-HMAC", StripReason.RESPONSE_ONLY),
        ("CRP-Compliance-GDPR-PII", StripReason.RESPONSE_ONLY),
        ("CRP-Quality-Repetition", StripReason.RESPONSE_ONLY),
        ("CRP-Set-Session", StripReason.RESPONSE_ONLY),
    }
    assert check.get("CRP-Provenance-HMAC") is None


def test_unknown_crp_headers_are_stripped_as_unknown() -> None:
    check = check_request_headers(
        {
            "CRP-Safety-Profile": "balanced",
            "CRP-Context-Acceptance": "x",
            "CRP-Bad Name": "1",
        }
    )
    assert check.values == {}
    assert [(s.name, s.reason) for s in check.stripped] == [
        ("CRP-Safety-Profile", StripReason.UNKNOWN),
        ("CRP-Context-Acceptance", StripReason.UNKNOWN),
        ("?", StripReason.UNKNOWN),
    ]


def test_header_catalogue_is_consistent() -> None:
    assert not REQUEST_HEADERS & RESPONSE_ONLY_HEADERS
    assert all(name.startswith("CRP-Safety-") for name in REJECTED_REQUEST_HEADERS)
    assert REJECTED_REQUEST_HEADERS <= RESPONSE_ONLY_HEADERS
    both = {
        "CRP-Safety-Oversight-Mode",
        "CRP-Safety-Nonce",
        "CRP-Compliance-Data-Residency",
        "CRP-Agent-Safety-Budget",
        "CRP-Context-Continuation-Id",
        "CRP-Context-Session-Id",
    }
    assert both <= REQUEST_HEADERS
    assert {
        "CRP-Safety-Hallucination-Risk",
        "CRP-Safety-Hallucination-Score",
        "CRP-Safety-Attribution",
    } <= REJECTED_REQUEST_HEADERS
    assert "CRP-Provenance-HMAC" not in REJECTED_REQUEST_HEADERS
