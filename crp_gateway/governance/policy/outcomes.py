"""What an effective policy can do to a call: halt, and when that is decided.

These helpers look at the policy only (no signals), so the pipeline can plan:
request-phase halts are decided before dispatch (nothing to buffer, no tokens
spent); response-phase halts and response-altering directives force the
streaming path to buffer (008§9.4, G24). A report-only policy (006§4.3) never
halts: do not feed it to these helpers.
"""

from __future__ import annotations

from enum import StrEnum

from crp_gateway.governance.policy.model import (
    DEFAULT_SOURCES,
    OversightMode,
    RiskLevel,
    SafetyPolicy,
)

__all__ = [
    "HaltCheck",
    "Phase",
    "RiskAction",
    "can_halt",
    "halt_checks",
    "halts_unconditionally",
    "needs_buffering",
    "request_halt_checks",
    "response_halt_checks",
    "risk_action",
]


class Phase(StrEnum):
    """When a halt can be decided."""

    REQUEST = "request"  # from the request alone, before dispatch
    RESPONSE = "response"  # needs the provider's response


class HaltCheck(StrEnum):
    """A way the policy can end a call with 451 (value = a stable id)."""

    NO_TRUSTED_SOURCE = "no-trusted-source"  # default-src 'none': always
    PROMPT_PII = "prompt-pii"  # block-pii, PII in the prompt
    PROMPT_INJECTION = "prompt-injection"  # injection scan, blocking policy
    RISK = "risk"  # halt-on
    UNTRUSTED_SOURCE = "untrusted-source"  # default-src without context+parametric
    GROUNDING = "grounding"  # require-grounding
    ENTAILMENT = "entailment"  # require-entailment
    UNGROUNDED_CLAIM = "ungrounded-claim"  # block-ungrounded
    PARAMETRIC_CONTENT = "parametric-content"  # block-parametric
    RESPONSE_PII = "response-pii"  # block-pii, PII in the completion
    FABRICATION = "fabrication"  # block-fabrication
    REPETITION = "repetition"  # block-repetition / max-repetition, after retry
    OVERSIGHT = "oversight"  # oversight halt / human-review hold (G36)

    @property
    def phase(self) -> Phase:
        request_side = {
            HaltCheck.NO_TRUSTED_SOURCE,
            HaltCheck.PROMPT_PII,
            HaltCheck.PROMPT_INJECTION,
        }
        return Phase.REQUEST if self in request_side else Phase.RESPONSE


class RiskAction(StrEnum):
    """What the policy does with one hallucination-risk class."""

    PASS = "pass"  # noqa: S105 - an outcome, not a password
    WARN = "warn"  # 200 with Risk+Score headers and a report
    REDISPATCH = "re-dispatch"  # upgrade-on-risk, first attempt only
    HOLD = "hold"  # oversight human-review: 451 oversight-required (G36)
    HALT = "halt"  # 451


def halt_checks(policy: SafetyPolicy) -> frozenset[HaltCheck]:
    """Every way `policy` can halt a call."""
    checks = _response_checks(policy)
    if policy.trusts_nothing:
        checks.add(HaltCheck.NO_TRUSTED_SOURCE)
    if policy.block_pii:
        checks.add(HaltCheck.PROMPT_PII)
    if checks:
        # "blocking policy": the prompt-injection verdict halts only when the
        # policy would halt on something else as well.
        checks.add(HaltCheck.PROMPT_INJECTION)
    return frozenset(checks)


def _response_checks(policy: SafetyPolicy) -> set[HaltCheck]:
    wanted = {
        HaltCheck.RISK: policy.halt_on is not None,
        HaltCheck.UNTRUSTED_SOURCE: bool(policy.default_src)
        and not DEFAULT_SOURCES <= policy.effective_sources,
        HaltCheck.GROUNDING: policy.require_grounding is not None,
        HaltCheck.ENTAILMENT: policy.require_entailment is not None,
        HaltCheck.UNGROUNDED_CLAIM: policy.block_ungrounded,
        HaltCheck.PARAMETRIC_CONTENT: policy.block_parametric,
        HaltCheck.RESPONSE_PII: policy.block_pii,
        HaltCheck.FABRICATION: policy.block_fabrication,
        HaltCheck.REPETITION: policy.block_repetition
        or policy.max_repetition is not None,
        HaltCheck.OVERSIGHT: policy.effective_oversight.rank
        >= OversightMode.HUMAN_REVIEW.rank,
    }
    return {check for check, applies in wanted.items() if applies}


def can_halt(policy: SafetyPolicy) -> bool:
    """Whether `policy` can ever produce a 451."""
    return bool(halt_checks(policy))


def request_halt_checks(policy: SafetyPolicy) -> frozenset[HaltCheck]:
    """Halts decided from the request alone (default-src 'none', prompt PII,
    prompt injection under a blocking policy)."""
    return frozenset(c for c in halt_checks(policy) if c.phase is Phase.REQUEST)


def response_halt_checks(policy: SafetyPolicy) -> frozenset[HaltCheck]:
    """Halts that need the provider's response."""
    return frozenset(c for c in halt_checks(policy) if c.phase is Phase.RESPONSE)


def halts_unconditionally(policy: SafetyPolicy) -> bool:
    """`default-src 'none'`: halt before dispatch, every time (P04)."""
    return policy.trusts_nothing


def needs_buffering(policy: SafetyPolicy) -> bool:
    """Whether a streamed response must be buffered before release.

    True when a response-phase halt is possible or a directive may replace the
    response (re-dispatch for `upgrade-on-risk` / `require-flow`, continuation
    for `require-completeness`). Request-phase halts need no buffering.
    """
    rewrites = (
        policy.upgrade_on_risk is not None
        or policy.require_flow is not None
        or policy.require_completeness is not None
    )
    return rewrites or bool(response_halt_checks(policy))


def risk_action(
    policy: SafetyPolicy, risk: RiskLevel, *, upgraded: bool = False
) -> RiskAction:
    """The risk-driven outcome of §3.2 for one response.

    `upgraded` says the response already comes from the `upgrade-on-risk`
    re-dispatch. Order: re-dispatch (risk >= HIGH, once) > halt-on >
    oversight halt (CRITICAL) / human-review hold (HIGH+) > warn-on; an
    upgraded response still at HIGH+ without a halt passes with a warning.
    `oversight log-only` does not disable `halt-on` (most restrictive wins).
    """
    high_or_worse = risk.rank >= RiskLevel.HIGH.rank
    if policy.upgrade_on_risk is not None and high_or_worse and not upgraded:
        return RiskAction.REDISPATCH
    if policy.halt_on is not None and risk.rank >= policy.halt_on.rank:
        return RiskAction.HALT
    oversight = policy.effective_oversight
    if oversight is OversightMode.HALT and risk is RiskLevel.CRITICAL:
        return RiskAction.HALT
    if oversight is OversightMode.HUMAN_REVIEW and high_or_worse:
        return RiskAction.HOLD
    warns = policy.warn_on is not None and risk.rank >= policy.warn_on.rank
    if warns or (upgraded and high_or_worse and policy.upgrade_on_risk is not None):
        return RiskAction.WARN
    return RiskAction.PASS
