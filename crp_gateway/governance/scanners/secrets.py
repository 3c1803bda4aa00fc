"""Credential detector, method ``crp-gw.secrets/1``.

Provider key *shapes* (prefix, alphabet, length), each checked only when its
prefix occurs in the text:

* ``openai_api_key``: ``sk-`` / ``sk-proj-`` / ``sk-svcacct-`` / ``sk-admin-``
  and 20+ base64url characters mixing upper case, lower case and digits (so
  ``sk-learn-style-names`` do not match).
* ``anthropic_api_key``: ``sk-ant-`` and 20+ characters of the same mix.
* ``crp_gateway_key``: our own ``crp_gw_<16 base32>_<52 base32>``.
* ``aws_access_key_id``: ``AKIA`` / ``ASIA`` and 16 upper-case letters or digits.
* ``github_token``: ``ghp_`` / ``gho_`` / ``ghu_`` / ``ghs_`` / ``ghr_`` and 36
  alphanumerics; ``github_pat_`` and 60+ word characters.
* ``slack_token``: ``xoxb-`` / ``xoxp-`` / ``xoxa-`` / ``xoxr-`` / ``xoxs-`` /
  ``xoxe-`` / ``xapp-`` with a dashed body of 10+ characters containing digits.
* ``google_api_key``: ``AIza`` and 35 base64url characters.
* ``stripe_key``: ``sk_live_`` / ``sk_test_`` / ``rk_live_`` / ``rk_test_`` /
  ``whsec_`` and 16+ alphanumerics.
* ``private_key_block``: a PEM ``-----BEGIN ... PRIVATE KEY-----`` header, with
  its body and footer when present.
* ``jwt``: three base64url segments whose first decodes to a JSON header naming
  an ``alg``.

A finding is the kind and the span; the secret itself is never copied. It does
not detect passwords in prose, connection strings, generic high-entropy
strings, or keys of providers not listed.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence

from .findings import Finding, drop_overlaps

METHOD_ID = "crp-gw.secrets/1"
METHOD_VERSION = "1.0.0"

_KEY_CHARS = r"[A-Za-z0-9_-]"

# (kind, literals one of which must be present, pattern, tail must mix classes)
_SHAPES: tuple[tuple[str, tuple[str, ...], str, bool], ...] = (
    (
        "anthropic_api_key",
        ("sk-ant-",),
        rf"sk-ant-(?<![A-Za-z0-9_-]sk-ant-)(?P<tail>{_KEY_CHARS}{{20,}})",
        True,
    ),
    (
        "openai_api_key",
        ("sk-",),
        r"sk-(?<![A-Za-z0-9_-]sk-)(?!ant-)(?:proj-|svcacct-|admin-)?"
        rf"(?P<tail>{_KEY_CHARS}{{20,}})",
        True,
    ),
    (
        "crp_gateway_key",
        ("crp_gw_",),
        r"crp_gw_(?<![A-Za-z0-9]crp_gw_)[a-z2-7]{16}_[a-z2-7]{52}(?![A-Za-z0-9])",
        False,
    ),
    (
        "aws_access_key_id",
        ("AKIA", "ASIA"),
        r"A(?<![A-Za-z0-9]A)(?:KIA|SIA)[A-Z0-9]{16}(?![A-Za-z0-9])",
        False,
    ),
    (
        "github_token",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
        r"gh[pousr]_(?<![A-Za-z0-9]gh[pousr]_)[A-Za-z0-9]{36}(?![A-Za-z0-9])",
        False,
    ),
    (
        "github_token",
        ("github_pat_",),
        r"github_pat_(?<![A-Za-z0-9]github_pat_)[A-Za-z0-9_]{60,}",
        False,
    ),
    (
        "slack_token",
        ("xox", "xapp-"),
        r"x(?:ox[abprse]|app)-(?<![A-Za-z0-9]x...-)(?=[A-Za-z0-9-]*\d)"
        r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+){1,8}",
        False,
    ),
    (
        "google_api_key",
        ("AIza",),
        r"AIza(?<![A-Za-z0-9]AIza)[A-Za-z0-9_-]{35}(?![A-Za-z0-9_-])",
        False,
    ),
    (
        "stripe_key",
        ("k_live_", "k_test_", "whsec_"),
        r"(?:[sr]k_(?:live|test)|whsec)_[A-Za-z0-9]{16,}",
        False,
    ),
    (
        "private_key_block",
        ("-----BEGIN",),
        r"-----BEGIN (?P<label>(?:[A-Z0-9]+ )*)PRIVATE KEY-----"
        r"(?:[\s\S]{0,16384}?-----END (?P=label)PRIVATE KEY-----"
        r"|(?:\r?\n[A-Za-z0-9+/=:\- ]{1,128})*)",
        False,
    ),
    (
        "jwt",
        ("eyJ",),
        r"eyJ(?<![A-Za-z0-9_-]eyJ)[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
        r"\.[A-Za-z0-9_-]*",
        False,
    ),
)
_COMPILED: tuple[tuple[str, tuple[str, ...], re.Pattern[str], bool], ...] = tuple(
    (kind, literals, re.compile(pattern), mixed)
    for kind, literals, pattern, mixed in _SHAPES
)
KINDS: tuple[str, ...] = tuple(dict.fromkeys(kind for kind, *_ in _SHAPES))
_MIXED = (re.compile(r"[a-z]"), re.compile(r"[A-Z]"), re.compile(r"\d"))


def find_secrets(text: str, text_index: int = 0) -> tuple[Finding, ...]:
    """Every credential-shaped span in ``text``; never the credential itself."""
    candidates: list[Finding] = []
    for kind, literals, pattern, mixed in _COMPILED:
        if not any(literal in text for literal in literals):
            continue
        for match in pattern.finditer(text):
            if _accept(kind, match, mixed):
                candidates.append(Finding(kind, match.start(), match.end(), text_index))
    return drop_overlaps(candidates)


def scan_secrets(texts: Sequence[str]) -> tuple[Finding, ...]:
    """:func:`find_secrets` over several texts (``text_index`` set accordingly)."""
    return tuple(
        finding
        for index, text in enumerate(texts)
        for finding in find_secrets(text, index)
    )


def _accept(kind: str, match: re.Match[str], mixed: bool) -> bool:
    if mixed:
        tail = match.group("tail")
        if not all(cls.search(tail) for cls in _MIXED):
            return False
    if kind == "jwt":
        return _jwt_header_ok(match.group().split(".", 1)[0])
    return True


def _jwt_header_ok(segment: str) -> bool:
    padded = segment + "=" * (-len(segment) % 4)
    try:
        header = base64.urlsafe_b64decode(padded)
    except (binascii.Error, ValueError):
        return False
    return header.startswith(b"{") and b'"alg"' in header


def describe() -> dict[str, object]:
    """The method entry for the well-known document."""
    return {
        "version": METHOD_VERSION,
        "description": (
            "Provider key shapes (prefix, alphabet, length), PEM private key "
            "blocks and JWTs with a decodable header. Findings are kind and span "
            "only; the value is never copied."
        ),
        "kinds": list(KINDS),
    }
