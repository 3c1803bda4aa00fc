"""CRP request-header checks and response-header computation, pure and I/O-free.

Digest references: §2 (header catalogue, value formats and base ABNF), §2.3
(what an honest no-ML gateway emits), §3.4 (outcomes), §9 (decisions).

Request side (G22, G23; 002§5, §14.1; 015§3.5):

* `REQUEST_HEADERS` is the explicit allowlist of CRP headers a client may
  send (REQ and BOTH rows of §2.1/§2.2). Their values are exposed by
  `RequestHeaderCheck`; nothing here forwards them anywhere (Axiom 4: the
  outbound allowlist never includes any `CRP-*`).
* A response-only `CRP-Safety-*` header on a request is an error:
  `RequestHeaderError` (HTTP 400), naming the header, never its value.
* Other response-only CRP headers (`CRP-Provenance-*`, `CRP-Compliance-*`
  except Data-Residency, `CRP-Quality-*`, `CRP-Set-Session`, ...) are
  stripped and listed (names only) for the log.
* Unknown `CRP-*` headers: the digest asks for an allowlist and for every strip
  to be logged (G22), and the 400 rule covers *response-only* names only; so an
  unknown name (a typo, a newer protocol version, the reference SDK's non-spec
  `CRP-Safety-Profile`, the phantom `CRP-Context-Acceptance`, G1) is stripped
  and listed with reason `unknown`, never rejected. `CRP-Safety-Policy-Applied`
  on the response shows what was enforced, which makes a misspelt policy
  header visible (002§3.4).

Response side (`response_headers`): the §2.3 set that does not need a
session, each value in the §2 format, computed from `CallFacts` only; a value
is never taken from model output (002§3.3, §14.1). Headers that need data we
do not have are omitted, which SPEC-002 §2.3 defines as "not computed":

* always: Protocol-Version (`3.0.0`), Strategy (`push`/`streaming`),
  Oversight-Mode, Safety-Policy-Applied (may be the empty string: no
  directives), Policy-Adjustment (G20: every zero-CKF relaxation of the
  enforced *and* the report-only policy), Policy-Violation (the violated
  directive names, G18), GDPR-PII (`crp-gw.pii/1`; not to be listed in
  `Access-Control-Expose-Headers`, 002§15), EU-AI-Act (`CallFacts.eu_ai_act`:
  the stored class of the calling key's registered system, `UNKNOWN` when it
  has none, G2), Agent-Revision-Round, Tokens-Used (provider `usage`, only
  when both counts are known);
* zero-CKF (SPEC-017 §2.1, G3, G21): Context-Mode `zero-ckf`, Quality-Tier
  `N/A`, Saturation `0.0`, Facts-Used `0/0`, Grounding-Pct `N/A`,
  Memory-CKF-Hits `0`, Context-ETag of the empty fact set (003§7.5, computed
  by `context_etag`), Cache-Status `MISS; reason=zero-ckf`, Onboarding-Hint
  and Activation-Status; Attribution `PARAMETRIC` only when there is a
  response. Distortions and Omissions are skipped (omitted);
* heuristic signals (G37): Hallucination-Risk/-Score only from the published
  `crp-gw.risk/1` method, Fabrications (`crp-gw.fabrication/1`) and
  Quality-Repetition (`crp-gw.repetition/1`). Header values stay in their ABNF
  (no `; method=` parameter, which would break the Risk enum); the method of
  each header is `SIGNAL_METHODS`, published in the well-known document;
* session and chain headers (next issue) slot in through `SessionFacts`;
  `CallFacts.extra` is merged last for anything else.

`SECURITY_HEADERS` is the 015§7 set. Decision: it applies to every response,
including `Cache-Control: no-store, no-cache, private` (completions may carry
personal data; the discovery document is cheap to refetch), as 015§7 says.
Its CSP blocks the CDN assets of FastAPI's interactive docs.

`crp_headers_event` is the G24 pass-through-stream verdict (sent after
`data: [DONE]`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from crp_gateway.governance.policy import Adjustment, OversightMode, ResolvedPolicy
from crp_gateway.governance.scanners import (
    InputScan,
    OutputScan,
    describe_methods,
    gdpr_pii,
)
from crp_gateway.governance.scanners import fabrication as _fabrication
from crp_gateway.governance.scanners import pii as _pii
from crp_gateway.governance.scanners import repetition as _repetition
from crp_gateway.governance.scanners import risk as _risk

__all__ = [
    "ACTIVATION_STATUS",
    "AUDIT_TRAIL_ID",
    "AUDIT_TRAIL_URI",
    "EMITTED_RESPONSE_HEADERS",
    "ONBOARDING_HINT",
    "POLICY_VIOLATION",
    "PROTOCOL_VERSION",
    "PROTOCOL_VERSION_HEADER",
    "REJECTED_REQUEST_HEADERS",
    "REQUEST_HEADERS",
    "RESPONSE_ONLY_HEADERS",
    "RETRY_AFTER",
    "SECRET_REQUEST_HEADERS",
    "SECURITY_HEADERS",
    "SESSION_ID",
    "SIGNAL_METHODS",
    "CallFacts",
    "CallOutcome",
    "ChainIntegrity",
    "EuAiActClass",
    "RequestHeaderCheck",
    "RequestHeaderError",
    "SessionFacts",
    "StripReason",
    "StrippedHeader",
    "check_request_headers",
    "context_etag",
    "crp_headers_event",
    "response_headers",
]

#: The CRP version implemented (digest §0: all specs v3.0.0; §2.1).
PROTOCOL_VERSION = "3.0.0"

# --- header names -----------------------------------------------------------

PROTOCOL_VERSION_HEADER = "CRP-Context-Protocol-Version"
SESSION_ID = "CRP-Context-Session-Id"
CONTINUATION_ID = "CRP-Context-Continuation-Id"
SAFETY_POLICY = "CRP-Safety-Policy"
SAFETY_POLICY_REPORT_ONLY = "CRP-Safety-Policy-Report-Only"
SAFETY_MODE = "CRP-Safety-Mode"
SESSION_TOKEN = "CRP-Session-Token"  # noqa: S105 - a header name
SAFETY_BUDGET = "CRP-Agent-Safety-Budget"
BUDGET_WARNING = "CRP-Safety-Budget-Warning"
OVERSIGHT_TOKEN = "CRP-Oversight-Token"  # noqa: S105 - a header name
PROVIDER_KEY = "CRP-Provider-Key"
POLICY_VIOLATION = "CRP-Safety-Policy-Violation"
RETRY_AFTER = "CRP-Safety-Retry-After"
AUDIT_TRAIL_ID = "CRP-Compliance-Audit-Trail-Id"
AUDIT_TRAIL_URI = "CRP-Compliance-Audit-Trail-URI"

#: CRP headers a client may send (REQ and BOTH directions, §2.1/§2.2, G22).
REQUEST_HEADERS: frozenset[str] = frozenset(
    {
        SESSION_ID,
        CONTINUATION_ID,
        "CRP-Context-If-Match",
        "CRP-Context-Cache",
        "CRP-Accept-Quality",
        "CRP-Accept-Strategy",
        "CRP-Accept-Risk",
        SAFETY_MODE,
        SAFETY_POLICY,
        SAFETY_POLICY_REPORT_ONLY,
        "CRP-Safety-Report-URI",
        "CRP-Safety-Oversight-Mode",
        "CRP-Safety-Nonce",
        "CRP-Compliance-Data-Residency",
        SAFETY_BUDGET,
        "CRP-Agent-Session-Parent",
        "CRP-Agent-Dispatch-Strategy",
        "CRP-Agent-Fan-In-Policy",
        SESSION_TOKEN,
        "CRP-Session-Action",
        OVERSIGHT_TOKEN,
        PROVIDER_KEY,
        "CRP-LLM-Grounding-Mode",
        "CRP-LLM-Reproducibility-Seed",
        "CRP-Stream-Safety-Mode",
    }
)

#: Request headers whose values are credentials: never log them (007§9.1,
#: 015§4.6, 016§10.3).
SECRET_REQUEST_HEADERS: frozenset[str] = frozenset(
    {SESSION_TOKEN, OVERSIGHT_TOKEN, PROVIDER_KEY}
)

#: CRP headers only the gateway sets (RES rows of §2.1/§2.2, plus the internal
#: CRP-LLM-Temperature).
RESPONSE_ONLY_HEADERS: frozenset[str] = frozenset(
    {
        PROTOCOL_VERSION_HEADER,
        *(
            f"CRP-Context-{name}"
            for name in (
                "Window",
                "Quality-Tier",
                "Saturation",
                "Facts-Used",
                "Tokens-Used",
                "Strategy",
                "ETag",
                "Cache-Status",
                "Mode",
                "Mode-Transition",
                "Coverage",
            )
        ),
        *(
            f"CRP-Safety-{name}"
            for name in (
                "Hallucination-Risk",
                "Hallucination-Score",
                "Attribution",
                "Grounding-Pct",
                "Fabrications",
                "Distortions",
                "Contradictions",
                "Omissions",
                "Entailment-Score",
                "Retry-After",
                "Policy-Applied",
                "Policy-Violation",
                "Policy-Adjustment",
                "Budget-Warning",
                "Stop-Inject",
            )
        ),
        *(
            f"CRP-Provenance-{name}"
            for name in (
                "HMAC",
                "Window-HMAC",
                "DAG-Root",
                "Chain-Integrity",
                "Claim-Count",
                "Attribution-Score",
                "Fidelity-Score",
                "Report-URI",
                "Window-Lineage",
            )
        ),
        *(
            f"CRP-Compliance-{name}"
            for name in (
                "EU-AI-Act",
                "NIST-Tier",
                "GDPR-PII",
                "ISO-42001",
                "Audit-Trail-Id",
                "Audit-Trail-URI",
                "Controls-Met",
            )
        ),
        *(
            f"CRP-Agent-{name}"
            for name in ("Phase", "Loop-Depth", "Tool-Calls", "Revision-Round")
        ),
        *(
            f"CRP-Memory-{name}"
            for name in ("Tier-Hit", "CKF-Hits", "CKF-Community", "Knowledge-Age")
        ),
        *(
            f"CRP-Quality-{name}"
            for name in ("Repetition", "Completeness", "Flow", "Score")
        ),
        *(
            f"CRP-Onboarding-{name}"
            for name in ("Active", "Days-Remaining", "Next-Action", "Hint")
        ),
        "CRP-Activation-Status",
        "CRP-Activation-Features",
        "CRP-Set-Session",
        "CRP-LLM-Temperature",
    }
)

#: Response-only `CRP-Safety-*` names: a request carrying one is answered 400
#: (G22; 002§5 names Risk, Score and Attribution).
REJECTED_REQUEST_HEADERS: frozenset[str] = frozenset(
    name for name in RESPONSE_ONLY_HEADERS if name.startswith("CRP-Safety-")
)

#: Which published method (`describe_methods()` id) produces each heuristic
#: header (G37). The well-known document publishes this map.
SIGNAL_METHODS: Mapping[str, str] = MappingProxyType(
    {
        "CRP-Safety-Hallucination-Risk": _risk.METHOD_ID,
        "CRP-Safety-Hallucination-Score": _risk.METHOD_ID,
        "CRP-Safety-Fabrications": _fabrication.METHOD_ID,
        "CRP-Quality-Repetition": _repetition.METHOD_ID,
        "CRP-Compliance-GDPR-PII": _pii.METHOD_ID,
    }
)
_PUBLISHED_METHODS: frozenset[str] = frozenset(describe_methods())

#: The 015§7 security header set, for every gateway response (see docstring).
SECURITY_HEADERS: Mapping[str, str] = MappingProxyType(
    {
        "Strict-Transport-Security": "max-age=31536000; includeSubDomains; preload",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "Permissions-Policy": "geolocation=(), microphone=(), camera=()",
        "Cache-Control": "no-store, no-cache, private",
    }
)

_CANONICAL: Mapping[str, str] = MappingProxyType(
    {name.casefold(): name for name in REQUEST_HEADERS | RESPONSE_ONLY_HEADERS}
)
_CRP_PREFIX = "crp-"

# --- request side -------------------------------------------------------------


class RequestHeaderError(ValueError):
    """A request carried response-only `CRP-Safety-*` headers (HTTP 400).

    `headers` are the canonical names, sorted; the message names them and never
    contains a value.
    """

    def __init__(self, headers: Iterable[str]) -> None:
        self.headers = tuple(sorted(headers))
        self.header = self.headers[0]
        names = ", ".join(self.headers)
        super().__init__(f"response-only CRP header not allowed on a request: {names}")


class StripReason(StrEnum):
    """Why a request CRP header was dropped (logged, G22)."""

    RESPONSE_ONLY = "response-only"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class StrippedHeader:
    """A dropped request header: its name (canonical when known), no value."""

    name: str
    reason: StripReason


@dataclass(frozen=True)
class RequestHeaderCheck:
    """The accepted request CRP headers (canonical name -> value, stripped of
    surrounding whitespace) and the dropped ones.

    `values` holds credentials (see `SECRET_REQUEST_HEADERS`) and is kept out
    of `repr`; log `accepted` (names) instead.
    """

    values: Mapping[str, str] = field(repr=False)
    stripped: tuple[StrippedHeader, ...] = ()

    @property
    def accepted(self) -> tuple[str, ...]:
        """Names of the accepted headers, sorted (safe to log)."""
        return tuple(sorted(self.values))

    def get(self, name: str) -> str | None:
        """The value of an accepted header, by any spelling of its name."""
        canonical = _CANONICAL.get(name.casefold(), name)
        return self.values.get(canonical)

    @property
    def policy(self) -> str | None:
        return self.values.get(SAFETY_POLICY)

    @property
    def report_only_policy(self) -> str | None:
        return self.values.get(SAFETY_POLICY_REPORT_ONLY)

    @property
    def mode(self) -> str | None:
        return self.values.get(SAFETY_MODE)

    @property
    def session_token(self) -> str | None:
        return self.values.get(SESSION_TOKEN)

    @property
    def session_id(self) -> str | None:
        return self.values.get(SESSION_ID)

    @property
    def continuation_id(self) -> str | None:
        return self.values.get(CONTINUATION_ID)

    @property
    def provider_key(self) -> str | None:
        return self.values.get(PROVIDER_KEY)


def check_request_headers(headers: Mapping[str, str]) -> RequestHeaderCheck:
    """Sort the request's `CRP-*` headers into accepted / stripped / rejected.

    Names are matched case-insensitively; non-CRP headers are ignored. Raises
    `RequestHeaderError` if any response-only `CRP-Safety-*` header is present.
    With a mapping that folds repeated fields, the value is whatever the
    mapping returns (Starlette: the first one).
    """
    accepted: dict[str, str] = {}
    stripped: list[StrippedHeader] = []
    rejected: list[str] = []
    for raw_name, value in headers.items():
        folded = raw_name.strip().casefold()
        if not folded.startswith(_CRP_PREFIX):
            continue
        name = _CANONICAL.get(folded)
        if name in REQUEST_HEADERS:
            accepted[name] = value.strip()
        elif name in REJECTED_REQUEST_HEADERS:
            rejected.append(name)
        elif name is not None:
            stripped.append(StrippedHeader(name, StripReason.RESPONSE_ONLY))
        else:
            stripped.append(StrippedHeader(_loggable(raw_name), StripReason.UNKNOWN))
    if rejected:
        raise RequestHeaderError(rejected)
    return RequestHeaderCheck(MappingProxyType(accepted), tuple(stripped))


_TOKEN_CHARS = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}")


def _loggable(name: str) -> str:
    """An unknown header name as it may be logged: a valid token, else `?`."""
    name = name.strip()
    return name if _TOKEN_CHARS.fullmatch(name) else "?"


# --- call facts -------------------------------------------------------------------


class CallOutcome(StrEnum):
    """The enforcement outcome of a call (digest §3.4)."""

    PASS = "PASS"  # noqa: S105 - an outcome, not a password
    WARN = "WARN"
    HALT = "HALT"


class ChainIntegrity(StrEnum):
    """`CRP-Provenance-Chain-Integrity` values (§2.1, §5.7)."""

    VALID = "VALID"
    BROKEN = "BROKEN"
    PARTIAL = "PARTIAL"
    UNVERIFIED = "UNVERIFIED"


class EuAiActClass(StrEnum):
    """`CRP-Compliance-EU-AI-Act` values; `UNKNOWN` for unregistered systems
    (002§12.5, G2)."""

    UNACCEPTABLE = "UNACCEPTABLE"
    HIGH = "HIGH"
    LIMITED = "LIMITED"
    MINIMAL = "MINIMAL"
    UNKNOWN = "UNKNOWN"


_SESSION_ID = re.compile(r"crp_sess_[A-Za-z0-9]{16,32}")
_CONTINUATION_ID = re.compile(r"crp_cont_[A-Za-z0-9]{16,32}")
_TRAIL_ID = re.compile(r"crp_trail_[A-Za-z0-9]{16,32}")
_CRP_HASH = re.compile(r"sha256:[0-9a-f]{64}")
_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[!-~]+")
_DIRECTIVE = re.compile(r"[a-z0-9][a-z0-9-]*")
_RESIDENCY = re.compile(r"[A-Z]{2}")


def _require(pattern: re.Pattern[str], value: str | None, what: str) -> None:
    if value is not None and not pattern.fullmatch(value):
        raise ValueError(f"{what} is not in its CRP format")


@dataclass(frozen=True, kw_only=True)
class SessionFacts:
    """Session and chain values of one call (filled by the session layer).

    Each present field becomes its header in the §2.1 format: Session-Id,
    Window `N/M` (both numbers needed, G4), Continuation-Id, Set-Session,
    Provenance-HMAC (chained, G7), Provenance-Window-HMAC, Chain-Integrity,
    Audit-Trail-Id and -URI.
    """

    session_id: str
    window: int | None = None
    max_windows: int | None = None
    continuation_id: str | None = None
    set_session: str | None = None
    provenance_hmac: str | None = None
    window_hmac: str | None = None
    chain_integrity: ChainIntegrity | None = None
    audit_trail_id: str | None = None
    audit_trail_uri: str | None = None
    safety_budget: float | None = None

    def __post_init__(self) -> None:
        _require(_SESSION_ID, self.session_id, "session_id")
        if self.safety_budget is not None and not 0 <= self.safety_budget <= 1:
            raise ValueError("safety_budget must be in [0, 1]")
        _require(_CONTINUATION_ID, self.continuation_id, "continuation_id")
        _require(_TRAIL_ID, self.audit_trail_id, "audit_trail_id")
        _require(_CRP_HASH, self.provenance_hmac, "provenance_hmac")
        _require(_CRP_HASH, self.window_hmac, "window_hmac")
        _require(_ABSOLUTE_URI, self.audit_trail_uri, "audit_trail_uri")
        if self.set_session is not None and not self.set_session.startswith("token="):
            raise ValueError("set_session must start with token=")
        if (self.window is None) != (self.max_windows is None):
            raise ValueError("window and max_windows go together (N/M)")
        if self.window is not None and not 1 <= self.window <= (self.max_windows or 0):
            raise ValueError("window must satisfy 1 <= N <= M")


@dataclass(frozen=True, kw_only=True)
class CallFacts:
    """Everything known about one finished (or halted) call.

    `output_scan` is `None` when there is no response (request-phase halt,
    provider error). `violations` are directive names (`halt-on`, `block-pii`,
    ...); a PASS has none. Token counts come from the provider's `usage`.
    `requested_oversight` is the request's `CRP-Safety-Oversight-Mode`; the
    stricter of it and the policy's oversight is emitted. `extra` is merged
    last and may override computed headers.
    """

    policy: ResolvedPolicy
    input_scan: InputScan
    output_scan: OutputScan | None = None
    outcome: CallOutcome = CallOutcome.PASS
    violations: tuple[str, ...] = ()
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    streamed: bool = False
    revision_round: int = 1
    max_revision_rounds: int = 1
    requested_oversight: OversightMode | None = None
    eu_ai_act: EuAiActClass = EuAiActClass.UNKNOWN
    data_residency: str | None = None
    session: SessionFacts | None = None
    extra: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if self.outcome is CallOutcome.PASS and self.violations:
            raise ValueError("a PASS has no violations")
        for name in self.violations:
            _require(_DIRECTIVE, name, "violation")
        for count in (self.prompt_tokens, self.completion_tokens):
            if count is not None and count < 0:
                raise ValueError("token counts are non-negative")
        if not 1 <= self.revision_round <= self.max_revision_rounds:
            raise ValueError("revision_round must satisfy 1 <= n <= m")
        _require(_RESIDENCY, self.data_residency, "data_residency")
        for name in self.extra:
            if not name.casefold().startswith(_CRP_PREFIX):
                raise ValueError("extra holds CRP headers only")

    @property
    def oversight(self) -> OversightMode:
        """The oversight mode applied to the call."""
        modes = [self.policy.policy.effective_oversight]
        if self.requested_oversight is not None:
            modes.append(self.requested_oversight)
        return max(modes, key=lambda mode: mode.rank)


# --- response side ------------------------------------------------------------------


def context_etag(fact_ids: Iterable[str]) -> str:
    """`CRP-Context-ETag` of a fact set by the 003§7.5 formula:
    SHA-256 of the sorted ids joined by `|`, then `|` and the count."""
    ids = sorted(fact_ids)
    digest = hashlib.sha256(f"{'|'.join(ids)}|{len(ids)}".encode()).hexdigest()
    return f"sha256:{digest}"


#: `CRP-Onboarding-Hint` / `CRP-Activation-Status` in zero-CKF mode (017§2.1;
#: `facts=0` as in the digest §2.2 example).
ONBOARDING_HINT = "ingest-documents-for-context-grounding"
ACTIVATION_STATUS = "safety-active; context-inactive; facts=0"


#: What a relayed stream can say before its first byte: nothing here depends on
#: the answer, so the verdict sent after it never contradicts it (G24).
UPFRONT_HEADERS: frozenset[str] = frozenset(
    {
        PROTOCOL_VERSION_HEADER,
        "CRP-Context-Strategy",
        "CRP-Agent-Revision-Round",
        "CRP-Safety-Policy-Applied",
        "CRP-Safety-Policy-Adjustment",
        "CRP-Compliance-EU-AI-Act",
        "CRP-Compliance-Data-Residency",
        "CRP-Context-Mode",
        "CRP-Context-Quality-Tier",
        "CRP-Context-Saturation",
        "CRP-Context-Facts-Used",
        "CRP-Context-ETag",
        "CRP-Context-Cache-Status",
        "CRP-Safety-Grounding-Pct",
        "CRP-Memory-CKF-Hits",
        "CRP-Onboarding-Hint",
        "CRP-Activation-Status",
        SESSION_ID,
        "CRP-Context-Window",
    }
)


def upfront_headers(facts: CallFacts) -> dict[str, str]:
    """The `UPFRONT_HEADERS` part of `response_headers` (for a relayed stream,
    whose verdict comes after ``[DONE]`` as ``event: crp-headers``)."""
    return {k: v for k, v in response_headers(facts).items() if k in UPFRONT_HEADERS}


def response_headers(facts: CallFacts) -> dict[str, str]:
    """The CRP response headers of one call (see the module docstring)."""
    headers = {
        **_core(facts),
        **_policy(facts),
        **_compliance(facts),
        **_zero_ckf(facts),
        **_signals(facts.output_scan),
        **_session(facts.session),
        **facts.extra,
    }
    for value in headers.values():
        _check_value(value)
    return headers


def _core(facts: CallFacts) -> dict[str, str]:
    headers = {
        PROTOCOL_VERSION_HEADER: PROTOCOL_VERSION,
        "CRP-Context-Strategy": "streaming" if facts.streamed else "push",
        "CRP-Safety-Oversight-Mode": facts.oversight.value,
        "CRP-Agent-Revision-Round": (
            f"{facts.revision_round}/{facts.max_revision_rounds}"
        ),
    }
    if facts.prompt_tokens is not None and facts.completion_tokens is not None:
        total = facts.prompt_tokens + facts.completion_tokens
        headers["CRP-Context-Tokens-Used"] = str(total)
    return headers


def _policy(facts: CallFacts) -> dict[str, str]:
    headers = {"CRP-Safety-Policy-Applied": facts.policy.applied_header}
    adjustments = _all_adjustments(facts.policy)
    if adjustments:
        headers["CRP-Safety-Policy-Adjustment"] = ", ".join(
            adjustment.header_value() for adjustment in adjustments
        )
    if facts.violations:
        headers[POLICY_VIOLATION] = ",".join(dict.fromkeys(facts.violations))
    return headers


def _all_adjustments(policy: ResolvedPolicy) -> tuple[Adjustment, ...]:
    """Enforced then report-only adjustments, without repeats (G20)."""
    both = policy.adjustments + policy.report_only_adjustments
    return tuple(dict.fromkeys(both))


def _compliance(facts: CallFacts) -> dict[str, str]:
    pii = gdpr_pii(facts.input_scan, facts.output_scan)
    headers = {
        "CRP-Compliance-GDPR-PII": "true" if pii else "false",
        "CRP-Compliance-EU-AI-Act": facts.eu_ai_act.value,
    }
    if facts.data_residency is not None:
        headers["CRP-Compliance-Data-Residency"] = facts.data_residency
    return headers


def _zero_ckf(facts: CallFacts) -> dict[str, str]:
    if not facts.policy.zero_ckf:
        return {}
    headers = {
        "CRP-Context-Mode": "zero-ckf",
        "CRP-Context-Quality-Tier": "N/A",
        "CRP-Context-Saturation": "0.0",
        "CRP-Context-Facts-Used": "0/0",
        "CRP-Context-ETag": context_etag(()),
        "CRP-Context-Cache-Status": "MISS; reason=zero-ckf",
        "CRP-Safety-Grounding-Pct": "N/A",
        "CRP-Memory-CKF-Hits": "0",
        "CRP-Onboarding-Hint": ONBOARDING_HINT,
        "CRP-Activation-Status": ACTIVATION_STATUS,
    }
    if facts.output_scan is not None:
        headers["CRP-Safety-Attribution"] = "PARAMETRIC"
    return headers


def _signals(scan: OutputScan | None) -> dict[str, str]:
    if scan is None:
        return {}
    headers = {
        "CRP-Safety-Fabrications": str(scan.fabrication.count),
        "CRP-Quality-Repetition": scan.repetition.header_value,
    }
    if scan.risk.method in _PUBLISHED_METHODS:
        headers["CRP-Safety-Hallucination-Risk"] = scan.risk.level.value
        headers["CRP-Safety-Hallucination-Score"] = scan.risk.header_score
    return headers


def _fraction(value: float) -> str:
    """A crp-fraction with up to four places: ``1.0``, ``0.85``, ``0.0``."""
    text = f"{value:.4f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _budget_warning(budget: float | None) -> str | None:
    """012§2.3 (G15): ``caution`` at 0.25-0.50, ``low`` below 0.25."""
    if budget is None or budget > 0.50:
        return None
    return "caution" if budget >= 0.25 else "low"


def session_headers(session: SessionFacts) -> dict[str, str]:
    """The session and provenance headers alone (e.g. added to a 451)."""
    return _session(session)


def _session(session: SessionFacts | None) -> dict[str, str]:
    if session is None:
        return {}
    optional = {
        "CRP-Context-Window": (
            f"{session.window}/{session.max_windows}"
            if session.window is not None
            else None
        ),
        CONTINUATION_ID: session.continuation_id,
        "CRP-Set-Session": session.set_session,
        "CRP-Provenance-HMAC": session.provenance_hmac,
        "CRP-Provenance-Window-HMAC": session.window_hmac,
        "CRP-Provenance-Chain-Integrity": (
            session.chain_integrity.value if session.chain_integrity else None
        ),
        AUDIT_TRAIL_ID: session.audit_trail_id,
        AUDIT_TRAIL_URI: session.audit_trail_uri,
        SAFETY_BUDGET: (
            _fraction(session.safety_budget)
            if session.safety_budget is not None
            else None
        ),
        BUDGET_WARNING: _budget_warning(session.safety_budget),
    }
    headers = {SESSION_ID: session.session_id}
    headers.update({k: v for k, v in optional.items() if v is not None})
    return headers


_FIELD_VALUE = re.compile(r"[ -~]*")


def _check_value(value: str) -> None:
    """Header values are printable ASCII: no CR, LF or other controls."""
    if not _FIELD_VALUE.fullmatch(value):
        raise ValueError("header value must be printable ASCII")


#: Every header `response_headers` can emit (for the well-known document).
EMITTED_RESPONSE_HEADERS: frozenset[str] = frozenset(
    {
        PROTOCOL_VERSION_HEADER,
        "CRP-Context-Strategy",
        "CRP-Safety-Oversight-Mode",
        "CRP-Agent-Revision-Round",
        "CRP-Context-Tokens-Used",
        "CRP-Safety-Policy-Applied",
        "CRP-Safety-Policy-Adjustment",
        POLICY_VIOLATION,
        "CRP-Compliance-GDPR-PII",
        "CRP-Compliance-EU-AI-Act",
        "CRP-Compliance-Data-Residency",
        "CRP-Context-Mode",
        "CRP-Context-Quality-Tier",
        "CRP-Context-Saturation",
        "CRP-Context-Facts-Used",
        "CRP-Context-ETag",
        "CRP-Context-Cache-Status",
        "CRP-Safety-Grounding-Pct",
        "CRP-Memory-CKF-Hits",
        "CRP-Onboarding-Hint",
        "CRP-Activation-Status",
        "CRP-Safety-Attribution",
        "CRP-Safety-Fabrications",
        "CRP-Quality-Repetition",
        "CRP-Safety-Hallucination-Risk",
        "CRP-Safety-Hallucination-Score",
        SESSION_ID,
        "CRP-Context-Window",
        CONTINUATION_ID,
        "CRP-Set-Session",
        "CRP-Provenance-HMAC",
        "CRP-Provenance-Window-HMAC",
        "CRP-Provenance-Chain-Integrity",
        AUDIT_TRAIL_ID,
        AUDIT_TRAIL_URI,
        SAFETY_BUDGET,
        BUDGET_WARNING,
    }
)


def crp_headers_event(headers: Mapping[str, str]) -> bytes:
    """The G24 final-verdict SSE event: `event: crp-headers` and a one-line JSON
    map of the `CRP-*` entries of `headers` (other headers are left out)."""
    crp = {k: v for k, v in headers.items() if k.casefold().startswith(_CRP_PREFIX)}
    data = json.dumps(crp, separators=(",", ":"), ensure_ascii=True)
    return f"event: crp-headers\ndata: {data}\n\n".encode("ascii")
