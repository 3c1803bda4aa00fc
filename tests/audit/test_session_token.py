"""SPEC-007 session tokens (digest §5.2-5.3, §5.8, G12-G15, G33)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import string
from dataclasses import replace

import pytest

from crp_gateway.audit.keys import session_signing_key
from crp_gateway.audit.session_token import (
    HEADER_B64,
    BudgetAction,
    BudgetDecrements,
    Continuation,
    DagShape,
    InvalidSignature,
    KeyRing,
    MalformedToken,
    NewSessionReason,
    NonceMismatch,
    PolicyNotTighter,
    ScopeMismatch,
    SessionToken,
    StaleChainTip,
    TokenError,
    TokenExpired,
    TokenTooLarge,
    budget_action,
    check_token,
    new_session_reason,
    next_budget,
    open_token,
    set_session_header,
    sign_token,
    tip_key,
    validate_token,
)
from crp_gateway.governance.policy import (
    RiskLevel,
    SafetyPolicy,
    parse_policy,
    policy_hash,
)

MASTER = bytes(range(32))
W1_HMAC = "sha256:b93939fd0a9284cf336f31340e093e27c12f049a84a50c31a059052530dc899e"
W2_HMAC = "sha256:ed95fa2148e95b38e3fce98b4e35158f3fdfe365d3af8431f2995cf4595d1276"
CID = "crp_cont_00112233445566778899aabbccddeeff"
SCOPE = "crp_gw_free_eu_"
IAT, EXP = 1748160000, 1748163600
VECTOR_HEADER_B64 = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkNSUCJ9"
VECTOR_SIGNATURE = "3hKItI03XP3kxU1aMfYJz3o6QC83vfIqgQsFMCpErpk"
VECTOR_JSON = (
    '{"v":"3.0.0","sid":"crp_sess_0123456789abcdef","win":1,"qh":["A"],"sb":1.0,'
    f'"ct":"{W1_HMAC}","cid":"{CID}","dag":"LINEAR","str":"push","pol":"",'
    '"ckf":"","scope":"crp_gw_free_eu_","iat":1748160000,"exp":1748163600,'
    '"nonce":""}'
)
POLICY = "halt-on CRITICAL; warn-on HIGH"
POLICY_HASH = "sha256:51d0de8d4928a245c9822c8d7a2d630897461b7f188e17581474a79c41681a07"
RING = KeyRing.single(MASTER)


def vector_payload() -> SessionToken:
    return SessionToken(
        session_id="crp_sess_0123456789abcdef",
        window=1,
        quality_history=("A",),
        safety_budget=1.0,
        chain_tip=W1_HMAC,
        continuation_id=CID,
        dag=DagShape.LINEAR,
        strategy="push",
        policy_hash="",
        ckf_hash="",
        scope=SCOPE,
        issued_at=IAT,
        expires_at=EXP,
        nonce="",
    )


def vector_token() -> str:
    payload = base64.urlsafe_b64encode(VECTOR_JSON.encode()).rstrip(b"=").decode()
    return f"{payload}.{VECTOR_SIGNATURE}"


def request(**changes: object) -> Continuation:
    base = Continuation(
        now=IAT + 10,
        stored_tip=W1_HMAC,
        continuation_id=CID,
        scope=SCOPE,
        policy=SafetyPolicy(),
    )
    return replace(base, **changes)


# --- §5.8 vector ---------------------------------------------------------------------


def test_header_b64_vector() -> None:
    assert HEADER_B64 == VECTOR_HEADER_B64


def test_signing_reproduces_the_vector_token() -> None:
    assert sign_token(vector_payload(), MASTER) == vector_token()


def test_vector_token_validates() -> None:
    token = validate_token(vector_token(), RING, request())
    assert token == vector_payload()
    assert tip_key(token) == ("crp_sess_0123456789abcdef", CID)


# --- round trip, rotation, Set-Session -----------------------------------------------


def test_round_trip_with_every_field() -> None:
    payload = replace(
        vector_payload(),
        window=3,
        quality_history=("A", "A", "B"),
        safety_budget=0.65,
        dag=DagShape.FAN_OUT,
        policy_hash=POLICY_HASH,
        ckf_hash=W2_HMAC,
        nonce="base64:bm9uY2U=",
        key_version=7,
    )
    ring = KeyRing.single(MASTER, version=7)
    opened = open_token(sign_token(payload, MASTER), ring, now=IAT)
    assert opened == payload


def test_rotation_selects_by_kv_and_tries_all_without_it() -> None:
    new_master = bytes(range(1, 33))
    ring = KeyRing(((1, MASTER), (2, new_master)), current=2)
    rotated = ring.sign(vector_payload())
    assert open_token(rotated, ring, now=IAT).key_version == 2
    assert open_token(vector_token(), ring, now=IAT) == vector_payload()  # old, no kv
    with pytest.raises(InvalidSignature):
        open_token(rotated, RING, now=IAT)  # kv 2 unknown to the old ring
    wrong_kv = sign_token(replace(vector_payload(), key_version=1), new_master)
    with pytest.raises(InvalidSignature):
        open_token(wrong_kv, ring, now=IAT)


def test_set_session_header() -> None:
    payload = replace(vector_payload(), window=3, quality_history=("A", "A", "B"))
    assert set_session_header("abc.def", payload) == (
        "token=abc.def; Path=/; Max-Age=3600; Signed; SameSite=Strict; Window=3; "
        "QualityHistory=A,A,B"
    )


# --- step 1: shape (400) -------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", ["", "abc", ".abc", "abc.", "a.b.c", "ab*c.def", "abc.d=ef", "abc def.ghi"]
)
def test_malformed_tokens_are_400(raw: str) -> None:
    with pytest.raises(MalformedToken) as caught:
        open_token(raw, RING, now=IAT)
    assert caught.value.status == 400


def test_oversize_token_is_400() -> None:
    with pytest.raises(TokenTooLarge) as caught:
        open_token("A" * 4097 + "." + VECTOR_SIGNATURE, RING, now=IAT)
    assert caught.value.status == 400
    with pytest.raises(TokenTooLarge):
        open_token("A" * 10_000, RING, now=IAT)
    at_limit = "A" * 4096 + "." + VECTOR_SIGNATURE
    with pytest.raises(InvalidSignature):  # within the limit: on to step 2
        open_token(at_limit, RING, now=IAT)


def test_signing_an_oversize_payload_is_refused() -> None:
    big = replace(vector_payload(), quality_history=("A",) * 1000)
    with pytest.raises(ValueError, match="4096"):
        sign_token(big, MASTER)


def test_signed_payload_with_bad_schema_is_400() -> None:
    bad = json.loads(VECTOR_JSON)
    bad["win"] = "1"
    body = base64.urlsafe_b64encode(json.dumps(bad).encode()).rstrip(b"=").decode()
    key = session_signing_key(MASTER, bad["sid"])
    sig = hmac.new(key, f"{VECTOR_HEADER_B64}.{body}".encode(), hashlib.sha256)
    signature = base64.urlsafe_b64encode(sig.digest()).rstrip(b"=").decode()
    with pytest.raises(MalformedToken) as caught:
        open_token(f"{body}.{signature}", RING, now=IAT)
    assert caught.value.status == 400


# --- step 2: signature (401) ---------------------------------------------------------

_ALPHABET = string.ascii_letters + string.digits + "-_"


def _flip(raw: str, position: int) -> str:
    char = raw[position]
    other = _ALPHABET[(_ALPHABET.index(char) + 1) % len(_ALPHABET)]
    return raw[:position] + other + raw[position + 1 :]


def test_every_single_flipped_character_is_401() -> None:
    raw = vector_token()
    positions = [i for i, char in enumerate(raw) if char != "."]
    for position in positions:
        with pytest.raises(InvalidSignature) as caught:
            open_token(_flip(raw, position), RING, now=IAT)
        assert caught.value.status == 401


def test_wrong_master_key_is_401() -> None:
    with pytest.raises(InvalidSignature):
        open_token(vector_token(), KeyRing.single(bytes(32)), now=IAT)


def test_error_messages_do_not_contain_the_token() -> None:
    raw = _flip(vector_token(), 5)
    with pytest.raises(TokenError) as caught:
        open_token(raw, RING, now=IAT)
    assert raw.split(".")[0] not in str(caught.value)


# --- step 3: expiry (401) ------------------------------------------------------------


def test_expired_token_is_401_with_retry_after_0() -> None:
    assert open_token(vector_token(), RING, now=EXP) == vector_payload()  # now == exp
    with pytest.raises(TokenExpired) as caught:
        open_token(vector_token(), RING, now=EXP + 1)
    assert caught.value.status == 401
    assert caught.value.headers == {"CRP-Safety-Retry-After": "0"}


def test_signature_is_checked_before_expiry() -> None:
    with pytest.raises(InvalidSignature):
        open_token(_flip(vector_token(), 3), RING, now=EXP + 1)


# --- step 4: chain tip (409) ---------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"stored_tip": W2_HMAC},
        {"stored_tip": None},
        {"continuation_id": "crp_cont_ffeeddccbbaa99887766554433221100"},
    ],
)
def test_stale_tip_is_409(changes: dict[str, object]) -> None:
    with pytest.raises(StaleChainTip) as caught:
        validate_token(vector_token(), RING, request(**changes))
    assert caught.value.status == 409


def test_expiry_is_checked_before_the_tip() -> None:
    with pytest.raises(TokenExpired):
        validate_token(vector_token(), RING, request(now=EXP + 1, stored_tip=W2_HMAC))


# --- step 5: scope (403) -------------------------------------------------------------


def test_other_api_key_is_403() -> None:
    with pytest.raises(ScopeMismatch) as caught:
        validate_token(vector_token(), RING, request(scope="key_other"))
    assert caught.value.status == 403


def test_tip_is_checked_before_scope() -> None:
    with pytest.raises(StaleChainTip):
        validate_token(vector_token(), RING, request(scope="x", stored_tip=W2_HMAC))


# --- step 6: policy (403) ------------------------------------------------------------


def _with_policy(policy_hash: str) -> SessionToken:
    return replace(vector_payload(), policy_hash=policy_hash)


def test_same_policy_passes() -> None:
    token = _with_policy(POLICY_HASH)
    check_token(token, request(policy=parse_policy(POLICY)))


def test_tighter_policy_passes() -> None:
    token = _with_policy(POLICY_HASH)
    tighter = parse_policy("halt-on HIGH; warn-on MEDIUM; block-pii")
    check_token(token, request(policy=tighter, session_policy=parse_policy(POLICY)))


@pytest.mark.parametrize(
    "looser", ["warn-on HIGH", "halt-on CRITICAL; warn-on CRITICAL", "block-pii", ""]
)
def test_looser_policy_is_403(looser: str) -> None:
    token = _with_policy(POLICY_HASH)
    session = parse_policy(POLICY)
    with pytest.raises(PolicyNotTighter) as caught:
        check_token(token, request(policy=parse_policy(looser), session_policy=session))
    assert caught.value.status == 403
    assert caught.value.relaxations


def test_unknown_session_policy_is_403() -> None:
    token = _with_policy(POLICY_HASH)
    tighter = parse_policy("halt-on HIGH; warn-on MEDIUM")
    wrong = parse_policy("halt-on MEDIUM")
    for stored in (None, wrong):
        with pytest.raises(PolicyNotTighter):
            check_token(token, request(policy=tighter, session_policy=stored))


def test_changed_report_uri_is_not_tighter() -> None:
    base = parse_policy("halt-on HIGH; report-uri https://a.example/r")
    token = _with_policy(policy_hash(base))
    moved = parse_policy("halt-on HIGH; block-pii; report-uri https://b.example/r")
    with pytest.raises(PolicyNotTighter, match="report-uri"):
        check_token(token, request(policy=moved, session_policy=base))


def test_empty_pol_means_the_empty_policy() -> None:
    check_token(vector_payload(), request(policy=parse_policy(POLICY)))
    check_token(vector_payload(), request(policy=SafetyPolicy()))


def test_scope_is_checked_before_policy() -> None:
    token = _with_policy(POLICY_HASH)
    with pytest.raises(ScopeMismatch):
        check_token(token, request(scope="other", policy=SafetyPolicy()))


# --- step 7: nonce (400) -------------------------------------------------------------


def test_nonce() -> None:
    token = replace(_with_policy(POLICY_HASH), nonce="base64:AAAA")
    policy = parse_policy(POLICY)
    check_token(token, request(policy=policy, nonce="base64:AAAA"))
    check_token(token, request(policy=policy))  # no nonce sent: nothing to check
    with pytest.raises(NonceMismatch) as caught:
        check_token(token, request(policy=policy, nonce="base64:BBBB"))
    assert caught.value.status == 400


def test_nonce_reused_with_another_policy_hash_is_400() -> None:
    token = replace(_with_policy(POLICY_HASH), nonce="base64:AAAA")
    tighter = parse_policy("halt-on HIGH; warn-on MEDIUM")
    session = parse_policy(POLICY)
    check_token(token, request(policy=tighter, session_policy=session))  # no nonce: ok
    with pytest.raises(NonceMismatch, match="another policy hash"):
        check_token(
            token, request(policy=tighter, session_policy=session, nonce="base64:AAAA")
        )


def test_policy_is_checked_before_nonce() -> None:
    token = replace(_with_policy(POLICY_HASH), nonce="base64:AAAA")
    with pytest.raises(PolicyNotTighter):
        check_token(
            token,
            request(
                policy=SafetyPolicy(), session_policy=parse_policy(POLICY), nonce="x"
            ),
        )


# --- payload validation --------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"session_id": "sess_1"},
        {"window": 0},
        {"quality_history": ("Z",)},
        {"safety_budget": 1.5},
        {"safety_budget": float("nan")},
        {"chain_tip": ""},
        {"continuation_id": "cont_1"},
        {"policy_hash": "md5:1"},
        {"issued_at": EXP + 1},
        {"scope": ""},
        {"version": "2.0.0"},
    ],
)
def test_invalid_payload_fields_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        replace(vector_payload(), **changes)


# --- G14 new sessions ----------------------------------------------------------------


def test_new_session_reasons() -> None:
    token = vector_payload()
    assert new_session_reason(None, CID, max_windows=5) is NewSessionReason.NO_TOKEN
    assert new_session_reason(token, None, max_windows=5) is (
        NewSessionReason.NO_CONTINUATION_ID
    )
    assert new_session_reason(token, CID, max_windows=5) is None
    assert new_session_reason(token, CID, max_windows=5, terminate=True) is (
        NewSessionReason.TERMINATE
    )
    assert new_session_reason(replace(token, window=3), CID, max_windows=3) is (
        NewSessionReason.MAX_DEPTH
    )
    assert new_session_reason(
        replace(token, continuation_id=""), CID, max_windows=5
    ) is (NewSessionReason.MAX_DEPTH)
    assert new_session_reason(
        replace(token, safety_budget=0.0), CID, max_windows=5
    ) is (NewSessionReason.BUDGET_DEPLETED)


# --- G15 safety budget ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("budget", "action"),
    [
        (1.0, BudgetAction.PROCEED),
        (0.51, BudgetAction.PROCEED),
        (0.50, BudgetAction.CAUTION),
        (0.25, BudgetAction.CAUTION),  # 014 TV-050: not yet human-review
        (0.24, BudgetAction.HUMAN_REVIEW),
        (0.11, BudgetAction.HUMAN_REVIEW),
        (0.10, BudgetAction.HALT),  # 014 TV-051
        (0.01, BudgetAction.HALT),
        (0.0, BudgetAction.TERMINATED),
    ],
)
def test_budget_actions(budget: float, action: BudgetAction) -> None:
    assert budget_action(budget) is action


def test_budget_only_goes_down() -> None:
    decrements = BudgetDecrements()
    assert next_budget(1.0, None, decrements) == 1.0
    assert next_budget(1.0, RiskLevel.HIGH, decrements) == 0.85
    assert next_budget(0.2, RiskLevel.CRITICAL, decrements) == 0.0
    budget = 1.0
    for _ in range(9):
        budget = next_budget(budget, RiskLevel.MEDIUM, BudgetDecrements(medium=0.1))
    assert budget == 0.1
    assert budget_action(budget) is BudgetAction.HALT


@pytest.mark.parametrize(
    "changes",
    [{"low": 0.06}, {"medium": 0.01}, {"high": 0.3}, {"critical": 0.2}, {"low": -0.1}],
)
def test_decrements_must_stay_in_their_ranges(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="decrement"):
        BudgetDecrements(**changes)
