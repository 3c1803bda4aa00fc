"""Policy inheritance: a child must be at least as strict as its parent (006§5).

The check is per directive the parent states; a directive the parent leaves
out constrains nothing (so `check_inherits(p, c)` passes exactly when merging
`p` into `c` would not tighten `c`, with one semantic refinement below).
Not compared, because they have no strictness order: `upgrade-on-risk`,
`report-uri`, `report-to`, `profile`.

Refinements (documented decisions):
* `warn-on X` in the parent is satisfied by a child `halt-on Y` with Y <= X,
  since a halt also emits the risk headers and a report (§3.4);
* oversight is compared on the effective value (stricter of `oversight` and
  the `require-oversight` floor), reported under whichever directive set the
  parent's level;
* the parent's internal `warn-ungrounded` is satisfied by `block-ungrounded`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from crp_gateway.governance.policy.model import RiskLevel, SafetyPolicy
from crp_gateway.governance.policy.syntax import directive_texts

__all__ = [
    "INHERITANCE_VIOLATION_HEADER",
    "InheritanceViolation",
    "Relaxation",
    "check_inherits",
    "relaxations",
]

INHERITANCE_VIOLATION_HEADER = "inheritance"  # CRP-Safety-Policy-Violation value

_Getter = Callable[[SafetyPolicy], float | None]

_THRESHOLDS: tuple[tuple[str, _Getter], ...] = (
    ("require-grounding", lambda p: p.require_grounding),
    ("require-entailment", lambda p: p.require_entailment),
    ("require-flow", lambda p: p.require_flow),
    ("require-completeness", lambda p: p.require_completeness),
)
_Flag = Callable[[SafetyPolicy], bool]
# (directive, parent states it, child satisfies it)
_FLAGS: tuple[tuple[str, _Flag, _Flag], ...] = (
    ("block-ungrounded", lambda p: p.block_ungrounded, lambda c: c.block_ungrounded),
    ("block-parametric", lambda p: p.block_parametric, lambda c: c.block_parametric),
    ("block-pii", lambda p: p.block_pii, lambda c: c.block_pii),
    ("block-fabrication", lambda p: p.block_fabrication, lambda c: c.block_fabrication),
    ("block-repetition", lambda p: p.block_repetition, lambda c: c.block_repetition),
    (
        "warn-ungrounded",
        lambda p: p.warn_ungrounded,
        lambda c: c.warn_ungrounded or c.block_ungrounded,
    ),
)


@dataclass(frozen=True)
class Relaxation:
    """One directive the child loosened; values are full directive texts."""

    directive: str
    parent_value: str
    child_value: str | None  # None: the child has no such directive


class InheritanceViolation(Exception):
    """A child policy relaxes its parent (HTTP 403, 006§5.2, 014 TV-023)."""

    def __init__(self, found: tuple[Relaxation, ...]) -> None:
        if not found:
            raise ValueError("an inheritance violation needs a relaxation")
        self.relaxations = found
        first = found[0]
        self.directive = first.directive
        self.parent_value = first.parent_value
        self.child_value = first.child_value
        shown = first.child_value if first.child_value is not None else "nothing"
        self.message = (
            f"child policy relaxes {first.directive}: parent has "
            f"{first.parent_value!r}, child has {shown!r}"
        )
        super().__init__(self.message)

    def to_body(self) -> dict[str, str | None]:
        """The 403 JSON body fields of digest §3.4."""
        return {
            "error": "safety_policy_inheritance_violation",
            "directive": self.directive,
            "parent_value": self.parent_value,
            "child_value": self.child_value,
            "message": self.message,
        }


def check_inherits(parent: SafetyPolicy, child: SafetyPolicy) -> None:
    """Raise `InheritanceViolation` if `child` is looser than `parent` anywhere."""
    found = relaxations(parent, child)
    if found:
        raise InheritanceViolation(found)


def relaxations(parent: SafetyPolicy, child: SafetyPolicy) -> tuple[Relaxation, ...]:
    """Every directive `child` relaxes, in canonical directive order."""
    names = set(_relaxed(parent, child))
    parent_texts, child_texts = directive_texts(parent), directive_texts(child)
    return tuple(
        Relaxation(name, parent_texts[name], child_texts.get(name))
        for name in parent_texts
        if name in names
    )


def _relaxed(parent: SafetyPolicy, child: SafetyPolicy) -> Iterator[str]:
    yield from _relaxed_sets(parent, child)
    yield from _relaxed_risk(parent, child)
    yield from _relaxed_thresholds(parent, child)
    yield from _relaxed_oversight(parent, child)
    yield from _relaxed_flags(parent, child)
    if parent.max_repetition is not None and (
        child.max_repetition is None
        or child.max_repetition.rank > parent.max_repetition.rank
    ):
        yield "max-repetition"


def _relaxed_sets(parent: SafetyPolicy, child: SafetyPolicy) -> Iterator[str]:
    if parent.default_src is not None and (
        child.default_src is None or not child.default_src <= parent.default_src
    ):
        yield "default-src"
    if parent.require_quality is not None and (
        child.require_quality is None
        or not child.require_quality <= parent.require_quality
    ):
        yield "require-quality"


def _looser(parent: RiskLevel | None, child: RiskLevel | None) -> bool:
    return parent is not None and (child is None or child.rank > parent.rank)


def _relaxed_risk(parent: SafetyPolicy, child: SafetyPolicy) -> Iterator[str]:
    if _looser(parent.halt_on, child.halt_on):
        yield "halt-on"
    levels = [level for level in (child.warn_on, child.halt_on) if level]
    child_warn = min(levels, key=lambda level: level.rank) if levels else None
    if _looser(parent.warn_on, child_warn):
        yield "warn-on"


def _relaxed_thresholds(parent: SafetyPolicy, child: SafetyPolicy) -> Iterator[str]:
    for name, value in _THRESHOLDS:
        required, offered = value(parent), value(child)
        if required is not None and (offered is None or offered < required):
            yield name


def _relaxed_oversight(parent: SafetyPolicy, child: SafetyPolicy) -> Iterator[str]:
    if parent.oversight is None and parent.require_oversight is None:
        return
    level = parent.effective_oversight
    if child.effective_oversight.rank < level.rank:
        yield "oversight" if parent.oversight is level else "require-oversight"


def _relaxed_flags(parent: SafetyPolicy, child: SafetyPolicy) -> Iterator[str]:
    for name, stated, satisfied in _FLAGS:
        if stated(parent) and not satisfied(child):
            yield name
