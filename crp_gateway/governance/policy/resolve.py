"""Effective-policy resolution and zero-CKF adjustment (016§11.3, 017§6, G20).

Layers, highest priority first: the request (`CRP-Safety-Mode` +
`CRP-Safety-Policy`), the API key's policy, the registered system's default,
the tenant default, the plan default. Decisions:

* configured layers override each other: the most specific one present is the
  *baseline* (an admin may give a key a looser policy than the tenant default);
* the request never replaces the baseline, it is merged into it most
  restrictive wins (002§12.1 for mode + policy; a client is less trusted than
  its key, so it may tighten but not loosen; the result is visible in
  `CRP-Safety-Policy-Applied`, which satisfies 002§3.4);
* a parent policy (multi-agent child session, 006§5) is checked against the
  effective policy before zero-CKF adjustment: `InheritanceViolation` -> 403;
* in zero-CKF mode the unsatisfiable directives are adjusted and every
  adjustment is reported (G20), unless the tenant chose "refuse instead of
  relax", in which case `ZeroCkfRefusal` is raised (the gateway answers 424).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import StrEnum

from crp_gateway.governance.policy.builtins import mode_policy
from crp_gateway.governance.policy.combine import merge
from crp_gateway.governance.policy.inheritance import check_inherits
from crp_gateway.governance.policy.model import (
    SafetyMode,
    SafetyPolicy,
    Source,
)
from crp_gateway.governance.policy.syntax import directive_texts, format_policy

__all__ = [
    "ZERO_CKF_REASON",
    "Adjustment",
    "PolicySource",
    "ResolvedPolicy",
    "ZeroCkfRefusal",
    "adjust_for_zero_ckf",
    "format_adjustments",
    "resolve_policy",
]

ZERO_CKF_REASON = "zero-ckf-mode"
SKIPPED = "skipped"


@dataclass(frozen=True)
class Adjustment:
    """One auto-adjusted directive (017§6.2).

    `directive` is the original directive text, `adjusted_to` the replacement
    text, `skipped` when the directive is not enforced, or `query-consistency`
    for `require-entailment` (evaluated against the query, 017§6.1).
    """

    directive: str
    adjusted_to: str
    reason: str = ZERO_CKF_REASON

    def header_value(self) -> str:
        return (
            f"directive={self.directive}; adjusted-to={self.adjusted_to}; "
            f"reason={self.reason}"
        )


def format_adjustments(adjustments: tuple[Adjustment, ...]) -> str | None:
    """`CRP-Safety-Policy-Adjustment` value: entries joined by `", "` (the
    HTTP list form of repeated fields), or `None` when nothing was adjusted."""
    if not adjustments:
        return None
    return ", ".join(adjustment.header_value() for adjustment in adjustments)


class ZeroCkfRefusal(Exception):
    """Zero-CKF mode would have to relax the policy and the tenant refuses."""

    def __init__(self, adjustments: tuple[Adjustment, ...]) -> None:
        self.adjustments = adjustments
        names = ", ".join(adjustment.directive for adjustment in adjustments)
        super().__init__(f"cannot be enforced without a CKF: {names}")


def adjust_for_zero_ckf(
    policy: SafetyPolicy,
) -> tuple[SafetyPolicy, tuple[Adjustment, ...]]:
    """Apply the 017§6.1 adjustments; returns the policy actually enforced.

    * `default-src` without `parametric` (and not `'none'`) gains `parametric`;
    * `require-grounding` is skipped;
    * `require-entailment` stays, reported as evaluated against the query;
    * `require-quality` is skipped: the tier is `N/A` without a CKF (017§2.1).
      This one is our extension of the 017 table (see the package docstring);
    * `block-ungrounded` becomes `warn-ungrounded`.
    Everything else (halt-on, upgrade-on-risk, block-pii, oversight,
    report-uri, block-parametric, ...) stays active.
    """
    texts = directive_texts(policy)
    adjusted = policy
    if policy.default_src and Source.PARAMETRIC not in policy.default_src:
        adjusted = replace(
            adjusted, default_src=policy.default_src | {Source.PARAMETRIC}
        )
    adjusted = replace(adjusted, require_grounding=None, require_quality=None)
    if policy.block_ungrounded:
        adjusted = replace(adjusted, block_ungrounded=False, warn_ungrounded=True)
    new_texts = directive_texts(adjusted)
    return adjusted, tuple(_adjustments(texts, new_texts))


def _adjustments(before: dict[str, str], after: dict[str, str]) -> Iterator[Adjustment]:
    for name, text in before.items():
        if name == "require-entailment":
            yield Adjustment(text, "query-consistency")
        elif name == "block-ungrounded":
            yield Adjustment(text, after["warn-ungrounded"])
        elif name not in after:
            yield Adjustment(text, SKIPPED)
        elif after[name] != text:
            yield Adjustment(text, after[name])


class PolicySource(StrEnum):
    """Where the baseline (or the request part) of a policy came from."""

    REQUEST = "request"
    KEY = "key"
    SYSTEM = "system"
    TENANT = "tenant"
    PLAN = "plan"


@dataclass(frozen=True)
class ResolvedPolicy:
    """The outcome of `resolve_policy`.

    `policy` is enforced; `unadjusted` is what would be enforced with a CKF
    (same as `policy` outside zero-CKF mode). `report_only` is evaluated and
    reported but never halts (006§4.3), and is adjusted like `policy`.
    """

    policy: SafetyPolicy
    unadjusted: SafetyPolicy
    sources: tuple[PolicySource, ...]
    adjustments: tuple[Adjustment, ...] = ()
    report_only: SafetyPolicy | None = None
    report_only_adjustments: tuple[Adjustment, ...] = ()
    zero_ckf: bool = False

    @property
    def applied_header(self) -> str:
        """`CRP-Safety-Policy-Applied` value (may be empty: no directives)."""
        return format_policy(self.policy)

    @property
    def adjustment_header(self) -> str | None:
        """`CRP-Safety-Policy-Adjustment` value, `None` if nothing changed."""
        return format_adjustments(self.adjustments)


def resolve_policy(
    *,
    request: SafetyPolicy | None = None,
    mode: SafetyMode | None = None,
    key: SafetyPolicy | None = None,
    system: SafetyPolicy | None = None,
    tenant: SafetyPolicy | None = None,
    plan: SafetyPolicy | None = None,
    report_only: SafetyPolicy | None = None,
    parent: SafetyPolicy | None = None,
    zero_ckf: bool = False,
    refuse_relaxation: bool = False,
) -> ResolvedPolicy:
    """Compute the effective policy for one call (see module docstring).

    Raises `PolicyError` when the request conflicts with the baseline (e.g.
    disjoint `default-src`), `InheritanceViolation` when `parent` is given and
    the effective policy relaxes it, `ZeroCkfRefusal` when `zero_ckf` and
    `refuse_relaxation` are set and an adjustment would be needed.
    """
    layers = (
        (PolicySource.KEY, key),
        (PolicySource.SYSTEM, system),
        (PolicySource.TENANT, tenant),
        (PolicySource.PLAN, plan),
    )
    baseline = next(((s, p) for s, p in layers if p is not None), None)
    parts = [baseline[1]] if baseline else []
    sources = [baseline[0]] if baseline else []
    if mode is not None or request is not None:
        parts += [
            mode_policy(mode) if mode else SafetyPolicy(),
            request or SafetyPolicy(),
        ]
        sources.append(PolicySource.REQUEST)
    effective = merge(*parts)
    if parent is not None:
        check_inherits(parent, effective)
    if not zero_ckf:
        return ResolvedPolicy(
            effective, effective, tuple(sources), report_only=report_only
        )
    return _zero_ckf(effective, tuple(sources), report_only, refuse_relaxation)


def _zero_ckf(
    effective: SafetyPolicy,
    sources: tuple[PolicySource, ...],
    report_only: SafetyPolicy | None,
    refuse: bool,
) -> ResolvedPolicy:
    enforced, adjustments = adjust_for_zero_ckf(effective)
    if refuse and adjustments:
        raise ZeroCkfRefusal(adjustments)
    observed, observed_adjustments = (
        adjust_for_zero_ckf(report_only) if report_only else (None, ())
    )
    return ResolvedPolicy(
        policy=enforced,
        unadjusted=effective,
        sources=sources,
        adjustments=adjustments,
        report_only=observed,
        report_only_adjustments=observed_adjustments,
        zero_ckf=True,
    )
