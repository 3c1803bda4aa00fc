"""Tests for the CRP-Safety-Policy language (crp_gateway.governance.policy)."""

from __future__ import annotations

import dataclasses
import hashlib
import random
import re
from collections.abc import Iterator

import pytest

from crp_gateway.governance.policy import (
    MODE_PERMISSIVE,
    MODE_STRICT,
    MODE_WARN,
    PROFILE_DEVELOPER,
    PROFILE_FINANCIAL,
    PROFILE_MEDICAL,
    PROFILE_PUBLIC_FACING,
    Adjustment,
    HaltCheck,
    InheritanceViolation,
    OversightMode,
    PolicyError,
    PolicySource,
    Profile,
    RepetitionLevel,
    RiskAction,
    RiskLevel,
    SafetyMode,
    SafetyPolicy,
    Source,
    Tier,
    UpgradeStrategy,
    ZeroCkfRefusal,
    adjust_for_zero_ckf,
    can_halt,
    check_inherits,
    format_adjustments,
    format_policy,
    halt_checks,
    halts_unconditionally,
    merge,
    mode_policy,
    needs_buffering,
    parse_mode,
    parse_policy,
    policy_hash,
    profile_policy,
    relaxations,
    request_halt_checks,
    resolve_policy,
    response_halt_checks,
    risk_action,
)

CONTEXT, PARAMETRIC, CKF = Source.CONTEXT, Source.PARAMETRIC, Source.CKF
HASH_FORMAT = re.compile(r"sha256:[0-9a-f]{64}")

# ------------------------------------------------------------ §3.5 test vectors

ACCEPTED = [
    pytest.param(
        "halt-on CRITICAL", SafetyPolicy(halt_on=RiskLevel.CRITICAL), id="P01"
    ),
    pytest.param(
        "default-src context ckf; halt-on HIGH; warn-on MEDIUM; "
        "require-grounding 0.80; block-fabrication; "
        "report-uri https://audit.example.com/crp",
        SafetyPolicy(
            default_src=frozenset({CONTEXT, CKF}),
            halt_on=RiskLevel.HIGH,
            warn_on=RiskLevel.MEDIUM,
            require_grounding=0.80,
            block_fabrication=True,
            report_uri="https://audit.example.com/crp",
        ),
        id="P02",
    ),
    pytest.param(
        "require-quality S A B; max-repetition MINOR; oversight human-review; "
        "require-flow 0.6",
        SafetyPolicy(
            require_quality=frozenset({Tier.S, Tier.A, Tier.B}),
            max_repetition=RepetitionLevel.MINOR,
            oversight=OversightMode.HUMAN_REVIEW,
            require_flow=0.60,
        ),
        id="P03",
    ),
    pytest.param("default-src 'none'", SafetyPolicy(default_src=frozenset()), id="P04"),
    pytest.param(
        "HALT-ON critical;  warn-on High",
        SafetyPolicy(halt_on=RiskLevel.CRITICAL, warn_on=RiskLevel.HIGH),
        id="P06",
    ),
    pytest.param(
        "require-grounding 1.00", SafetyPolicy(require_grounding=1.0), id="P07-1.00"
    ),
    pytest.param(
        "profile=financial; report-uri https://risk.example.com/r",
        dataclasses.replace(PROFILE_FINANCIAL, report_uri="https://risk.example.com/r"),
        id="P10",
    ),
    pytest.param(
        "warn-on CRITICAL; warn-on HIGH", SafetyPolicy(warn_on=RiskLevel.HIGH), id="P11"
    ),
    pytest.param(
        "halt-on CRITICAL;", SafetyPolicy(halt_on=RiskLevel.CRITICAL), id="P14"
    ),
]

REJECTED = [
    pytest.param("halt-on LOW", "halt-on", id="P05-halt-on"),
    pytest.param("warn-on LOW", "warn-on", id="P05-warn-on"),
    pytest.param("require-grounding 1", "require-grounding", id="P07-1"),
    pytest.param("require-grounding 0.755", "require-grounding", id="P07-0.755"),
    pytest.param("require-grounding 1.50", "require-grounding", id="P07-1.50"),
    pytest.param(
        "default-src context; halt-on CRITICAL; allow-hallucination",
        "allow-hallucination",
        id="P08",
    ),
    pytest.param("upgrade-on-risk fan-out", "upgrade-on-risk", id="P09"),
    pytest.param("report-uri", "report-uri", id="P15-report-uri"),
    pytest.param("block-pii yes", "block-pii", id="P15-block-pii"),
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED)
def test_vector_accepted(text: str, expected: SafetyPolicy) -> None:
    assert parse_policy(text) == expected


