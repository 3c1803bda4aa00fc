"""Value types of the safety-policy language: enums, `SafetyPolicy`, `PolicyError`.

Every `SafetyPolicy` that can be constructed can also be serialised and parsed
back: `__post_init__` enforces the same value rules as the parser (no `LOW` for
`halt-on`/`warn-on`, thresholds in 0.00-1.00 with at most two decimals, ...).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Self

__all__ = [
    "DEFAULT_SOURCES",
    "OversightMode",
    "PolicyError",
    "Profile",
    "RepetitionLevel",
    "RiskLevel",
    "SafetyMode",
    "SafetyPolicy",
    "Source",
    "Tier",
    "UpgradeStrategy",
]


class PolicyError(ValueError):
    """A policy that is malformed, unknown or self-contradictory (HTTP 400).

    `directive` names the offending directive (lower-case, as the client wrote
    it) or is `None` when the problem is not tied to one directive.
    """

    def __init__(self, directive: str | None, message: str) -> None:
        self.directive = directive
        self.message = message
        super().__init__(f"{directive}: {message}" if directive else message)


class _Ranked(StrEnum):
    """A string enum whose declaration order is meaningful (`rank` = position)."""

    @property
    def rank(self) -> int:
        return tuple(type(self)).index(self)

    @classmethod
    def from_token(cls, token: str, directive: str) -> Self:
        """Case-insensitive lookup of a wire token, or `PolicyError`."""
        wanted = token.casefold()
        for member in cls:
            if member.value.casefold() == wanted:
                return member
        allowed = ", ".join(member.value for member in cls)
        raise PolicyError(directive, f"invalid value {token!r} (allowed: {allowed})")


class RiskLevel(_Ranked):
    """Hallucination-risk classes, ascending severity (002§5.1).

    `LOW` exists because the DPE reports it; it is not a valid policy argument.
    """

    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


class Tier(_Ranked):
    """Context quality tiers, best first (003§8)."""

    S = "S"
    A = "A"
    B = "B"
    C = "C"
    D = "D"


class OversightMode(_Ranked):
    """Oversight modes in ascending strictness (006§4.1)."""

    LOG_ONLY = "log-only"
    AUTO = "auto"
    HUMAN_REVIEW = "human-review"
    HALT = "halt"


class RepetitionLevel(_Ranked):
    """Repetition classes, ascending amount (005§9.4).

    `SEVERE` is a signal value; `max-repetition` only accepts the first three.
    """

    NONE = "NONE"
    MINOR = "MINOR"
    SIGNIFICANT = "SIGNIFICANT"
    SEVERE = "SEVERE"


class Source(_Ranked):
    """`default-src` sources; `'none'` is the empty set, not a member."""

    CONTEXT = "context"
    PARAMETRIC = "parametric"
    CKF = "ckf"
    CROSS_SESSION = "cross-session"


class UpgradeStrategy(_Ranked):
    """Strategies `upgrade-on-risk` may re-dispatch with (no strictness order)."""

    REFLEXIVE = "reflexive"
    HIERARCHICAL = "hierarchical"
    BATCH = "batch"


class SafetyMode(_Ranked):
    """`CRP-Safety-Mode` shorthand values (002§5.11, 006§4.2)."""

    STRICT = "strict"
    WARN = "warn"
    PERMISSIVE = "permissive"


class Profile(_Ranked):
    """Named profiles usable as `profile=<name>` (006§6.1)."""

    MEDICAL = "medical"
    FINANCIAL = "financial"
    DEVELOPER = "developer"
    PUBLIC_FACING = "public-facing"


DEFAULT_SOURCES: frozenset[Source] = frozenset({Source.CONTEXT, Source.PARAMETRIC})

_URI_REFERENCE = re.compile(
    r"[A-Za-z][A-Za-z0-9+.\-]*:(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,=]|%[0-9A-Fa-f]{2})*"
)
_GROUP = re.compile(r"[a-z0-9_\-]+")


@dataclass(frozen=True, kw_only=True)
class SafetyPolicy:
    """One parsed `CRP-Safety-Policy`; `None`/`False` means the directive is absent.

    `default_src=None` means "no default-src directive" (the implicit default
    `context parametric` applies, see `effective_sources`); `frozenset()` is
    `'none'`. `profile` records which `profile=` the policy was written against;
    it is metadata only and does not take part in equality, hashing or
    serialisation (the directives it expands to do).
    """

    default_src: frozenset[Source] | None = None
    halt_on: RiskLevel | None = None
    warn_on: RiskLevel | None = None
    require_grounding: float | None = None
    require_entailment: float | None = None
    require_flow: float | None = None
    require_completeness: float | None = None
    require_quality: frozenset[Tier] | None = None
    require_oversight: OversightMode | None = None
    oversight: OversightMode | None = None
    block_ungrounded: bool = False
    block_parametric: bool = False
    block_pii: bool = False
    block_fabrication: bool = False
    block_repetition: bool = False
    warn_ungrounded: bool = False  # internal only: zero-CKF downgrade (017§6.1)
    max_repetition: RepetitionLevel | None = None
    upgrade_on_risk: UpgradeStrategy | None = None
    report_uri: str | None = None
    report_to: str | None = None
    profile: Profile | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name in ("halt_on", "warn_on"):
            if getattr(self, name) is RiskLevel.LOW:
                raise PolicyError(_wire(name), "LOW is not a valid risk level")
        if self.max_repetition is RepetitionLevel.SEVERE:
            raise PolicyError("max-repetition", "SEVERE is not a valid limit")
        if self.require_quality is not None and not self.require_quality:
            raise PolicyError("require-quality", "needs at least one tier")
        for name in _THRESHOLDS:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _checked_threshold(name, value))
        self._check_report_target()

    def _check_report_target(self) -> None:
        if self.report_uri is not None and not _URI_REFERENCE.fullmatch(
            self.report_uri
        ):
            raise PolicyError("report-uri", f"not an absolute URI: {self.report_uri!r}")
        if self.report_to is not None and not _GROUP.fullmatch(self.report_to):
            raise PolicyError(
                "report-to", f"invalid group name {self.report_to!r} (lower-case)"
            )

    @property
    def effective_sources(self) -> frozenset[Source]:
        """Trusted sources, with the implicit default `context parametric`."""
        return DEFAULT_SOURCES if self.default_src is None else self.default_src

    @property
    def trusts_nothing(self) -> bool:
        """`default-src 'none'`: every response is a source-trust violation."""
        return self.default_src == frozenset()

    @property
    def effective_oversight(self) -> OversightMode:
        """The session's oversight: the stricter of `oversight` and the
        `require-oversight` floor (G17), `auto` when neither is given."""
        present = [m for m in (self.oversight, self.require_oversight) if m]
        return max(present, key=lambda m: m.rank) if present else OversightMode.AUTO


_THRESHOLDS = (
    "require_grounding",
    "require_entailment",
    "require_flow",
    "require_completeness",
)


def _wire(attribute: str) -> str:
    """Directive name for a field name (`require_flow` -> `require-flow`)."""
    return attribute.replace("_", "-")


def _checked_threshold(attribute: str, value: float) -> float:
    """Validate a programmatic threshold and normalise it to two decimals."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyError(_wire(attribute), f"threshold must be a number: {value!r}")
    hundredths = value * 100
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise PolicyError(_wire(attribute), f"threshold {value!r} is outside 0.00-1.00")
    if abs(hundredths - round(hundredths)) > 1e-9:
        raise PolicyError(_wire(attribute), f"threshold {value!r} has over 2 decimals")
    return round(hundredths) / 100
