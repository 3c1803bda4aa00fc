"""CRP governance of one call: ``prepare`` before dispatch, ``decide`` after.

``prepare`` checks the request's CRP headers (G22, G23), resolves the effective
safety policy from its sources in priority order (request header and mode, the
key's policy, the registered system's default, the tenant's default, the plan's
default, 016§11.3; a request may only tighten what it inherits, else 403), scans
the prompt, and halts with 451 before any provider is called when the request
alone decides it: no tokens are spent. Those halts are, in this order, a key
bound to an AI system whose EU AI Act class is UNACCEPTABLE (reason
``UNACCEPTABLE_EU_AI_ACT``, the spec's own code; G30: the class does not depend
on content, so it halts before dispatch), ``default-src 'none'``, personal data
under ``block-pii``, and an injection under a blocking policy.

Every governed answer carries ``CRP-Compliance-EU-AI-Act``: the stored class of
the key's system, ``UNKNOWN`` for a key bound to none (002§12.5).

``decide`` scans the answer and applies the response-phase checks the gateway can
compute without models: the published heuristic risk against ``halt-on`` /
``warn-on`` / oversight, ``block-pii``, ``block-fabrication``,
``block-repetition`` / ``max-repetition``, and ``block-parametric`` (every
zero-CKF answer is parametric). A report-only policy is evaluated the same way and
can only warn.

The decisions are final here; ``proxy.governed`` records each one (the audit
window, its session token) and queues its violation report for ``report-uri``
(``outbox.reports``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from crp_gateway.errors import GatewayError, InvalidRequest, PermissionDenied
from crp_gateway.governance.eu_ai_act import SystemFacts
from crp_gateway.governance.halt import HaltReason, halt_response, reason_for
from crp_gateway.governance.headers import (
    POLICY_VIOLATION,
    CallFacts,
    CallOutcome,
    EuAiActClass,
    RequestHeaderCheck,
    RequestHeaderError,
    SessionFacts,
    check_request_headers,
    session_headers,
)
from crp_gateway.governance.policy import (
    HaltCheck,
    PolicyError,
    RepetitionLevel,
    ResolvedPolicy,
    RiskAction,
    RiskLevel,
    SafetyPolicy,
    needs_buffering,
    parse_mode,
    parse_policy,
    relaxations,
    request_halt_checks,
    resolve_policy,
    risk_action,
)
from crp_gateway.governance.scanners import (
    InputScan,
    OutputScan,
    scan_input,
    scan_output,
)
from crp_gateway.governance.texts import request_texts
from crp_gateway.logging import get_logger

log = get_logger("crp_gateway.governance")

#: Each plan's default policy: warn on high risk, never halt unasked.
PLAN_POLICIES: Mapping[str, str] = {
    "free": "warn-on HIGH",
    "developer": "warn-on HIGH",
    "team": "warn-on HIGH",
}
DEFAULT_PLAN_POLICY = "warn-on HIGH"

_REPETITION_RANK = {level: rank for rank, level in enumerate(RepetitionLevel)}


class SafetyHalt(GatewayError):
    """HTTP 451: the policy halted the call (crp-protocol.md §4, G25)."""

    status_code = 451
    error_type = "crp_safety_halt"

    def __init__(self, body: dict[str, object], headers: dict[str, str]) -> None:
        error = body.get("error")
        message = error.get("message", "") if isinstance(error, dict) else ""
        super().__init__(
            str(message), code=str(body["crp_halt_reason"]), headers=headers
        )
        self._body = body
        #: The policy in force when the call halted (for its session, G19).
        self.resolved: ResolvedPolicy | None = None

    def to_body(self) -> dict[str, object]:
        return self._body

    def attach_session(self, session: SessionFacts) -> None:
        """Name the audited session and its trail in the 451 (G19)."""
        self._body["session_id"] = session.session_id
        self._body["audit_trail_uri"] = session.audit_trail_uri
        self.headers.update(session_headers(session))


@lru_cache(maxsize=1024)
def _stored_policy(text: str) -> SafetyPolicy:
    """A key's, tenant's or plan's policy (validated when it was stored)."""
    return parse_policy(text)


@dataclass(frozen=True, slots=True)
class PolicySources:
    """The configured layers under a request's own policy, and the registered
    AI system of the calling key (``None``: unregistered, class UNKNOWN)."""

    key: str | None
    tenant: str | None
    plan: str
    system: SystemFacts | None = None

    @property
    def eu_ai_act(self) -> EuAiActClass:
        return self.system.eu_ai_act if self.system else EuAiActClass.UNKNOWN