@pytest.mark.parametrize(("text", "directive"), REJECTED)
def test_vector_rejected(text: str, directive: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    assert caught.value.directive == directive


def test_p01_implicit_default_sources() -> None:
    policy = parse_policy("halt-on CRITICAL")
    assert policy.default_src is None
    assert policy.effective_sources == frozenset({CONTEXT, PARAMETRIC})


@pytest.mark.parametrize(
    ("risk", "action"),
    [
        (RiskLevel.LOW, RiskAction.PASS),
        (RiskLevel.MEDIUM, RiskAction.WARN),
        (RiskLevel.HIGH, RiskAction.HALT),
        (RiskLevel.CRITICAL, RiskAction.HALT),
    ],
)
def test_p02_enforcement(risk: RiskLevel, action: RiskAction) -> None:
    policy = parse_policy(
        "default-src context ckf; halt-on HIGH; warn-on MEDIUM; "
        "require-grounding 0.80; block-fabrication; "
        "report-uri https://audit.example.com/crp"
    )
    assert risk_action(policy, risk) is action


def test_p03_one_decimal_threshold_is_normalised() -> None:
    policy = parse_policy("require-flow 0.6")
    assert format_policy(policy) == "require-flow 0.60"


def test_p04_none_halts_every_response_before_dispatch() -> None:
    policy = parse_policy("default-src 'none'")
    assert policy.trusts_nothing
    assert halts_unconditionally(policy)
    assert HaltCheck.NO_TRUSTED_SOURCE in request_halt_checks(policy)
    assert not needs_buffering(policy)


def test_p08_message_mentions_unknown_directive() -> None:
    with pytest.raises(PolicyError, match="unknown directive"):
        parse_policy("default-src context; halt-on CRITICAL; allow-hallucination")


def test_p10_records_the_profile() -> None:
    assert parse_policy("profile=financial; report-uri https://x.io/r").profile is (
        Profile.FINANCIAL
    )


def test_p12_strict_mode_wins_over_weaker_policy() -> None:
    expected = parse_policy(
        "halt-on CRITICAL; warn-on HIGH; block-ungrounded; require-grounding 0.75"
    )
    request = parse_policy("warn-on CRITICAL")
    assert merge(MODE_STRICT, request) == expected
    assert resolve_policy(mode=SafetyMode.STRICT, request=request).policy == expected


def test_p13_policy_wins_over_permissive_mode() -> None:
    request = parse_policy("halt-on CRITICAL")
    assert merge(MODE_PERMISSIVE, request) == SafetyPolicy(halt_on=RiskLevel.CRITICAL)
    resolved = resolve_policy(mode=SafetyMode.PERMISSIVE, request=request)
    assert resolved.applied_header == "halt-on CRITICAL"


P16_PARENT = "halt-on CRITICAL; require-grounding 0.75"


def test_p16_tighter_child_is_accepted_and_applied() -> None:
    parent = parse_policy(P16_PARENT)
    child = parse_policy("halt-on HIGH; require-grounding 0.85; block-fabrication")
    check_inherits(parent, child)
    resolved = resolve_policy(request=child, parent=parent)
    assert "halt-on HIGH" in resolved.applied_header.split("; ")


def test_p16_relaxing_child_is_rejected() -> None:
    parent = parse_policy(P16_PARENT)
    child = parse_policy("warn-on CRITICAL; require-grounding 0.50")
    with pytest.raises(InheritanceViolation) as caught:
        resolve_policy(request=child, parent=parent)
    violation = caught.value
    assert violation.directive == "halt-on"
    assert [r.directive for r in violation.relaxations] == [
        "halt-on",
        "require-grounding",
    ]
    assert violation.to_body() == {
        "error": "safety_policy_inheritance_violation",
        "directive": "halt-on",
        "parent_value": "halt-on CRITICAL",
        "child_value": None,
        "message": violation.message,
    }


# ------------------------------------------------------- leniency and strictness


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\thalt-on\t\tHIGH \t", SafetyPolicy(halt_on=RiskLevel.HIGH)),
        (
            "halt-on HIGH ;warn-on   medium ; ;",
            SafetyPolicy(halt_on=RiskLevel.HIGH, warn_on=RiskLevel.MEDIUM),
        ),
        (
            "DEFAULT-SRC Context   CKF",
            SafetyPolicy(default_src=frozenset({CONTEXT, CKF})),
        ),
        ("default-src 'NONE'", SafetyPolicy(default_src=frozenset())),
        (
            "default-src Cross-Session",
            SafetyPolicy(default_src=frozenset({Source.CROSS_SESSION})),
        ),
        (
            "require-quality s a",
            SafetyPolicy(require_quality=frozenset({Tier.S, Tier.A})),
        ),
        ("OVERSIGHT Human-Review", SafetyPolicy(oversight=OversightMode.HUMAN_REVIEW)),
        ("Upgrade-On-Risk BATCH", SafetyPolicy(upgrade_on_risk=UpgradeStrategy.BATCH)),
        (
            "max-repetition significant",
            SafetyPolicy(max_repetition=RepetitionLevel.SIGNIFICANT),
        ),
        ("Block-PII", SafetyPolicy(block_pii=True)),
        ("PROFILE = Medical", PROFILE_MEDICAL),
        ("require-grounding 00.50", SafetyPolicy(require_grounding=0.5)),
        ("require-completeness 0.0", SafetyPolicy(require_completeness=0.0)),
        (
            "report-uri https://Audit.Example.com/CRP?a=1&b=%20",
            SafetyPolicy(report_uri="https://Audit.Example.com/CRP?a=1&b=%20"),
        ),
    ],
)
def test_case_and_whitespace_leniency(text: str, expected: SafetyPolicy) -> None:
    assert parse_policy(text) == expected


