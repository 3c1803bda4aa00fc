"""The `CRP-Safety-Policy` directive language (SPEC-006), pure and I/O-free.

Grammar, in short (digest §3.1). A policy is a `;`-separated list of
directives. A directive is a name, optionally followed by whitespace-separated
arguments:

* `default-src` takes one or more sources (`context`, `parametric`, `ckf`,
  `cross-session`), or `'none'` on its own;
* `halt-on` / `warn-on` take one risk level out of MEDIUM, HIGH, CRITICAL
  (LOW is not allowed);
* `require-grounding|entailment|flow|completeness` take a threshold written
  as digits, a dot and one or two digits, between 0.00 and 1.00 (`1`, `.5`,
  `0.755` and `1.50` are errors);
* `require-quality` takes tiers from S A B C D; `oversight` and
  `require-oversight` take auto, human-review, halt or log-only;
* `max-repetition` takes NONE, MINOR or SIGNIFICANT; `upgrade-on-risk` takes
  reflexive, hierarchical or batch;
* `report-uri` takes one absolute URI; `report-to` takes a group name;
* `block-ungrounded|parametric|pii|fabrication|repetition` take nothing;
* `profile=<medical|financial|developer|public-facing>` may come first and
  expands to that profile, which the following directives refine.

Decisions (G-numbers are digest §9):

* G17: names and enumerated values are case-insensitive and normalised
  (levels/tiers upper-case, names/sources/modes lower-case; URIs keep their
  case). Spaces and tabs around `;` and between tokens are ignored, as are
  empty directives (a trailing `;`, P14; a blank policy is the empty policy).
  Thresholds are strict in format and range. Unknown directives are errors
  (002§14.3). Duplicates merge most restrictive wins (`combine`); for the
  unordered `report-uri`, `report-to` and `upgrade-on-risk` the last one
  wins. Duplicates whose values cannot be merged (disjoint `default-src` or
  `require-quality` sets) are a `PolicyError`. `report-to` is rejected unless
  the group is configured. `require-oversight M` is a floor on the effective
  oversight. `warn-ungrounded` is internal (zero-CKF) and refused from clients.
* G16: mode expansions per 006§4.2 (`strict` includes `require-grounding
  0.75`).
* G20 / 017§6: zero-CKF adjustments are always reported through
  `CRP-Safety-Policy-Adjustment`; a tenant may refuse instead (`ZeroCkfRefusal`).
  Beyond the 017 table we also skip `require-quality` (the tier is `N/A`).
* G24: `needs_buffering` covers every halt or rewrite that needs the response,
  a superset of "strict mode or any halt-on/block-*".
* G36: `oversight human-review` counts as a halt (451, oversight-required).
* `profile` is metadata: it is neither compared nor serialised. The applied
  policy and its hash are those of the expanded directives, so
  `profile=financial` and its expansion hash identically.
* The canonical form (`format_policy`) lists directives in grammar order with
  `"; "` between them and omits an absent `default-src`, so that
  `policy_hash` of `halt-on CRITICAL; warn-on HIGH` matches digest §5.8.
"""

from crp_gateway.governance.policy.builtins import (
    MODE_PERMISSIVE,
    MODE_STRICT,
    MODE_WARN,
    PROFILE_DEVELOPER,
    PROFILE_FINANCIAL,
    PROFILE_MEDICAL,
    PROFILE_PUBLIC_FACING,
    mode_policy,
    parse_mode,
    parse_profile,
    profile_policy,
)
from crp_gateway.governance.policy.combine import combine, merge
from crp_gateway.governance.policy.inheritance import (
    INHERITANCE_VIOLATION_HEADER,
    InheritanceViolation,
    Relaxation,
    check_inherits,
    relaxations,
)
from crp_gateway.governance.policy.model import (
    DEFAULT_SOURCES,
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
from crp_gateway.governance.policy.outcomes import (
    HaltCheck,
    Phase,
    RiskAction,
    can_halt,
    halt_checks,
    halts_unconditionally,
    needs_buffering,
    request_halt_checks,
    response_halt_checks,
    risk_action,
)
from crp_gateway.governance.policy.resolve import (
    ZERO_CKF_REASON,
    Adjustment,
    PolicySource,
    ResolvedPolicy,
    ZeroCkfRefusal,
    adjust_for_zero_ckf,
    format_adjustments,
    resolve_policy,
)
from crp_gateway.governance.policy.syntax import (
    directive_texts,
    format_policy,
    parse_policy,
    policy_hash,
)

__all__ = [
    "DEFAULT_SOURCES",
    "INHERITANCE_VIOLATION_HEADER",
    "MODE_PERMISSIVE",
    "MODE_STRICT",
    "MODE_WARN",
    "PROFILE_DEVELOPER",
    "PROFILE_FINANCIAL",
    "PROFILE_MEDICAL",
    "PROFILE_PUBLIC_FACING",
    "ZERO_CKF_REASON",
    "Adjustment",
    "HaltCheck",
    "InheritanceViolation",
    "OversightMode",
    "Phase",
    "PolicyError",
    "PolicySource",
    "Profile",
    "Relaxation",
    "RepetitionLevel",
    "ResolvedPolicy",
    "RiskAction",
    "RiskLevel",
    "SafetyMode",
    "SafetyPolicy",
    "Source",
    "Tier",
    "UpgradeStrategy",
    "ZeroCkfRefusal",
    "adjust_for_zero_ckf",
    "can_halt",
    "check_inherits",
    "combine",
    "directive_texts",
    "format_adjustments",
    "format_policy",
    "halt_checks",
    "halts_unconditionally",
    "merge",
    "mode_policy",
    "needs_buffering",
    "parse_mode",
    "parse_policy",
    "parse_profile",
    "policy_hash",
    "profile_policy",
    "relaxations",
    "request_halt_checks",
    "resolve_policy",
    "response_halt_checks",
    "risk_action",
]
