"""SPEC-007 session tokens, the new-session rule and the safety budget.

Digest references: §5.1 (new-session triggers, ids), §5.2 (wire format and
fields), §5.3 (signing, validation order and statuses, key rotation), §5.4
(keys), §4 (status table), §1.2 items 29, 42, 44, 45, 52, 53.

Wire format (G11: SPEC-007 exactly)::

    payload_b64 = b64url(UTF-8(compact JSON, fields in the §5.2 order))
    sig         = HMAC-SHA256(session_signing_key, HEADER_B64 + "." + payload_b64)
    token       = payload_b64 + "." + b64url(sig)

base64url is unpadded; ``HEADER_B64`` (``{"alg":"HS256","typ":"CRP"}``) is
implicit and never sent. The payload part is at most 4096 characters.

Validation runs in the 007§5 order; each failure is a `TokenError` subclass
carrying its HTTP status (§5.3):

1. shape: missing part, oversize, characters outside base64url -> 400
   (`MalformedToken`, `TokenTooLarge`);
2. signature, compared in constant time, with the key chosen by ``kv`` or
   each key of the `KeyRing` in turn -> 401 (`InvalidSignature`). A payload
   whose ``sid`` cannot be read cannot be verified, so it is 401 too: any
   flipped base64url character gives 401. A *signed* payload that breaks the
   schema is 400;
3. ``now > exp`` -> 401 + ``CRP-Safety-Retry-After: 0`` (`TokenExpired`);
4. ``ct`` against the tip stored for ``(sid, cid)`` -> 409 (`StaleChainTip`).
   G12: tips are kept per continuation point, not per session (`tip_key`);
   G13: ``ct`` is the window HMAC itself. No stored tip, or a request
   ``CRP-Context-Continuation-Id`` other than ``cid`` (004§17.3), is also 409:
   the token does not point at a live continuation point;
5. ``scope`` against the calling API key's opaque id (G33) -> 403
   (`ScopeMismatch`; G31);
6. a request policy whose hash differs from ``pol`` must be strictly tighter
   than the session policy (006§5 via `relaxations`); directives without a
   strictness order (``report-uri``, ``report-to``, ``upgrade-on-risk``) the
   session states must be unchanged -> 403 (`PolicyNotTighter`). ``pol = ""``
   means the empty policy (as in the §5.8 vector);
7. nonce, only when the request sends ``CRP-Safety-Nonce``: it must equal the
   token's, and a nonce is bound to the token's policy hash, so presenting it
   with another policy hash is 400 (§1.2 item 24; `NonceMismatch`).

Steps 1-3 are `open_token`, steps 4-7 `check_token` (so the lead can load the
stored tip and session policy, which need ``sid``/``cid``, in between), and
`validate_token` runs all seven.

G14 (`new_session_reason`): a new session when the token **or** the
continuation id is missing, when the window reached the maximum depth (or the
token has no ``cid``), when the budget is spent (<= 0), or on
``CRP-Session-Action: terminate``. An *expired* token is not silently turned
into a new session: it is 401 + Retry-After 0 (007§5.2, 004§16.2), which tells
the client to start one.

G15 (`budget_action`, `next_budget`): the 012§2.3 table, > 0.50 proceed,
0.25-0.50 caution, 0.10-0.25 (exclusive) human-review, <= 0.10 halt (451,
``SAFETY_BUDGET_DEPLETED``), <= 0 terminated; decrements per risk level are
configurable within the G15 ranges and the budget never rises (§1.2 item 29).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from types import MappingProxyType
from typing import ClassVar

from crp_gateway.audit.ids import CONTINUATION_ID, SESSION_ID
from crp_gateway.audit.keys import session_signing_key
from crp_gateway.governance.policy import (
    Relaxation,
    RiskLevel,
    SafetyPolicy,
    policy_hash,
    relaxations,
)

__all__ = [
    "DEFAULT_LIFETIME",
    "EMPTY_POLICY_HASH",
    "HEADER_B64",
    "MAX_PAYLOAD_B64",
    "PROTOCOL_VERSION",
    "BudgetAction",
    "BudgetDecrements",
    "Continuation",
    "DagShape",
    "InvalidSignature",
    "KeyRing",
    "MalformedToken",
    "NewSessionReason",
    "NonceMismatch",
    "PolicyNotTighter",
    "ScopeMismatch",
    "SessionToken",
    "StaleChainTip",
    "TokenError",
    "TokenExpired",
    "TokenTooLarge",
    "budget_action",
    "check_token",
    "new_session_reason",
    "next_budget",
    "open_token",
    "set_session_header",
    "sign_token",
    "tip_key",
    "validate_token",
]

PROTOCOL_VERSION = "3.0.0"
DEFAULT_LIFETIME = 3600  # seconds (007§2)
MAX_PAYLOAD_B64 = 4096  # characters of the encoded payload (007§2.4)
_SIGNATURE_B64 = 43  # unpadded base64url of 32 bytes
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_HASH = re.compile(r"sha256:[0-9a-f]{64}")
_TIERS = frozenset({"S", "A", "B", "C", "D", "N/A"})  # N/A in zero-CKF (G2)
_TEXT = re.compile(r"[!-~]{1,256}")  # printable ASCII, no spaces
RETRY_AFTER = "CRP-Safety-Retry-After"


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """Strict unpadded base64url: None unless ``text`` is the canonical encoding."""
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return data if _b64encode(data) == text else None


HEADER_B64 = _b64encode(b'{"alg":"HS256","typ":"CRP"}')
EMPTY_POLICY_HASH = policy_hash(SafetyPolicy())


# --- errors -------------------------------------------------------------------------


class TokenError(Exception):
    """A rejected session token; ``status`` is the HTTP status (§5.3, §4).

    Messages never contain the token (007§9.1: full tokens are not logged).
    """

    status: ClassVar[int] = 400
    code: ClassVar[str] = "invalid_session_token"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)

    @property
    def headers(self) -> Mapping[str, str]:
        """Extra response headers for this rejection."""
        return {}


class MalformedToken(TokenError):
    """Step 1, or a signed payload that breaks the schema: 400."""

    code = "malformed_session_token"


class TokenTooLarge(MalformedToken):
    """The encoded payload exceeds 4096 characters (007§2.4): 400."""

    code = "session_token_too_large"


class InvalidSignature(TokenError):
    """Step 2: modified, forged or signed with an unknown key: 401."""

    status = 401
    code = "invalid_session_token"


class TokenExpired(TokenError):
    """Step 3: ``now > exp``: 401 with ``CRP-Safety-Retry-After: 0``."""

    status = 401
    code = "session_token_expired"

    @property
    def headers(self) -> Mapping[str, str]:
        return {RETRY_AFTER: "0"}


class StaleChainTip(TokenError):
    """Step 4: the token is not the newest for its continuation point: 409."""

    status = 409
    code = "stale_chain_tip"


class ScopeMismatch(TokenError):
    """Step 5: another API key created the session: 403 (G31)."""

    status = 403
    code = "session_scope_mismatch"


class PolicyNotTighter(TokenError):
    """Step 6: the request policy is not strictly tighter than ``pol``: 403."""

    status = 403
    code = "safety_policy_not_tighter"

    def __init__(self, message: str, found: tuple[Relaxation, ...] = ()) -> None:
        super().__init__(message)
        self.relaxations = found


class NonceMismatch(TokenError):
    """Step 7: wrong nonce, or the nonce with another policy hash: 400."""

    code = "safety_nonce_mismatch"


# --- the payload -------------------------------------------------------------------


class DagShape(StrEnum):
    """``dag`` values (§5.2)."""

    LINEAR = "LINEAR"
    FAN_OUT = "FAN_OUT"
    FAN_IN = "FAN_IN"


@dataclass(frozen=True, kw_only=True)
class SessionToken:
    """The decoded payload; wire names in brackets (§5.2).

    ``continuation_id`` is ``""`` when the session is complete (N = M, 004§11.4).
    ``policy_hash``/``ckf_hash`` may be ``""`` (no policy / no CKF state).
    """

    session_id: str  # sid
    window: int  # win
    quality_history: tuple[str, ...]  # qh
    safety_budget: float  # sb
    chain_tip: str  # ct (G13: the window HMAC itself)
    continuation_id: str  # cid
    dag: DagShape  # dag
    strategy: str  # str
    policy_hash: str  # pol
    ckf_hash: str  # ckf
    scope: str  # scope (G33: opaque API key id)
    issued_at: int  # iat
    expires_at: int  # exp
    nonce: str  # nonce
    key_version: int | None = None  # kv
    version: str = PROTOCOL_VERSION  # v

    def __post_init__(self) -> None:
        problem = _token_problem(self)
        if problem:
            raise ValueError(problem)

    def to_payload(self) -> dict[str, object]:
        """The JSON object in the §5.2 field order (``kv`` only when set)."""
        payload: dict[str, object] = {
            "v": self.version,
            "sid": self.session_id,
            "win": self.window,
            "qh": list(self.quality_history),
            "sb": float(self.safety_budget),
            "ct": self.chain_tip,
            "cid": self.continuation_id,
            "dag": self.dag.value,
            "str": self.strategy,
            "pol": self.policy_hash,
            "ckf": self.ckf_hash,
            "scope": self.scope,
            "iat": self.issued_at,
            "exp": self.expires_at,
            "nonce": self.nonce,
        }
        if self.key_version is not None:
            payload["kv"] = self.key_version
        return payload


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional_hash(value: str) -> bool:
    return value == "" or _HASH.fullmatch(value) is not None


def _identity_problem(token: SessionToken) -> str | None:
    if token.version != PROTOCOL_VERSION:
        return "unsupported token version"
    if not SESSION_ID.fullmatch(token.session_id):
        return "sid is not a crp_sess_ id"
    if token.continuation_id and not CONTINUATION_ID.fullmatch(token.continuation_id):
        return "cid is not a crp_cont_ id"
    if not _TEXT.fullmatch(token.scope) or not _TEXT.fullmatch(token.strategy):
        return "scope and str must be printable ASCII"
    if token.nonce and not _TEXT.fullmatch(token.nonce):
        return "nonce must be printable ASCII"
    return None


def _state_problem(token: SessionToken) -> str | None:
    if not _is_int(token.window) or token.window < 1:
        return "win must be an integer >= 1"
    if any(tier not in _TIERS for tier in token.quality_history):
        return "qh holds an unknown tier"
    budget = token.safety_budget
    if isinstance(budget, bool) or not math.isfinite(budget) or not 0 <= budget <= 1:
        return "sb must be a number in [0, 1]"
    if not _HASH.fullmatch(token.chain_tip):
        return "ct must be a sha256: HMAC"
    if not (_optional_hash(token.policy_hash) and _optional_hash(token.ckf_hash)):
        return "pol and ckf must be empty or sha256: hashes"
    return None


def _time_problem(token: SessionToken) -> str | None:
    if not (_is_int(token.issued_at) and _is_int(token.expires_at)):
        return "iat and exp must be integers"
    if not 0 <= token.issued_at <= token.expires_at:
        return "need 0 <= iat <= exp"
    if token.key_version is not None and (
        not _is_int(token.key_version) or token.key_version < 0
    ):
        return "kv must be a non-negative integer"
    return None


def _token_problem(token: SessionToken) -> str | None:
    return _identity_problem(token) or _state_problem(token) or _time_problem(token)


_WIRE_FIELDS = frozenset(
    {"v", "sid", "win", "qh", "sb", "ct", "cid", "dag", "str", "pol", "ckf"}
    | {"scope", "iat", "exp", "nonce", "kv"}
)


def _from_payload(data: dict[str, object]) -> SessionToken:
    """The token a verified payload describes; `MalformedToken` if it cannot."""
    if not set(data) <= _WIRE_FIELDS or not _WIRE_FIELDS - {"kv"} <= set(data):
        raise MalformedToken("token payload has missing or unknown fields")
    qh, sb, dag = data["qh"], data["sb"], data["dag"]
    strings = ("v", "sid", "ct", "cid", "str", "pol", "ckf", "scope", "nonce")
    if not (
        all(isinstance(data[name], str) for name in strings)
        and isinstance(qh, list)
        and all(isinstance(tier, str) for tier in qh)
        and isinstance(sb, int | float)
        and not isinstance(sb, bool)
        and dag in set(DagShape)
    ):
        raise MalformedToken("token payload field of the wrong type")
    try:
        return SessionToken(
            version=str(data["v"]),
            session_id=str(data["sid"]),
            window=data["win"],  # type: ignore[arg-type]  # checked in __post_init__
            quality_history=tuple(str(tier) for tier in qh),
            safety_budget=float(sb),
            chain_tip=str(data["ct"]),
            continuation_id=str(data["cid"]),
            dag=DagShape(str(dag)),
            strategy=str(data["str"]),
            policy_hash=str(data["pol"]),
            ckf_hash=str(data["ckf"]),
            scope=str(data["scope"]),
            issued_at=data["iat"],  # type: ignore[arg-type]
            expires_at=data["exp"],  # type: ignore[arg-type]
            nonce=str(data["nonce"]),
            key_version=data.get("kv"),  # type: ignore[arg-type]
        )
    except (TypeError, ValueError) as exc:
        raise MalformedToken(f"token payload is invalid: {exc}") from None


def tip_key(token: SessionToken) -> tuple[str, str]:
    """``(sid, cid)``: where the chain tip ``ct`` is stored and checked (G12)."""
    return token.session_id, token.continuation_id


# --- keys and signing ----------------------------------------------------------------


@dataclass(frozen=True)
class KeyRing:
    """A tenant's master keys by version, for rotation (007§6).

    ``current`` signs; every key in ``keys`` verifies (keep the old one until
    the tokens it signed have expired, 1 h). Tokens carry ``kv``, so the key is
    selected directly; a token without ``kv`` is tried against each key.
    """

    keys: tuple[tuple[int, bytes], ...]
    current: int

    def __post_init__(self) -> None:
        versions = [version for version, _ in self.keys]
        if len(set(versions)) != len(versions) or self.current not in versions:
            raise ValueError("key versions must be unique and include current")

    @classmethod
    def single(cls, master_key: bytes, version: int = 1) -> KeyRing:
        """A ring with one key."""
        return cls(((version, master_key),), version)

    def candidates(self, version: int | None) -> tuple[bytes, ...]:
        """The master keys that may have signed a token with this ``kv``."""
        if version is None:
            return tuple(key for _, key in self.keys)
        return tuple(key for v, key in self.keys if v == version)

    def sign(self, token: SessionToken) -> str:
        """Sign with the current key, recording its version in ``kv``."""
        master = self.candidates(self.current)[0]
        return sign_token(replace(token, key_version=self.current), master)


def _signature(master_key: bytes, session_id: str, payload_b64: str) -> bytes:
    key = session_signing_key(master_key, session_id)
    message = f"{HEADER_B64}.{payload_b64}".encode("ascii")
    return hmac.new(key, message, hashlib.sha256).digest()


def sign_token(token: SessionToken, master_key: bytes) -> str:
    """``payload_b64.sig_b64`` (§5.3); ValueError if the payload is too large."""
    body = json.dumps(token.to_payload(), separators=(",", ":"), allow_nan=False)
    payload_b64 = _b64encode(body.encode("utf-8"))
    if len(payload_b64) > MAX_PAYLOAD_B64:
        raise ValueError("the encoded token payload exceeds 4096 bytes")
    signature = _signature(master_key, token.session_id, payload_b64)
    return f"{payload_b64}.{_b64encode(signature)}"


def set_session_header(token: str, payload: SessionToken) -> str:
    """The ``CRP-Set-Session`` value of §5.2 for a signed ``token``."""
    parts = [
        f"token={token}",
        "Path=/",
        f"Max-Age={payload.expires_at - payload.issued_at}",
        "Signed",
        "SameSite=Strict",
        f"Window={payload.window}",
    ]
    if payload.quality_history:
        parts.append("QualityHistory=" + ",".join(payload.quality_history))
    return "; ".join(parts)


# --- validation steps 1-3 -------------------------------------------------------------


def _split(raw: str) -> tuple[str, str]:
    """Step 1: the two parts, or `MalformedToken` / `TokenTooLarge`."""
    if len(raw) > MAX_PAYLOAD_B64 + 1 + _SIGNATURE_B64:
        raise TokenTooLarge("session token too large")
    payload_b64, dot, sig_b64 = raw.partition(".")
    if not dot or not payload_b64 or not sig_b64:
        raise MalformedToken("session token needs payload.signature")
    if len(payload_b64) > MAX_PAYLOAD_B64:
        raise TokenTooLarge("session token payload exceeds 4096 bytes")
    if not (_B64URL.fullmatch(payload_b64) and _B64URL.fullmatch(sig_b64)):
        raise MalformedToken("session token is not base64url")
    return payload_b64, sig_b64


def _unverified_payload(payload_b64: str) -> dict[str, object]:
    """The payload JSON, read only to find ``sid``/``kv`` (401 if unreadable)."""
    raw = _b64decode(payload_b64)
    try:
        data = json.loads(raw.decode("utf-8")) if raw is not None else None
    except (UnicodeDecodeError, ValueError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("sid"), str):
        raise InvalidSignature("session token signature does not verify")
    if not SESSION_ID.fullmatch(data["sid"]):
        raise InvalidSignature("session token signature does not verify")
    return data


def _verify_signature(
    payload_b64: str, sig_b64: str, ring: KeyRing
) -> dict[str, object]:
    """Step 2: constant-time comparison against each candidate key."""
    data = _unverified_payload(payload_b64)
    signature = _b64decode(sig_b64)
    version = data.get("kv")
    if signature is None or (version is not None and not _is_int(version)):
        raise InvalidSignature("session token signature does not verify")
    sid = str(data["sid"])
    kv = version if isinstance(version, int) else None
    matches = [
        hmac.compare_digest(_signature(master, sid, payload_b64), signature)
        for master in ring.candidates(kv)
    ]
    if not any(matches):
        raise InvalidSignature("session token signature does not verify")
    return data


def open_token(raw: str, ring: KeyRing, *, now: int) -> SessionToken:
    """Validation steps 1-3: shape (400), signature (401), expiry (401)."""
    payload_b64, sig_b64 = _split(raw)
    token = _from_payload(_verify_signature(payload_b64, sig_b64, ring))
    if now > token.expires_at:
        raise TokenExpired("session token expired")
    return token


# --- validation steps 4-7 -------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Continuation:
    """What a continuation request is checked against (steps 3-7).

    ``stored_tip``: the tip stored under `tip_key` (None: none stored).
    ``continuation_id``: the request's ``CRP-Context-Continuation-Id``.
    ``scope``: the calling API key's opaque id (G33).
    ``policy``: the request's effective policy; ``session_policy``: the policy
    the token's ``pol`` names, as stored (None if unknown).
    ``nonce``: the request's ``CRP-Safety-Nonce``, if sent.
    """

    now: int
    stored_tip: str | None
    continuation_id: str | None
    scope: str
    policy: SafetyPolicy
    session_policy: SafetyPolicy | None = None
    nonce: str | None = None


def _same(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode("utf-8"), right.encode("utf-8"))


def _token_policy_hash(token: SessionToken) -> str:
    return token.policy_hash or EMPTY_POLICY_HASH


def _check_tip(token: SessionToken, request: Continuation) -> None:
    if request.continuation_id is not None and not _same(
        request.continuation_id, token.continuation_id
    ):
        raise StaleChainTip("continuation id is not the token's")
    if request.stored_tip is None or not _same(request.stored_tip, token.chain_tip):
        raise StaleChainTip("session token chain tip is stale")


_UNORDERED = ("report_uri", "report_to", "upgrade_on_risk")


def _check_policy(token: SessionToken, request: Continuation) -> None:
    pol = _token_policy_hash(token)
    if _same(policy_hash(request.policy), pol):
        return
    base = SafetyPolicy() if not token.policy_hash else request.session_policy
    if base is None or not _same(policy_hash(base), pol):
        raise PolicyNotTighter("the session's policy is unknown; it cannot change")
    found = relaxations(base, request.policy)
    if found:
        raise PolicyNotTighter("policy is looser than the session's", found)
    for name in _UNORDERED:
        stated = getattr(base, name)
        if stated is not None and stated != getattr(request.policy, name):
            raise PolicyNotTighter(f"policy changes {name.replace('_', '-')}")


def _check_nonce(token: SessionToken, request: Continuation) -> None:
    if request.nonce is None:
        return
    if not _same(request.nonce, token.nonce):
        raise NonceMismatch("safety nonce mismatch")
    if not _same(policy_hash(request.policy), _token_policy_hash(token)):
        raise NonceMismatch("safety nonce is bound to another policy hash")


def check_token(token: SessionToken, request: Continuation) -> None:
    """Validation steps 4-7 on an opened token: 409, 403, 403, 400."""
    _check_tip(token, request)
    if not _same(token.scope, request.scope):
        raise ScopeMismatch("session belongs to another API key")
    _check_policy(token, request)
    _check_nonce(token, request)


def validate_token(raw: str, ring: KeyRing, request: Continuation) -> SessionToken:
    """All seven steps of 007§5, in order; the verified token."""
    token = open_token(raw, ring, now=request.now)
    check_token(token, request)
    return token


# --- new sessions (G14) and the safety budget (G15) ----------------------------


class NewSessionReason(StrEnum):
    """Why a request starts a new session (§5.1, G14)."""

    NO_TOKEN = "no-token"  # noqa: S105 - a reason code
    NO_CONTINUATION_ID = "no-continuation-id"
    MAX_DEPTH = "max-depth"
    BUDGET_DEPLETED = "budget-depleted"
    TERMINATE = "terminate"


def new_session_reason(
    token: SessionToken | None,
    continuation_id: str | None,
    *,
    max_windows: int,
    terminate: bool = False,
) -> NewSessionReason | None:
    """None to continue ``token``'s session, else why a new one starts (G14).

    ``token`` is the *validated* token (`validate_token`), or None when the
    request carries none; ``terminate`` is ``CRP-Session-Action: terminate``.
    """
    if token is None:
        return NewSessionReason.NO_TOKEN
    if not continuation_id:
        return NewSessionReason.NO_CONTINUATION_ID
    if terminate:
        return NewSessionReason.TERMINATE
    if not token.continuation_id or token.window >= max_windows:
        return NewSessionReason.MAX_DEPTH
    if token.safety_budget <= 0:
        return NewSessionReason.BUDGET_DEPLETED
    return None


class BudgetAction(StrEnum):
    """What a safety budget calls for (012§2.3 table, G15)."""

    PROCEED = "proceed"
    CAUTION = "caution"
    HUMAN_REVIEW = "human-review"
    HALT = "halt"  # 451 SAFETY_BUDGET_DEPLETED, retry new-session-required
    TERMINATED = "terminated"


def budget_action(budget: float) -> BudgetAction:
    """> 0.50 proceed; 0.25-0.50 caution; (0.10, 0.25) human-review;
    (0, 0.10] halt; <= 0 terminated (G15; 014 TV-050, TV-051)."""
    if budget <= 0:
        return BudgetAction.TERMINATED
    if budget <= 0.10:
        return BudgetAction.HALT
    if budget < 0.25:
        return BudgetAction.HUMAN_REVIEW
    if budget <= 0.50:
        return BudgetAction.CAUTION
    return BudgetAction.PROCEED


_DECREMENT_RANGES: Mapping[RiskLevel, tuple[float, float]] = MappingProxyType(
    {
        RiskLevel.LOW: (0.0, 0.05),
        RiskLevel.MEDIUM: (0.02, 0.10),
        RiskLevel.HIGH: (0.10, 0.25),
        RiskLevel.CRITICAL: (0.25, 0.50),
    }
)


@dataclass(frozen=True)
class BudgetDecrements:
    """Per-risk-level decrements, each within its G15 range (defaults ours)."""

    low: float = 0.01
    medium: float = 0.05
    high: float = 0.15
    critical: float = 0.35

    def __post_init__(self) -> None:
        for level, (low, high) in _DECREMENT_RANGES.items():
            if not low <= self.of(level) <= high:
                raise ValueError(f"{level.value} decrement must be in [{low}, {high}]")

    def of(self, level: RiskLevel) -> float:
        """The decrement for one call of this risk level."""
        value: float = getattr(self, level.value.lower())
        return value


def next_budget(
    budget: float, risk: RiskLevel | None, decrements: BudgetDecrements
) -> float:
    """The budget after a call: lowered by the call's risk, floored at 0,
    rounded to 4 places, never above the budget received (§1.2 item 29)."""
    spent = decrements.of(risk) if risk is not None else 0.0
    return min(budget, max(0.0, round(budget - spent, 4)))