def test_blank_policy_is_the_empty_policy() -> None:
    assert parse_policy("") == SafetyPolicy()
    assert parse_policy(" ; \t;") == SafetyPolicy()
    assert format_policy(SafetyPolicy()) == ""


@pytest.mark.parametrize(
    ("text", "directive"),
    [
        ("halt-on LOW", "halt-on"),
        ("halt-on", "halt-on"),
        ("halt-on HIGH CRITICAL", "halt-on"),
        ("halt-on SEVERE", "halt-on"),
        ("require-grounding 1.5", "require-grounding"),
        ("require-grounding .5", "require-grounding"),
        ("require-grounding 5.", "require-grounding"),
        ("require-grounding -0.5", "require-grounding"),
        ("require-grounding 0,8", "require-grounding"),
        ("require-grounding 1e-1", "require-grounding"),
        ("require-entailment \uff10.5", "require-entailment"),  # full-width digit
        ("require-flow 0.5 0.6", "require-flow"),
        ("foo-bar 1", "foo-bar"),
        ("warn-pii", "warn-pii"),
        ("block-mixed", "block-mixed"),
        ("warn-ungrounded", "warn-ungrounded"),
        ("default-src", "default-src"),
        ("default-src web", "default-src"),
        ("default-src 'none' context", "default-src"),
        ("default-src none", "default-src"),
        ("require-quality", "require-quality"),
        ("require-quality E", "require-quality"),
        ("oversight sometimes", "oversight"),
        ("require-oversight", "require-oversight"),
        ("max-repetition SEVERE", "max-repetition"),
        ("block-ungrounded now", "block-ungrounded"),
        ("report-uri /relative/path", "report-uri"),
        ("report-uri https://a.example/x https://b.example/y", "report-uri"),
        ("report-uri https://a.example/<x>", "report-uri"),
        ("report-to security-team", "report-to"),
        ("report-to bad.group", "report-to"),
        ("profile=balanced", "profile"),
        ("profile=", "profile"),
        ("halt-on HIGH; profile=medical", "profile=medical"),
        ("profile=medical; profile=financial", "profile=financial"),
        ("profile medical", "profile"),
        ("halt-on CRITICAL\u00a0", "halt-on"),  # NBSP is not OWS
        ("halt-on\nHIGH", "halt-on"),
        ("\u00e9chec 1", None),
        ("profile=medical extra", "profile"),
        ("default-src context; default-src parametric", "default-src"),
        ("require-quality S; require-quality A", "require-quality"),
        ("profile=medical; default-src parametric", "default-src"),
    ],
)
def test_strictness(text: str, directive: str | None) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    assert caught.value.directive == directive
    assert caught.value.message
    assert (directive or caught.value.message) in str(caught.value)


def test_report_to_needs_a_configured_group() -> None:
    policy = parse_policy("report-to Security-Team", report_groups={"security-team"})
    assert policy.report_to == "security-team"


def test_internal_directive_is_accepted_only_when_allowed() -> None:
    policy = parse_policy("warn-ungrounded", allow_internal=True)
    assert policy == SafetyPolicy(warn_ungrounded=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("halt-on CRITICAL; halt-on MEDIUM", SafetyPolicy(halt_on=RiskLevel.MEDIUM)),
        (
            "require-grounding 0.5; require-grounding 0.7",
            SafetyPolicy(require_grounding=0.7),
        ),
        (
            "default-src context parametric; default-src context ckf",
            SafetyPolicy(default_src=frozenset({CONTEXT})),
        ),
        (
            "default-src context; default-src 'none'",
            SafetyPolicy(default_src=frozenset()),
        ),
        (
            "require-quality S A B; require-quality A B C",
            SafetyPolicy(require_quality=frozenset({Tier.A, Tier.B})),
        ),
        (
            "oversight log-only; oversight human-review",
            SafetyPolicy(oversight=OversightMode.HUMAN_REVIEW),
        ),
        (
            "max-repetition SIGNIFICANT; max-repetition NONE",
            SafetyPolicy(max_repetition=RepetitionLevel.NONE),
        ),
        ("block-pii; block-pii", SafetyPolicy(block_pii=True)),
        (
            "report-uri https://a.example/1; report-uri https://b.example/2",
            SafetyPolicy(report_uri="https://b.example/2"),
        ),
        (
            "upgrade-on-risk reflexive; upgrade-on-risk batch",
            SafetyPolicy(upgrade_on_risk=UpgradeStrategy.BATCH),
        ),
    ],
)
def test_duplicates_merge_most_restrictive(text: str, expected: SafetyPolicy) -> None:
    assert parse_policy(text) == expected


def test_directives_after_a_profile_tighten_but_never_loosen_it() -> None:
    tighter = parse_policy("profile=financial; halt-on HIGH")
    assert tighter.halt_on is RiskLevel.HIGH
    looser = parse_policy("profile=medical; halt-on CRITICAL; require-grounding 0.5")
    assert looser == PROFILE_MEDICAL
    own_uri = parse_policy("profile=medical; report-uri https://x.example/r")
    assert own_uri.report_uri == "https://x.example/r"


# ---------------------------------------------------------- modes and profiles