@dataclass(slots=True)
class Prepared:
    """A call that passed the request phase."""

    headers: RequestHeaderCheck
    resolved: ResolvedPolicy
    input_scan: InputScan
    context: list[str]
    gateway_url: str
    eu_ai_act: EuAiActClass = EuAiActClass.UNKNOWN

    @property
    def buffer_stream(self) -> bool:
        """G24: a stream the policy could still halt is decided before release."""
        return needs_buffering(self.resolved.policy)


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: CallOutcome
    violations: tuple[str, ...] = ()
    output_scan: OutputScan | None = None
    halt: HaltReason | None = None


@dataclass
class _Findings:
    halt: HaltReason | None = None
    halting: list[str] = field(default_factory=list)
    warning: list[str] = field(default_factory=list)


def _bad_policy(error: PolicyError, header: str) -> InvalidRequest:
    directive = f" in directive {error.directive!r}" if error.directive else ""
    return InvalidRequest(
        f"{header}{directive}: {error.message}",
        code="invalid_safety_policy",
        param=header,
    )


def _resolve(check: RequestHeaderCheck, sources: PolicySources) -> ResolvedPolicy:
    try:
        request = parse_policy(check.policy) if check.policy is not None else None
    except PolicyError as error:
        raise _bad_policy(error, "CRP-Safety-Policy") from None
    try:
        report_only = (
            parse_policy(check.report_only_policy)
            if check.report_only_policy is not None
            else None
        )
    except PolicyError as error:
        raise _bad_policy(error, "CRP-Safety-Policy-Report-Only") from None
    try:
        mode = parse_mode(check.mode) if check.mode is not None else None
    except PolicyError as error:
        raise _bad_policy(error, "CRP-Safety-Mode") from None
    key = _stored_policy(sources.key) if sources.key else None
    system_text = sources.system.default_safety_policy if sources.system else None
    system = _stored_policy(system_text) if system_text else None
    tenant = _stored_policy(sources.tenant) if sources.tenant else None
    plan = _stored_policy(PLAN_POLICIES.get(sources.plan, DEFAULT_PLAN_POLICY))
    if request is not None:
        _check_tightens(key or system or tenant or plan, request)
    try:
        return resolve_policy(
            request=request,
            mode=mode,
            key=key,
            system=system,
            tenant=tenant,
            plan=plan,
            report_only=report_only,
            zero_ckf=True,
        )
    except PolicyError as error:
        raise _bad_policy(error, "CRP-Safety-Policy") from None


def _check_tightens(inherited: SafetyPolicy, request: SafetyPolicy) -> None:
    """A request may tighten its inherited policy, never loosen a directive it
    states (006§5, crp-protocol.md §3.4: 403). Directives it leaves out are
    inherited as they are."""
    loosened = [r for r in relaxations(inherited, request) if r.child_value is not None]
    if loosened:
        first = loosened[0]
        raise PermissionDenied(
            f"CRP-Safety-Policy may only tighten the policy this key inherits: "
            f"{first.child_value!r} is looser than {first.parent_value!r}.",
            code="safety_policy_inheritance_violation",
            headers={POLICY_VIOLATION: "inheritance"},
        )


def _request_findings(
    policy: SafetyPolicy, scan: InputScan, sources: PolicySources
) -> _Findings:
    checks = request_halt_checks(policy)
    findings = _Findings()
    if sources.system is not None and sources.system.prohibited:
        findings.halt = HaltReason.UNACCEPTABLE_EU_AI_ACT
    elif HaltCheck.NO_TRUSTED_SOURCE in checks:
        findings.halting.append("default-src")
        findings.halt = reason_for(HaltCheck.NO_TRUSTED_SOURCE)
    elif HaltCheck.PROMPT_PII in checks and scan.pii_detected:
        findings.halting.append("block-pii")
        findings.halt = reason_for(HaltCheck.PROMPT_PII)
    elif HaltCheck.PROMPT_INJECTION in checks and scan.injection:
        findings.halting.append("prompt-injection")
        findings.halt = reason_for(HaltCheck.PROMPT_INJECTION)
    return findings


def _halt(
    prepared_or_facts: CallFacts, reason: HaltReason, gateway_url: str
) -> SafetyHalt:
    response = halt_response(reason, gateway_url=gateway_url, facts=prepared_or_facts)
    halt = SafetyHalt(response.body, response.headers)
    halt.resolved = prepared_or_facts.policy
    return halt


