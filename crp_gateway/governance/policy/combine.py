"""Most-restrictive-wins combination of policies (006§4.1, 002§12.1, G17).

The same rule serves duplicate directives inside one header and the merge of
separate policies (mode + policy, baseline + request): combining is per
directive, a directive absent from one side does not take part, and

* `halt-on` / `warn-on`: the lower level wins (MEDIUM > HIGH > CRITICAL);
* thresholds: the higher value wins;
* `default-src`, `require-quality`: the intersection; an empty intersection of
  two non-empty sets is a `PolicyError` (the author never wrote `'none'`, and
  an empty tier list is not expressible);
* `oversight`, `require-oversight`: halt > human-review > auto > log-only;
* `max-repetition`: NONE > MINOR > SIGNIFICANT;
* `block-*` (and the internal `warn-ungrounded`): present wins;
* `upgrade-on-risk`, `report-uri`, `report-to` have no strictness order: the
  later one wins (G17 says so for `report-uri`; we extend it to the others).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Protocol, TypeVar

from crp_gateway.governance.policy.model import (
    PolicyError,
    SafetyPolicy,
    Source,
    Tier,
)

__all__ = ["combine", "merge"]

_T = TypeVar("_T")
_S = TypeVar("_S", Source, Tier)


def merge(*policies: SafetyPolicy) -> SafetyPolicy:
    """Combine policies per directive, most restrictive wins; later wins ties.

    The result's `profile` is kept only when every policy that names one names
    the same profile. `merge()` of nothing is the empty (permissive) policy.
    """
    result = SafetyPolicy()
    for policy in policies:
        result = combine(result, policy)
    profiles = {policy.profile for policy in policies if policy.profile}
    return replace(result, profile=profiles.pop() if len(profiles) == 1 else None)


def combine(first: SafetyPolicy, second: SafetyPolicy) -> SafetyPolicy:
    """Pairwise most-restrictive combination (see module docstring).

    `profile` is not combined (the result has none); use `merge` for that.
    """
    return SafetyPolicy(
        default_src=_meet("default-src", first.default_src, second.default_src),
        halt_on=_pick(first.halt_on, second.halt_on, _lowest),
        warn_on=_pick(first.warn_on, second.warn_on, _lowest),
        require_grounding=_pick(
            first.require_grounding, second.require_grounding, _greater
        ),
        require_entailment=_pick(
            first.require_entailment, second.require_entailment, _greater
        ),
        require_flow=_pick(first.require_flow, second.require_flow, _greater),
        require_completeness=_pick(
            first.require_completeness, second.require_completeness, _greater
        ),
        require_quality=_meet(
            "require-quality", first.require_quality, second.require_quality
        ),
        require_oversight=_pick(
            first.require_oversight, second.require_oversight, _highest
        ),
        oversight=_pick(first.oversight, second.oversight, _highest),
        block_ungrounded=first.block_ungrounded or second.block_ungrounded,
        block_parametric=first.block_parametric or second.block_parametric,
        block_pii=first.block_pii or second.block_pii,
        block_fabrication=first.block_fabrication or second.block_fabrication,
        block_repetition=first.block_repetition or second.block_repetition,
        warn_ungrounded=first.warn_ungrounded or second.warn_ungrounded,
        max_repetition=_pick(first.max_repetition, second.max_repetition, _lowest),
        upgrade_on_risk=_pick(first.upgrade_on_risk, second.upgrade_on_risk, _later),
        report_uri=_pick(first.report_uri, second.report_uri, _later),
        report_to=_pick(first.report_to, second.report_to, _later),
    )


class _HasRank(Protocol):
    @property
    def rank(self) -> int: ...


_R = TypeVar("_R", bound=_HasRank)


def _lowest(first: _R, second: _R) -> _R:
    return first if first.rank <= second.rank else second


def _highest(first: _R, second: _R) -> _R:
    return first if first.rank >= second.rank else second


def _greater(first: float, second: float) -> float:
    return max(first, second)


def _later(first: _T, second: _T) -> _T:
    return second


def _pick(
    first: _T | None, second: _T | None, choose: Callable[[_T, _T], _T]
) -> _T | None:
    if first is None:
        return second
    if second is None:
        return first
    return choose(first, second)


def _meet(
    directive: str, first: frozenset[_S] | None, second: frozenset[_S] | None
) -> frozenset[_S] | None:
    if first is None:
        return second
    if second is None:
        return first
    common = first & second
    if first and second and not common:
        raise PolicyError(
            directive,
            f"conflicting values {_members(first)!r} and {_members(second)!r} "
            "have nothing in common",
        )
    return common


def _members(values: frozenset[_S]) -> str:
    return " ".join(member.value for member in sorted(values, key=lambda m: m.rank))