MODE_TEXTS = {
    SafetyMode.STRICT: "halt-on CRITICAL; warn-on HIGH; block-ungrounded; "
    "require-grounding 0.75",
    SafetyMode.WARN: "warn-on CRITICAL; warn-on HIGH",
    SafetyMode.PERMISSIVE: "",
}
PROFILE_TEXTS = {
    Profile.MEDICAL: "default-src context; halt-on HIGH; require-grounding 0.90; "
    "require-entailment 0.85; block-ungrounded; block-pii; block-fabrication; "
    "oversight human-review; require-flow 0.70; require-completeness 0.90; "
    "report-uri https://comply.crprotocol.io/reports",
    Profile.FINANCIAL: "default-src context parametric; halt-on CRITICAL; "
    "warn-on HIGH; require-grounding 0.80; block-fabrication; "
    "upgrade-on-risk reflexive; require-completeness 0.80",
    Profile.DEVELOPER: "default-src context parametric; warn-on CRITICAL; "
    "require-quality S A B; oversight auto",
    Profile.PUBLIC_FACING: "default-src context parametric; halt-on CRITICAL; "
    "warn-on HIGH; block-pii; require-flow 0.60; max-repetition MINOR; "
    "require-completeness 0.70",
}


@pytest.mark.parametrize("mode", list(SafetyMode))
def test_mode_expansions(mode: SafetyMode) -> None:
    assert mode_policy(mode) == parse_policy(MODE_TEXTS[mode])


def test_mode_constants() -> None:
    assert mode_policy(SafetyMode.STRICT) is MODE_STRICT
    assert MODE_WARN == SafetyPolicy(warn_on=RiskLevel.HIGH)
    assert MODE_PERMISSIVE == SafetyPolicy()


@pytest.mark.parametrize("profile", list(Profile))
def test_profile_expansions(profile: Profile) -> None:
    expected = profile_policy(profile)
    assert expected == parse_policy(PROFILE_TEXTS[profile])
    parsed = parse_policy(f"profile={profile.value}")
    assert parsed == expected
    assert parsed.profile is profile is expected.profile


def test_profile_constants() -> None:
    assert [profile_policy(p) for p in Profile] == [
        PROFILE_MEDICAL,
        PROFILE_FINANCIAL,
        PROFILE_DEVELOPER,
        PROFILE_PUBLIC_FACING,
    ]


def test_profile_hashes_like_its_expansion() -> None:
    assert policy_hash(parse_policy("profile=developer")) == policy_hash(
        parse_policy(PROFILE_TEXTS[Profile.DEVELOPER])
    )


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("strict", SafetyMode.STRICT),
        (" WARN\t", SafetyMode.WARN),
        ("Permissive", SafetyMode.PERMISSIVE),
    ],
)
def test_parse_mode(text: str, mode: SafetyMode) -> None:
    assert parse_mode(text) is mode


@pytest.mark.parametrize("text", ["balanced", "", "strict warn"])
def test_parse_mode_rejects(text: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_mode(text)
    assert caught.value.directive == "mode"


# ------------------------------------------------------------------------ merge


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("halt-on CRITICAL", "halt-on HIGH", "halt-on HIGH"),
        ("warn-on MEDIUM", "warn-on CRITICAL", "warn-on MEDIUM"),
        ("require-grounding 0.9", "require-grounding 0.75", "require-grounding 0.90"),
        ("require-entailment 0.1", "require-entailment 0.2", "require-entailment 0.20"),
        ("require-flow 0.7", "halt-on HIGH", "halt-on HIGH; require-flow 0.70"),
        (
            "require-completeness 0.3",
            "require-completeness 0.31",
            "require-completeness 0.31",
        ),
        ("require-quality S A B", "require-quality B C", "require-quality B"),
        ("default-src context ckf", "default-src ckf parametric", "default-src ckf"),
        ("default-src 'none'", "default-src context", "default-src 'none'"),
        ("oversight auto", "oversight halt", "oversight halt"),
        (
            "require-oversight human-review",
            "require-oversight log-only",
            "require-oversight human-review",
        ),
        ("block-pii", "block-parametric", "block-parametric; block-pii"),
        ("block-ungrounded", "block-repetition", "block-ungrounded; block-repetition"),
        ("max-repetition MINOR", "max-repetition SIGNIFICANT", "max-repetition MINOR"),
        (
            "upgrade-on-risk batch",
            "upgrade-on-risk reflexive",
            "upgrade-on-risk reflexive",
        ),
        (
            "report-uri https://a.example/",
            "report-uri https://b.example/",
            "report-uri https://b.example/",
        ),
        ("block-fabrication", "", "block-fabrication"),
    ],
)
def test_merge_most_restrictive_per_directive(
    first: str, second: str, expected: str
) -> None:
    assert format_policy(merge(parse_policy(first), parse_policy(second))) == expected


@pytest.mark.parametrize(
    ("first", "second", "directive"),
    [
        ("default-src context", "default-src parametric", "default-src"),
        ("require-quality S", "require-quality D", "require-quality"),
    ],
)
def test_merge_conflict(first: str, second: str, directive: str) -> None:
    with pytest.raises(PolicyError) as caught:
        merge(parse_policy(first), parse_policy(second))
    assert caught.value.directive == directive


def test_merge_of_nothing_is_permissive() -> None:
    assert merge() == MODE_PERMISSIVE


