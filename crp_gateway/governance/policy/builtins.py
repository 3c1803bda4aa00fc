"""Built-in policies: the three `CRP-Safety-Mode` values and the four profiles.

Expansions follow 006§4.2 / 006§6.1 as restated in digest §3.3 (G16: `strict`
includes `require-grounding 0.75`; `warn` is `warn-on CRITICAL; warn-on HIGH`,
which merges to `warn-on HIGH`). The specs define no `balanced` profile.
"""

from __future__ import annotations

from types import MappingProxyType

from crp_gateway.governance.policy.model import (
    OversightMode,
    PolicyError,
    Profile,
    RepetitionLevel,
    RiskLevel,
    SafetyMode,
    SafetyPolicy,
    Source,
    Tier,
    UpgradeStrategy,
)

__all__ = [
    "MODE_PERMISSIVE",
    "MODE_STRICT",
    "MODE_WARN",
    "PROFILE_DEVELOPER",
    "PROFILE_FINANCIAL",
    "PROFILE_MEDICAL",
    "PROFILE_PUBLIC_FACING",
    "mode_policy",
    "parse_mode",
    "parse_profile",
    "profile_policy",
]

_CONTEXT_PARAMETRIC = frozenset({Source.CONTEXT, Source.PARAMETRIC})

MODE_STRICT = SafetyPolicy(
    halt_on=RiskLevel.CRITICAL,
    warn_on=RiskLevel.HIGH,
    block_ungrounded=True,
    require_grounding=0.75,
)
MODE_WARN = SafetyPolicy(warn_on=RiskLevel.HIGH)
MODE_PERMISSIVE = SafetyPolicy()

PROFILE_MEDICAL = SafetyPolicy(
    profile=Profile.MEDICAL,
    default_src=frozenset({Source.CONTEXT}),
    halt_on=RiskLevel.HIGH,
    require_grounding=0.90,
    require_entailment=0.85,
    block_ungrounded=True,
    block_pii=True,
    block_fabrication=True,
    oversight=OversightMode.HUMAN_REVIEW,
    require_flow=0.70,
    require_completeness=0.90,
    report_uri="https://comply.crprotocol.io/reports",
)
PROFILE_FINANCIAL = SafetyPolicy(
    profile=Profile.FINANCIAL,
    default_src=_CONTEXT_PARAMETRIC,
    halt_on=RiskLevel.CRITICAL,
    warn_on=RiskLevel.HIGH,
    require_grounding=0.80,
    block_fabrication=True,
    upgrade_on_risk=UpgradeStrategy.REFLEXIVE,
    require_completeness=0.80,
)
PROFILE_DEVELOPER = SafetyPolicy(
    profile=Profile.DEVELOPER,
    default_src=_CONTEXT_PARAMETRIC,
    warn_on=RiskLevel.CRITICAL,
    require_quality=frozenset({Tier.S, Tier.A, Tier.B}),
    oversight=OversightMode.AUTO,
)
PROFILE_PUBLIC_FACING = SafetyPolicy(
    profile=Profile.PUBLIC_FACING,
    default_src=_CONTEXT_PARAMETRIC,
    halt_on=RiskLevel.CRITICAL,
    warn_on=RiskLevel.HIGH,
    block_pii=True,
    require_flow=0.60,
    max_repetition=RepetitionLevel.MINOR,
    require_completeness=0.70,
)

_MODES: MappingProxyType[SafetyMode, SafetyPolicy] = MappingProxyType(
    {
        SafetyMode.STRICT: MODE_STRICT,
        SafetyMode.WARN: MODE_WARN,
        SafetyMode.PERMISSIVE: MODE_PERMISSIVE,
    }
)
_PROFILES: MappingProxyType[Profile, SafetyPolicy] = MappingProxyType(
    {
        Profile.MEDICAL: PROFILE_MEDICAL,
        Profile.FINANCIAL: PROFILE_FINANCIAL,
        Profile.DEVELOPER: PROFILE_DEVELOPER,
        Profile.PUBLIC_FACING: PROFILE_PUBLIC_FACING,
    }
)


def mode_policy(mode: SafetyMode) -> SafetyPolicy:
    """The directive expansion of a `CRP-Safety-Mode` value."""
    return _MODES[mode]


def profile_policy(profile: Profile) -> SafetyPolicy:
    """The directive expansion of `profile=<name>` (with `profile` recorded)."""
    return _PROFILES[profile]


def parse_mode(text: str) -> SafetyMode:
    """Parse a `CRP-Safety-Mode` header value (case-insensitive, trimmed)."""
    token = text.strip(" \t")
    if not token:
        raise PolicyError("mode", "CRP-Safety-Mode is empty")
    return SafetyMode.from_token(token, "mode")


def parse_profile(text: str) -> Profile:
    """Parse a profile name as written after `profile=`."""
    if not text:
        raise PolicyError("profile", "profile= needs a name")
    return Profile.from_token(text, "profile")
