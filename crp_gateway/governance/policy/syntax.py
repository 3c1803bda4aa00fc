"""Parsing and canonical serialisation of `CRP-Safety-Policy` strings."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from types import MappingProxyType

from crp_gateway.governance.policy.builtins import parse_profile, profile_policy
from crp_gateway.governance.policy.combine import combine
from crp_gateway.governance.policy.model import (
    OversightMode,
    PolicyError,
    Profile,
    RepetitionLevel,
    RiskLevel,
    SafetyPolicy,
    Source,
    Tier,
    UpgradeStrategy,
)

__all__ = ["directive_texts", "format_policy", "parse_policy", "policy_hash"]

_OWS = re.compile(r"[ \t]+")
_PRINTABLE = re.compile(r"[\x20-\x7e\t]*")
_THRESHOLD = re.compile(r"[0-9]+\.[0-9]{1,2}")
_PROFILE = re.compile(r"profile[ \t]*=[ \t]*(?P<name>[!-~]*)", re.IGNORECASE)
_LEADING_NAME = re.compile(r"[!-~]*")
_NONE_SOURCE = "'none'"

_Handler = Callable[[str, list[str]], SafetyPolicy]


# --------------------------------------------------------------------------- parse


def parse_policy(
    text: str,
    *,
    report_groups: Collection[str] = (),
    allow_internal: bool = False,
) -> SafetyPolicy:
    """Parse a `CRP-Safety-Policy` (or `-Report-Only`) value.

    `report_groups` are the `report-to` groups configured for the tenant (G17:
    any other group is rejected). `allow_internal` admits `warn-ungrounded`,
    which only the gateway itself writes (zero-CKF adjustment); clients may not.
    Raises `PolicyError` naming the offending directive.
    """
    pieces = [piece.strip(" \t") for piece in text.split(";")]
    pieces = [piece for piece in pieces if piece]  # P14: empty directives ignored
    policy, profile = _leading_profile(pieces)
    groups = frozenset(group.lower() for group in report_groups)
    for piece in pieces[1:] if profile else pieces:
        policy = combine(policy, _parse_directive(piece, groups, allow_internal))
    return policy if profile is None else _with_profile(policy, profile)


def _leading_profile(pieces: Sequence[str]) -> tuple[SafetyPolicy, Profile | None]:
    """The expansion of a leading `profile=<name>`, else the empty policy."""
    if not pieces or _first_word(pieces[0].split("=", 1)[0]) != "profile":
        return SafetyPolicy(), None
    match = _PROFILE.fullmatch(pieces[0])
    if match is None:
        raise PolicyError("profile", "expected profile=<name> with a single name")
    profile = parse_profile(match["name"])
    return profile_policy(profile), profile


def _first_word(piece: str) -> str:
    """The leading run of visible ASCII characters, lower-cased."""
    match = _LEADING_NAME.match(piece)
    return match[0].lower() if match else ""


def _with_profile(policy: SafetyPolicy, profile: Profile) -> SafetyPolicy:
    return replace(policy, profile=profile)


def _parse_directive(
    piece: str, groups: frozenset[str], allow_internal: bool
) -> SafetyPolicy:
    if not _PRINTABLE.fullmatch(piece):
        raise PolicyError(
            _first_word(piece) or None,
            f"contains a non-printable or non-ASCII character: {piece!r}",
        )
    name, *args = _OWS.split(piece)
    name = name.lower()
    if name == "report-to":
        return _report_to(name, args, groups)
    if name == "warn-ungrounded" and allow_internal:
        return _warn_ungrounded(name, args)
    handler = _HANDLERS.get(name)
    if handler is None:
        raise PolicyError(name, _unknown_message(name))
    return handler(name, args)


def _unknown_message(name: str) -> str:
    if name.startswith("profile"):
        return "profile=<name> is only allowed as the first directive"
    if name == "warn-ungrounded":
        return "warn-ungrounded is gateway-internal and not accepted from clients"
    return f"unknown directive {name!r}"


def _single(name: str, args: list[str], what: str) -> str:
    if len(args) != 1:
        raise PolicyError(name, f"expects exactly one {what}, got {len(args)}")
    return args[0]


def _no_argument(name: str, args: list[str]) -> bool:
    if args:
        raise PolicyError(name, f"takes no argument, got {' '.join(args)!r}")
    return True


def _sources(name: str, args: list[str]) -> frozenset[Source]:
    if not args:
        raise PolicyError(name, "expects at least one source")
    tokens = {arg.lower() for arg in args}
    if _NONE_SOURCE in tokens:
        if len(tokens) > 1:
            raise PolicyError(name, "'none' cannot be combined with other sources")
        return frozenset()
    return frozenset(Source.from_token(token, name) for token in tokens)


def _risk(name: str, args: list[str]) -> RiskLevel:
    level = RiskLevel.from_token(_single(name, args, "risk level"), name)
    if level is RiskLevel.LOW:
        raise PolicyError(name, "LOW is not a valid level (MEDIUM, HIGH, CRITICAL)")
    return level


def _threshold(name: str, args: list[str]) -> float:
    token = _single(name, args, "threshold")
    if not _THRESHOLD.fullmatch(token):
        raise PolicyError(name, f"threshold {token!r} must look like 0.8 or 0.75")
    value = float(token)
    if value > 1.0:
        raise PolicyError(name, f"threshold {token} is outside 0.00-1.00")
    return value


def _tiers(name: str, args: list[str]) -> frozenset[Tier]:
    if not args:
        raise PolicyError(name, "expects at least one tier")
    return frozenset(Tier.from_token(arg, name) for arg in args)


def _oversight(name: str, args: list[str]) -> OversightMode:
    return OversightMode.from_token(_single(name, args, "oversight mode"), name)


def _max_repetition(name: str, args: list[str]) -> RepetitionLevel:
    level = RepetitionLevel.from_token(_single(name, args, "repetition level"), name)
    if level is RepetitionLevel.SEVERE:
        raise PolicyError(
            name, "SEVERE is not a valid limit (NONE, MINOR, SIGNIFICANT)"
        )
    return level


def _upgrade(name: str, args: list[str]) -> UpgradeStrategy:
    return UpgradeStrategy.from_token(_single(name, args, "strategy"), name)


def _report_uri(name: str, args: list[str]) -> SafetyPolicy:
    return SafetyPolicy(report_uri=_single(name, args, "URI"))


def _report_to(name: str, args: list[str], groups: frozenset[str]) -> SafetyPolicy:
    group = _single(name, args, "group name").lower()
    policy = SafetyPolicy(report_to=group)  # validates the token syntax first
    if group not in groups:
        raise PolicyError(name, f"report group {group!r} is not configured")
    return policy


def _warn_ungrounded(name: str, args: list[str]) -> SafetyPolicy:
    return SafetyPolicy(warn_ungrounded=_no_argument(name, args))


_HANDLERS: MappingProxyType[str, _Handler] = MappingProxyType(
    {
        "default-src": lambda n, a: SafetyPolicy(default_src=_sources(n, a)),
        "halt-on": lambda n, a: SafetyPolicy(halt_on=_risk(n, a)),
        "warn-on": lambda n, a: SafetyPolicy(warn_on=_risk(n, a)),
        "require-grounding": lambda n, a: SafetyPolicy(
            require_grounding=_threshold(n, a)
        ),
        "require-entailment": lambda n, a: SafetyPolicy(
            require_entailment=_threshold(n, a)
        ),
        "require-flow": lambda n, a: SafetyPolicy(require_flow=_threshold(n, a)),
        "require-completeness": lambda n, a: SafetyPolicy(
            require_completeness=_threshold(n, a)
        ),
        "require-quality": lambda n, a: SafetyPolicy(require_quality=_tiers(n, a)),
        "require-oversight": lambda n, a: SafetyPolicy(
            require_oversight=_oversight(n, a)
        ),
        "oversight": lambda n, a: SafetyPolicy(oversight=_oversight(n, a)),
        "block-ungrounded": lambda n, a: SafetyPolicy(
            block_ungrounded=_no_argument(n, a)
        ),
        "block-parametric": lambda n, a: SafetyPolicy(
            block_parametric=_no_argument(n, a)
        ),
        "block-pii": lambda n, a: SafetyPolicy(block_pii=_no_argument(n, a)),
        "block-fabrication": lambda n, a: SafetyPolicy(
            block_fabrication=_no_argument(n, a)
        ),
        "block-repetition": lambda n, a: SafetyPolicy(
            block_repetition=_no_argument(n, a)
        ),
        "max-repetition": lambda n, a: SafetyPolicy(
            max_repetition=_max_repetition(n, a)
        ),
        "upgrade-on-risk": lambda n, a: SafetyPolicy(upgrade_on_risk=_upgrade(n, a)),
        "report-uri": _report_uri,
    }
)


# -------------------------------------------------------------------------- format


def _ordered(members: frozenset[Source] | frozenset[Tier]) -> str:
    return " ".join(member.value for member in sorted(members, key=lambda m: m.rank))


def _sources_text(policy: SafetyPolicy) -> str | None:
    if policy.default_src is None:
        return None
    return _NONE_SOURCE if not policy.default_src else _ordered(policy.default_src)


def _value(value: object) -> str | None:
    if value is None or value is False:
        return None
    if value is True:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, frozenset):
        return _ordered(value)
    return str(value)


def directive_texts(policy: SafetyPolicy) -> dict[str, str]:
    """Present directives in canonical order, name -> full directive text."""
    arguments: dict[str, str | None] = {
        "default-src": _sources_text(policy),
        "halt-on": _value(policy.halt_on),
        "warn-on": _value(policy.warn_on),
        "require-grounding": _value(policy.require_grounding),
        "require-entailment": _value(policy.require_entailment),
        "require-flow": _value(policy.require_flow),
        "require-completeness": _value(policy.require_completeness),
        "require-quality": _value(policy.require_quality),
        "require-oversight": _value(policy.require_oversight),
        "oversight": _value(policy.oversight),
        "block-ungrounded": _value(policy.block_ungrounded),
        "block-parametric": _value(policy.block_parametric),
        "block-pii": _value(policy.block_pii),
        "block-fabrication": _value(policy.block_fabrication),
        "block-repetition": _value(policy.block_repetition),
        "warn-ungrounded": _value(policy.warn_ungrounded),
        "max-repetition": _value(policy.max_repetition),
        "upgrade-on-risk": _value(policy.upgrade_on_risk),
        "report-uri": _value(policy.report_uri),
        "report-to": _value(policy.report_to),
    }
    return {
        name: f"{name} {argument}" if argument else name
        for name, argument in arguments.items()
        if argument is not None
    }


def format_policy(policy: SafetyPolicy) -> str:
    """Canonical directive string, as sent in `CRP-Safety-Policy-Applied`.

    Directives appear in grammar order joined by `"; "`; enumerations use their
    wire case, set members their declaration order, thresholds two decimals.
    A policy with no directives formats as the empty string.
    """
    return "; ".join(directive_texts(policy).values())


def policy_hash(policy: SafetyPolicy) -> str:
    """`sha256:<64 hex>` over the canonical string (token field `pol`, 007§2)."""
    digest = hashlib.sha256(format_policy(policy).encode("ascii")).hexdigest()
    return f"sha256:{digest}"