def test_merge_keeps_a_shared_profile_only() -> None:
    assert merge(PROFILE_MEDICAL, MODE_STRICT).profile is Profile.MEDICAL
    assert merge(PROFILE_FINANCIAL, PROFILE_PUBLIC_FACING).profile is None


# ------------------------------------------------------------------ inheritance


@pytest.mark.parametrize(
    ("parent", "child"),
    [
        ("halt-on HIGH", "halt-on MEDIUM"),
        ("warn-on HIGH", "halt-on HIGH"),
        ("warn-on HIGH", "warn-on MEDIUM; halt-on CRITICAL"),
        ("default-src context parametric", "default-src context"),
        ("default-src context", "default-src 'none'"),
        ("require-quality S A B", "require-quality S"),
        ("oversight human-review", "require-oversight halt"),
        ("require-oversight auto", "oversight human-review"),
        ("max-repetition MINOR", "max-repetition NONE"),
        ("upgrade-on-risk batch", "halt-on HIGH"),
        ("report-uri https://a.example/", "report-uri https://b.example/"),
        ("", "oversight log-only"),
        ("", "default-src ckf"),
    ],
)
def test_inheritance_tightening_is_accepted(parent: str, child: str) -> None:
    check_inherits(parse_policy(parent), parse_policy(child))
    assert relaxations(parse_policy(parent), parse_policy(child)) == ()


@pytest.mark.parametrize(
    ("parent", "child", "directive"),
    [
        ("halt-on HIGH", "halt-on CRITICAL", "halt-on"),
        ("halt-on HIGH", "warn-on MEDIUM", "halt-on"),
        ("warn-on HIGH", "warn-on CRITICAL", "warn-on"),
        ("warn-on HIGH", "halt-on CRITICAL", "warn-on"),
        ("default-src context", "default-src context parametric", "default-src"),
        ("default-src context", "halt-on HIGH", "default-src"),
        ("default-src 'none'", "default-src context", "default-src"),
        ("require-grounding 0.75", "require-grounding 0.74", "require-grounding"),
        ("require-entailment 0.5", "", "require-entailment"),
        ("require-flow 0.5", "require-flow 0.4", "require-flow"),
        (
            "require-completeness 0.9",
            "require-completeness 0.8",
            "require-completeness",
        ),
        ("require-quality S A", "require-quality S A B", "require-quality"),
        ("require-quality S A", "", "require-quality"),
        ("oversight halt", "oversight human-review", "oversight"),
        ("require-oversight human-review", "oversight auto", "require-oversight"),
        ("oversight auto", "oversight log-only", "oversight"),
        ("block-ungrounded", "", "block-ungrounded"),
        ("block-parametric", "block-pii", "block-parametric"),
        ("block-pii", "", "block-pii"),
        ("block-fabrication", "", "block-fabrication"),
        ("block-repetition", "max-repetition NONE", "block-repetition"),
        ("max-repetition NONE", "max-repetition MINOR", "max-repetition"),
        ("max-repetition NONE", "", "max-repetition"),
    ],
)
def test_inheritance_relaxation_names_the_directive(
    parent: str, child: str, directive: str
) -> None:
    with pytest.raises(InheritanceViolation) as caught:
        check_inherits(parse_policy(parent), parse_policy(child))
    assert caught.value.directive == directive
    assert caught.value.parent_value.startswith(directive)
    assert directive in caught.value.message


def test_internal_warn_ungrounded_is_satisfied_by_block() -> None:
    parent = SafetyPolicy(warn_ungrounded=True)
    check_inherits(parent, SafetyPolicy(block_ungrounded=True))
    with pytest.raises(InheritanceViolation):
        check_inherits(parent, SafetyPolicy())


# ------------------------------------------- format/parse round trip, policy hash


def _maybe(rng: random.Random, value: object) -> object:
    return value if rng.random() < 0.5 else None


def _random_policy(rng: random.Random) -> SafetyPolicy:
    def subset(members: list[Source] | list[Tier]) -> frozenset[object]:
        return frozenset(m for m in members if rng.random() < 0.5)

    def threshold() -> object:
        return _maybe(rng, rng.randint(0, 100) / 100)

    quality = subset(list(Tier)) or frozenset({rng.choice(list(Tier))})
    fields: dict[str, object] = {
        "default_src": _maybe(rng, subset(list(Source))),
        "halt_on": _maybe(rng, rng.choice(list(RiskLevel)[1:])),
        "warn_on": _maybe(rng, rng.choice(list(RiskLevel)[1:])),
        "require_grounding": threshold(),
        "require_entailment": threshold(),
        "require_flow": threshold(),
        "require_completeness": threshold(),
        "require_quality": _maybe(rng, quality),
        "require_oversight": _maybe(rng, rng.choice(list(OversightMode))),
        "oversight": _maybe(rng, rng.choice(list(OversightMode))),
        "max_repetition": _maybe(rng, rng.choice(list(RepetitionLevel)[:3])),
        "upgrade_on_risk": _maybe(rng, rng.choice(list(UpgradeStrategy))),
        "report_uri": _maybe(rng, f"https://r{rng.randint(0, 9)}.example/x?y=%2F"),
        "report_to": _maybe(rng, rng.choice(["team-a", "b_2"])),
    }
    for flag in ("ungrounded", "parametric", "pii", "fabrication", "repetition"):
        fields[f"block_{flag}"] = rng.random() < 0.3
    return SafetyPolicy(**fields)  # type: ignore[arg-type]