def prepare(
    client_headers: Mapping[str, str],
    body: dict[str, object],
    sources: PolicySources,
    *,
    gateway_url: str,
) -> Prepared:
    """The request phase; raises 400, 403 or 451 (:class:`SafetyHalt`)."""
    try:
        check = check_request_headers(client_headers)
    except RequestHeaderError as error:
        raise InvalidRequest(str(error), code="response_header_on_request") from None
    if check.stripped:
        log.info(
            "crp.request_headers_stripped", headers=[h.name for h in check.stripped]
        )
    resolved = _resolve(check, sources)
    context = request_texts(body)
    scan = scan_input(context)
    findings = _request_findings(resolved.policy, scan, sources)
    if findings.halt is not None:
        facts = CallFacts(
            policy=resolved,
            input_scan=scan,
            outcome=CallOutcome.HALT,
            violations=tuple(findings.halting),
            eu_ai_act=sources.eu_ai_act,
        )
        raise _halt(facts, findings.halt, gateway_url)
    return Prepared(
        check, resolved, scan, context, gateway_url, eu_ai_act=sources.eu_ai_act
    )


def _repetition_exceeds(policy: SafetyPolicy, level: RepetitionLevel) -> bool:
    rank = _REPETITION_RANK[level]
    if (
        policy.block_repetition
        and rank >= _REPETITION_RANK[RepetitionLevel.SIGNIFICANT]
    ):
        return True
    limit = policy.max_repetition
    return limit is not None and rank > _REPETITION_RANK[limit]


def _response_findings(policy: SafetyPolicy, scan: OutputScan) -> _Findings:
    findings = _Findings()
    risk = RiskLevel(scan.risk.level.value)
    action = risk_action(policy, risk)
    blocks = {
        "block-pii": policy.block_pii and bool(scan.pii),
        "block-fabrication": policy.block_fabrication and scan.fabrication.count > 0,
        "block-repetition": _repetition_exceeds(
            policy, RepetitionLevel(scan.repetition.level.value)
        ),
        "block-parametric": policy.block_parametric,
    }
    findings.halting = [name for name, hit in blocks.items() if hit]
    if action in {RiskAction.HALT, RiskAction.HOLD}:
        findings.halting.insert(0, "halt-on" if policy.halt_on else "oversight")
        findings.halt = reason_for(HaltCheck.RISK, risk)
    elif findings.halting:
        findings.halt = HaltReason.SAFETY_POLICY_VIOLATION
    if action in {RiskAction.WARN, RiskAction.REDISPATCH}:
        # upgrade-on-risk re-dispatches with a stronger context strategy; in
        # zero-CKF mode there is none to upgrade to, so it warns instead.
        findings.warning.append("warn-on")
    return findings


def decide(prepared: Prepared, output_text: str) -> Decision:
    """The response phase: PASS, WARN or HALT for this answer."""
    scan = scan_output(output_text, prepared.context, input_scan=prepared.input_scan)
    enforced = _response_findings(prepared.resolved.policy, scan)
    observed = (
        _response_findings(prepared.resolved.report_only, scan)
        if prepared.resolved.report_only is not None
        else _Findings()
    )
    if enforced.halt is not None:
        return Decision(
            CallOutcome.HALT, tuple(enforced.halting), scan, halt=enforced.halt
        )
    warnings = tuple(
        dict.fromkeys(enforced.warning + observed.halting + observed.warning)
    )
    if warnings:
        return Decision(CallOutcome.WARN, warnings, scan)
    return Decision(CallOutcome.PASS, (), scan)


def call_facts(
    prepared: Prepared,
    decision: Decision,
    *,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    streamed: bool,
) -> CallFacts:
    return CallFacts(
        policy=prepared.resolved,
        input_scan=prepared.input_scan,
        output_scan=decision.output_scan,
        outcome=decision.outcome,
        violations=decision.violations,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        streamed=streamed,
        eu_ai_act=prepared.eu_ai_act,
    )


def response_halt(
    prepared: Prepared, decision: Decision, facts: CallFacts
) -> SafetyHalt:
    assert decision.halt is not None
    return _halt(facts, decision.halt, prepared.gateway_url)


def budget_halt(prepared: Prepared) -> SafetyHalt:
    """451 ``SAFETY_BUDGET_DEPLETED``: the session's budget is spent (G15)."""
    facts = CallFacts(
        policy=prepared.resolved,
        input_scan=prepared.input_scan,
        outcome=CallOutcome.HALT,
        violations=("safety-budget",),
        eu_ai_act=prepared.eu_ai_act,
    )
    return _halt(facts, HaltReason.SAFETY_BUDGET_DEPLETED, prepared.gateway_url)