def _corpus() -> Iterator[SafetyPolicy]:
    yield from (mode_policy(mode) for mode in SafetyMode)
    yield from (profile_policy(profile) for profile in Profile)
    rng = random.Random(20260525)  # noqa: S311 - deterministic test data
    yield from (_random_policy(rng) for _ in range(400))


CORPUS = list(_corpus())
GROUPS = {"team-a", "b_2"}


def test_corpus_is_varied() -> None:
    texts = {format_policy(p) for p in CORPUS}
    assert len(texts) > 350
    assert all(
        any(d in text for text in texts)
        for d in ("'none'", "report-to", "block-repetition", "require-oversight")
    )


@pytest.mark.parametrize(
    "policy", CORPUS, ids=lambda p: format_policy(p)[:60] or "empty"
)
def test_round_trip(policy: SafetyPolicy) -> None:
    text = format_policy(policy)
    assert parse_policy(text, report_groups=GROUPS) == policy
    assert format_policy(parse_policy(text, report_groups=GROUPS)) == text
    assert HASH_FORMAT.fullmatch(policy_hash(policy))


def test_format_is_canonical() -> None:
    messy = (
        "report-uri https://x.example/;BLOCK-PII ; default-src ckf Context;halt-on high"
    )
    assert format_policy(parse_policy(messy)) == (
        "default-src context ckf; halt-on HIGH; block-pii; report-uri https://x.example/"
    )


def test_policy_hash_matches_digest_vector() -> None:
    expected = "sha256:51d0de8d4928a245c9822c8d7a2d630897461b7f188e17581474a79c41681a07"
    assert policy_hash(parse_policy("halt-on CRITICAL; warn-on HIGH")) == expected
    assert policy_hash(parse_policy("WARN-ON high ;halt-on critical")) == expected
    empty = "sha256:" + hashlib.sha256(b"").hexdigest()
    assert policy_hash(SafetyPolicy()) == empty


def test_merge_result_inherits_from_both_sides() -> None:
    pairs = zip(CORPUS[::2], CORPUS[1::2], strict=False)
    merged = 0
    for first, second in pairs:
        try:
            both = merge(first, second)
        except PolicyError:
            continue
        check_inherits(first, both)
        check_inherits(second, both)
        merged += 1
    assert merged > 100


# ---------------------------------------------------------- value construction


@pytest.mark.parametrize(
    ("fields", "directive"),
    [
        ({"halt_on": RiskLevel.LOW}, "halt-on"),
        ({"warn_on": RiskLevel.LOW}, "warn-on"),
        ({"max_repetition": RepetitionLevel.SEVERE}, "max-repetition"),
        ({"require_grounding": 0.755}, "require-grounding"),
        ({"require_flow": 1.5}, "require-flow"),
        ({"require_entailment": -0.1}, "require-entailment"),
        ({"require_completeness": float("nan")}, "require-completeness"),
        ({"require_grounding": True}, "require-grounding"),
        ({"require_quality": frozenset()}, "require-quality"),
        ({"report_uri": "not a uri"}, "report-uri"),
        ({"report_uri": "https://x.example/a;b"}, "report-uri"),
        ({"report_to": "Team"}, "report-to"),
    ],
)
def test_invalid_values_cannot_be_constructed(
    fields: dict[str, object], directive: str
) -> None:
    with pytest.raises(PolicyError) as caught:
        SafetyPolicy(**fields)  # type: ignore[arg-type]
    assert caught.value.directive == directive


def test_policy_is_immutable_and_thresholds_normalised() -> None:
    policy = SafetyPolicy(require_grounding=0.1 + 0.2)
    assert policy.require_grounding == 0.3
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.halt_on = RiskLevel.HIGH  # type: ignore[misc]


def test_effective_oversight() -> None:
    assert SafetyPolicy().effective_oversight is OversightMode.AUTO
    assert SafetyPolicy(oversight=OversightMode.LOG_ONLY).effective_oversight is (
        OversightMode.LOG_ONLY
    )
    floor = SafetyPolicy(
        oversight=OversightMode.LOG_ONLY, require_oversight=OversightMode.HUMAN_REVIEW
    )
    assert floor.effective_oversight is OversightMode.HUMAN_REVIEW


# ---------------------------------------------------------------- zero-CKF mode


def test_zero_ckf_adjusts_the_medical_profile() -> None:
    policy, adjustments = adjust_for_zero_ckf(PROFILE_MEDICAL)
    assert adjustments == (
        Adjustment("default-src context", "default-src context parametric"),
        Adjustment("require-grounding 0.90", "skipped"),
        Adjustment("require-entailment 0.85", "query-consistency"),
        Adjustment("block-ungrounded", "warn-ungrounded"),
    )
    assert policy == dataclasses.replace(
        PROFILE_MEDICAL,
        default_src=frozenset({CONTEXT, PARAMETRIC}),
        require_grounding=None,
        block_ungrounded=False,
        warn_ungrounded=True,
    )
    assert policy.require_entailment == 0.85
    assert policy.halt_on is RiskLevel.HIGH
    assert policy.block_pii
    assert policy.oversight is OversightMode.HUMAN_REVIEW
    assert policy.report_uri == PROFILE_MEDICAL.report_uri


def test_zero_ckf_adjustment_header_matches_spec_example() -> None:
    _, adjustments = adjust_for_zero_ckf(SafetyPolicy(block_ungrounded=True))
    assert format_adjustments(adjustments) == (
        "directive=block-ungrounded; adjusted-to=warn-ungrounded; reason=zero-ckf-mode"
    )


def test_zero_ckf_skips_quality_requirement() -> None:
    policy, adjustments = adjust_for_zero_ckf(PROFILE_DEVELOPER)
    assert policy.require_quality is None
    assert adjustments == (Adjustment("require-quality S A B", "skipped"),)


@pytest.mark.parametrize(
    "text",
    [
        "halt-on CRITICAL; warn-on HIGH; block-pii; upgrade-on-risk reflexive",
        "default-src 'none'",
        "default-src context parametric; block-parametric; oversight halt",
        "report-uri https://x.example/r; require-flow 0.5; require-completeness 0.5",
    ],
)
def test_zero_ckf_leaves_satisfiable_policies_alone(text: str) -> None:
    policy = parse_policy(text)
    assert adjust_for_zero_ckf(policy) == (policy, ())


def test_zero_ckf_adds_parametric_to_any_context_only_source_list() -> None:
    policy, adjustments = adjust_for_zero_ckf(parse_policy("default-src context ckf"))
    assert policy.default_src == frozenset({CONTEXT, PARAMETRIC, CKF})
    assert adjustments[0].adjusted_to == "default-src context parametric ckf"


def test_zero_ckf_resolution_reports_adjustments() -> None:
    resolved = resolve_policy(mode=SafetyMode.STRICT, zero_ckf=True)
    assert resolved.zero_ckf
    assert resolved.unadjusted == MODE_STRICT
    assert resolved.applied_header == "halt-on CRITICAL; warn-on HIGH; warn-ungrounded"
    assert resolved.adjustment_header == (
        "directive=require-grounding 0.75; adjusted-to=skipped; reason=zero-ckf-mode, "
        "directive=block-ungrounded; adjusted-to=warn-ungrounded; reason=zero-ckf-mode"
    )
    parsed = parse_policy(resolved.applied_header, allow_internal=True)
    assert parsed == resolved.policy
    assert not can_halt(SafetyPolicy(warn_ungrounded=True))


def test_zero_ckf_without_adjustments_has_no_header() -> None:
    resolved = resolve_policy(request=parse_policy("halt-on HIGH"), zero_ckf=True)
    assert resolved.adjustments == ()
    assert resolved.adjustment_header is None


def test_zero_ckf_refusal() -> None:
    with pytest.raises(ZeroCkfRefusal) as caught:
        resolve_policy(tenant=PROFILE_MEDICAL, zero_ckf=True, refuse_relaxation=True)
    assert caught.value.adjustments[0].directive == "default-src context"
    assert "require-grounding 0.90" in str(caught.value)
    accepted = resolve_policy(tenant=MODE_WARN, zero_ckf=True, refuse_relaxation=True)
    assert accepted.policy == MODE_WARN


def test_zero_ckf_adjusts_report_only_separately() -> None:
    resolved = resolve_policy(
        report_only=parse_policy("require-grounding 0.9"), zero_ckf=True
    )
    assert resolved.report_only == SafetyPolicy()
    assert resolved.report_only_adjustments == (
        Adjustment("require-grounding 0.90", "skipped"),
    )
    assert resolved.adjustments == ()


# ------------------------------------------------------------------- resolution


def test_most_specific_configured_layer_is_the_baseline() -> None:
    key, tenant, plan = MODE_STRICT, PROFILE_MEDICAL, MODE_WARN
    assert resolve_policy(key=key, tenant=tenant, plan=plan).policy == key
    assert resolve_policy(tenant=tenant, plan=plan).policy == tenant
    system = resolve_policy(system=PROFILE_FINANCIAL, tenant=tenant, plan=plan)
    assert system.policy == PROFILE_FINANCIAL
    assert system.sources == (PolicySource.SYSTEM,)
    only_plan = resolve_policy(plan=plan)
    assert only_plan.policy == plan
    assert only_plan.sources == (PolicySource.PLAN,)


def test_request_tightens_but_cannot_loosen_the_baseline() -> None:
    tenant = parse_policy("halt-on HIGH; report-uri https://tenant.example/r")
    request = parse_policy(
        "halt-on CRITICAL; block-pii; report-uri https://me.example/r"
    )
    resolved = resolve_policy(request=request, tenant=tenant)
    assert resolved.applied_header == (
        "halt-on HIGH; block-pii; report-uri https://me.example/r"
    )
    assert resolved.sources == (PolicySource.TENANT, PolicySource.REQUEST)


def test_mode_and_policy_combine_on_top_of_the_key() -> None:
    resolved = resolve_policy(
        key=parse_policy("require-grounding 0.9"),
        mode=SafetyMode.WARN,
        request=parse_policy("block-fabrication"),
    )
    assert resolved.applied_header == (
        "warn-on HIGH; require-grounding 0.90; block-fabrication"
    )
    assert resolved.sources == (PolicySource.KEY, PolicySource.REQUEST)


def test_no_layers_is_the_empty_policy() -> None:
    resolved = resolve_policy()
    assert resolved.policy == SafetyPolicy()
    assert resolved.sources == ()
    assert resolved.applied_header == ""
    assert not resolved.zero_ckf


def test_report_only_is_kept_apart_from_the_enforced_policy() -> None:
    observed = parse_policy("halt-on MEDIUM")
    resolved = resolve_policy(report_only=observed, tenant=MODE_WARN)
    assert resolved.report_only == observed
    assert resolved.policy == MODE_WARN
    assert not can_halt(resolved.policy)


def test_request_conflicting_with_baseline_is_a_policy_error() -> None:
    with pytest.raises(PolicyError) as caught:
        resolve_policy(
            request=parse_policy("default-src parametric"), tenant=PROFILE_MEDICAL
        )
    assert caught.value.directive == "default-src"


def test_inheritance_is_checked_on_the_effective_policy() -> None:
    parent = parse_policy("halt-on HIGH")
    resolved = resolve_policy(
        request=parse_policy("warn-on MEDIUM"), key=parent, parent=parent
    )
    assert resolved.policy.halt_on is RiskLevel.HIGH


# ------------------------------------------------------------- halts, buffering


@pytest.mark.parametrize(
    ("policy", "halts"),
    [
        (MODE_PERMISSIVE, False),
        (MODE_WARN, False),
        (PROFILE_DEVELOPER, False),
        (parse_policy("default-src context parametric ckf"), False),
        (
            parse_policy(
                "oversight log-only; upgrade-on-risk batch; report-uri https://x.io/"
            ),
            False,
        ),
        (MODE_STRICT, True),
        (PROFILE_MEDICAL, True),
        (PROFILE_FINANCIAL, True),
        (PROFILE_PUBLIC_FACING, True),
        (parse_policy("default-src context"), True),
        (parse_policy("default-src 'none'"), True),
        (parse_policy("require-entailment 0.1"), True),
        (parse_policy("block-parametric"), True),
        (parse_policy("max-repetition SIGNIFICANT"), True),
        (parse_policy("oversight human-review"), True),
        (parse_policy("require-oversight halt"), True),
    ],
)
def test_can_halt(policy: SafetyPolicy, halts: bool) -> None:
    assert can_halt(policy) is halts


def test_request_and_response_halts() -> None:
    policy = parse_policy("block-pii")
    assert request_halt_checks(policy) == {
        HaltCheck.PROMPT_PII,
        HaltCheck.PROMPT_INJECTION,
    }
    assert response_halt_checks(policy) == {HaltCheck.RESPONSE_PII}
    assert not halts_unconditionally(policy)
    assert halt_checks(MODE_STRICT) == {
        HaltCheck.RISK,
        HaltCheck.GROUNDING,
        HaltCheck.UNGROUNDED_CLAIM,
        HaltCheck.PROMPT_INJECTION,
    }
    assert (
        halt_checks(MODE_WARN) == frozenset()
    )  # no blocking policy, no injection halt


@pytest.mark.parametrize(
    ("text", "buffer"),
    [
        ("warn-on MEDIUM", False),
        ("default-src 'none'", False),
        ("halt-on CRITICAL", True),
        ("block-fabrication", True),
        ("require-flow 0.5", True),
        ("require-completeness 0.5", True),
        ("upgrade-on-risk hierarchical", True),
    ],
)
def test_needs_buffering(text: str, buffer: bool) -> None:
    assert needs_buffering(parse_policy(text)) is buffer


@pytest.mark.parametrize(
    ("text", "risk", "upgraded", "action"),
    [
        ("halt-on CRITICAL; warn-on HIGH", RiskLevel.CRITICAL, False, RiskAction.HALT),
        ("halt-on CRITICAL; warn-on HIGH", RiskLevel.HIGH, False, RiskAction.WARN),
        ("halt-on CRITICAL; warn-on HIGH", RiskLevel.MEDIUM, False, RiskAction.PASS),
        ("halt-on CRITICAL; warn-on HIGH", RiskLevel.LOW, False, RiskAction.PASS),
        ("profile=financial", RiskLevel.HIGH, False, RiskAction.REDISPATCH),
        ("profile=financial", RiskLevel.HIGH, True, RiskAction.WARN),
        ("profile=financial", RiskLevel.CRITICAL, True, RiskAction.HALT),
        ("upgrade-on-risk batch", RiskLevel.HIGH, True, RiskAction.WARN),
        ("upgrade-on-risk batch", RiskLevel.MEDIUM, False, RiskAction.PASS),
        ("oversight halt", RiskLevel.CRITICAL, False, RiskAction.HALT),
        ("oversight halt", RiskLevel.HIGH, False, RiskAction.PASS),
        ("oversight human-review", RiskLevel.HIGH, False, RiskAction.HOLD),
        (
            "oversight log-only; halt-on MEDIUM",
            RiskLevel.MEDIUM,
            False,
            RiskAction.HALT,
        ),
    ],
)
def test_risk_action(
    text: str, risk: RiskLevel, upgraded: bool, action: RiskAction
) -> None:
    assert risk_action(parse_policy(text), risk, upgraded=upgraded) is action
