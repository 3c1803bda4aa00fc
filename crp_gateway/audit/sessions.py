"""Sessions across calls: where a call's window goes, and the token it gets back.

A request that sends ``CRP-Session-Token`` and ``CRP-Context-Continuation-Id``
continues that session (G14: a new session when either is missing, on
``CRP-Session-Action: terminate``, at the maximum depth, or once the budget is
spent). The token is checked in the 007§5 order (`session_token`), against the
continuation point kept in shared state (G12), and the point is then claimed
atomically, so that two replicas cannot both continue one point:

* a linear continuation takes a point that nobody continued yet; presenting the
  same token again (a replay, or a concurrent duplicate) is 409;
* ``CRP-Agent-Dispatch-Strategy: fan-out`` asks for a sibling instead: up to
  ``max_fan_out`` requests may share one point; each gets the same window number
  and its own window id, chained to the same parent (§5.1, §5.5);
* a session holds at most ``max_dag_nodes`` windows.

Every answer then carries ``CRP-Set-Session`` with a token for the point its own
window opened (none once the session reached its depth, N = M, 004§11.4). The
point lives as long as the token (1 h). The token carries the safety budget
(G15): each call lowers it by its risk level, and a continuation whose budget is
in (0, 0.10] halts before dispatch with ``SAFETY_BUDGET_DEPLETED``.

Tokens are signed with a key derived from the tenant's audit master key (§5.3)
and carry its version in ``kv``: a session keeps the version it started with,
so its windows, events and tokens all verify with one key; after a rotation,
new sessions use the new version (``TenantKeys.rotate``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from crp_gateway.audit import ids
from crp_gateway.audit.master_keys import TenantKeys
from crp_gateway.audit.session_token import (
    DEFAULT_LIFETIME,
    BudgetAction,
    BudgetDecrements,
    Continuation,
    DagShape,
    InvalidSignature,
    KeyRing,
    SessionToken,
    StaleChainTip,
    TokenError,
    budget_action,
    check_token,
    new_session_reason,
    next_budget,
    open_token,
    set_session_header,
    sign_token,
)
from crp_gateway.errors import (
    Conflict,
    GatewayError,
    InvalidRequest,
    PermissionDenied,
)
from crp_gateway.governance.headers import (
    SESSION_TOKEN,
    RequestHeaderCheck,
)
from crp_gateway.governance.policy import (
    PolicyError,
    RiskLevel,
    SafetyPolicy,
    format_policy,
    parse_policy,
    policy_hash,
)
from crp_gateway.logging import get_logger
from crp_gateway.state import Claim, ClaimRequest, ContinuationPoint, SharedState

log = get_logger("crp_gateway.sessions")

SESSION_ACTION = "CRP-Session-Action"
DISPATCH_STRATEGY = "CRP-Agent-Dispatch-Strategy"
NONCE = "CRP-Safety-Nonce"
STRATEGY = "push"  # a plain proxy dispatches by push (§2.1, CRP-Context-Strategy)


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """Depth M, fan-out and DAG size of a plan's sessions (§5.1, 016§7-8)."""

    max_windows: int = 5
    max_fan_out: int = 10
    max_dag_nodes: int = 50


PLAN_LIMITS: Mapping[str, SessionLimits] = MappingProxyType(
    {"free": SessionLimits(max_windows=3, max_fan_out=3)}
)
DEFAULT_LIMITS = SessionLimits()


def limits_for(plan: str) -> SessionLimits:
    return PLAN_LIMITS.get(plan, DEFAULT_LIMITS)


def describe() -> dict[str, object]:
    """The session rules, for the discovery document."""
    decrements = BudgetDecrements()
    return {
        "token": "SPEC-007: payload_b64u.HMAC-SHA256 signature; kv = master key "
        "version (a session keeps the version it started with)",
        "lifetime_seconds": DEFAULT_LIFETIME,
        "limits": {
            plan: {
                "max_windows": limits.max_windows,
                "max_fan_out": limits.max_fan_out,
                "max_dag_nodes": limits.max_dag_nodes,
            }
            for plan, limits in {**PLAN_LIMITS, "default": DEFAULT_LIMITS}.items()
        },
        "new_session_when": [
            "no CRP-Session-Token",
            "no CRP-Context-Continuation-Id",
            "CRP-Session-Action: terminate",
            "the window reached max_windows",
            "the safety budget is 0",
        ],
        "continuation": (
            "each answer opens one continuation point (its cid); a linear "
            f"continuation takes it once (again: 409); {DISPATCH_STRATEGY}: "
            "fan-out shares it among up to max_fan_out siblings; fan-in is "
            "refused (400)"
        ),
        "safety_budget": {
            "start": 1.0,
            "decrements": {level.value: decrements.of(level) for level in RiskLevel},
            "risk_method": "crp-gw.risk/1",
            "halt_at_or_below": 0.10,
            "warning": {"caution": "0.25-0.50", "low": "below 0.25"},
        },
        "shared_state": "Redis when REDIS_URL is set, else per process",
    }


class SessionTokenInvalid(GatewayError):
    """401 for the session token (the API key itself was accepted, so no
    ``WWW-Authenticate`` challenge)."""

    status_code = 401
    error_type = "authentication_error"
    default_code = "invalid_session_token"


_BY_STATUS: Mapping[int, type[GatewayError]] = MappingProxyType(
    {
        400: InvalidRequest,
        401: SessionTokenInvalid,
        403: PermissionDenied,
        409: Conflict,
    }
)


def rejected(
    message: str, *, status: int, code: str, headers: Mapping[str, str] | None = None
) -> GatewayError:
    """A refused token or continuation, as the error of its status (§5.3)."""
    return _BY_STATUS[status](
        message, code=code, param=SESSION_TOKEN, headers=dict(headers or {})
    )


def _token_rejected(error: TokenError) -> GatewayError:
    return rejected(
        error.message, status=error.status, code=error.code, headers=error.headers
    )


@dataclass(frozen=True, slots=True)
class Place:
    """Where one call's window goes.

    ``parent_hmac``/``parent_window`` are ``("", 0)`` for a new session.
    """

    session_id: str
    limits: SessionLimits
    key_version: int = 1
    budget: float = 1.0
    parent_hmac: str = ""
    parent_window: int = 0
    dag: DagShape = DagShape.LINEAR
    nonce: str = ""
    quality_history: tuple[str, ...] = ()

    @property
    def continued(self) -> bool:
        return self.parent_window > 0

    @property
    def window(self) -> int:
        return self.parent_window + 1

    @property
    def budget_halts(self) -> bool:
        """G15: a continuation whose budget is in (0, 0.10] halts before dispatch."""
        return self.continued and budget_action(self.budget) is BudgetAction.HALT


@dataclass(frozen=True, slots=True)
class Issued:
    """What the answer tells the client about its session."""

    set_session: str
    continuation_id: str | None
    budget: float


def _new_place(limits: SessionLimits, ring: KeyRing, nonce: str = "") -> Place:
    return Place(
        session_id=ids.new_session_id(),
        limits=limits,
        key_version=ring.current,
        nonce=nonce,
    )


class Sessions:
    def __init__(
        self,
        state: SharedState,
        keys: TenantKeys,
        *,
        lifetime: int = DEFAULT_LIFETIME,
        decrements: BudgetDecrements | None = None,
    ) -> None:
        self._state = state
        self._keys = keys
        self._lifetime = lifetime
        self._decrements = decrements or BudgetDecrements()

    async def _open(self, tenant_id: str, raw: str) -> SessionToken:
        """Steps 1-3; a token of a key version this replica has not loaded yet
        (rotated elsewhere) is retried once against the reloaded ring."""
        now = int(time.time())
        ring = await self._keys.ring(tenant_id)
        try:
            return open_token(raw, ring, now=now)
        except InvalidSignature:
            reloaded = await self._keys.ring(tenant_id, version=ring.current + 1)
            if reloaded.keys == ring.keys:
                raise
            return open_token(raw, reloaded, now=now)

    async def place(
        self,
        *,
        tenant_id: str,
        key_id: str,
        plan: str,
        headers: RequestHeaderCheck,
        policy: SafetyPolicy,
    ) -> Place:
        """Validate the request's token and claim its continuation point.

        Raises the errors of `rejected` (400/401/403/409); nothing is claimed
        unless every check passed.
        """
        limits = limits_for(plan)
        nonce = headers.get(NONCE) or ""
        raw = headers.session_token
        if raw is None:
            return _new_place(limits, await self._keys.ring(tenant_id), nonce)
        try:
            token = await self._open(tenant_id, raw)
        except TokenError as error:
            raise _token_rejected(error) from None
        requested = headers.continuation_id
        if requested is not None and "," in requested:
            raise rejected(
                "Fan-in (several continuation ids) is not supported by this gateway.",
                status=400,
                code="fan_in_unsupported",
            )
        terminate = (headers.get(SESSION_ACTION) or "").lower() == "terminate"
        reason = new_session_reason(
            token, requested, max_windows=limits.max_windows, terminate=terminate
        )
        if reason is not None:
            return _new_place(limits, await self._keys.ring(tenant_id), nonce)
        point = await self._state.get_point(
            tenant_id, token.session_id, token.continuation_id
        )
        try:
            check_token(
                token,
                Continuation(
                    now=int(time.time()),
                    stored_tip=point.tip if point else None,
                    continuation_id=requested,
                    scope=key_id,
                    policy=policy,
                    session_policy=_session_policy(point),
                    nonce=headers.get(NONCE),
                ),
            )
        except TokenError as error:
            raise _token_rejected(error) from None
        fan_out = (headers.get(DISPATCH_STRATEGY) or "").lower() == "fan-out"
        await self._claim(tenant_id, token, fan_out=fan_out, limits=limits)
        return Place(
            session_id=token.session_id,
            limits=limits,
            key_version=token.key_version or 1,
            budget=token.safety_budget,
            parent_hmac=token.chain_tip,
            parent_window=token.window,
            dag=DagShape.FAN_OUT if fan_out else DagShape.LINEAR,
            nonce=token.nonce,
            quality_history=token.quality_history,
        )

    async def _claim(
        self,
        tenant_id: str,
        token: SessionToken,
        *,
        fan_out: bool,
        limits: SessionLimits,
    ) -> None:
        outcome = await self._state.claim_point(
            tenant_id,
            token.session_id,
            token.continuation_id,
            ClaimRequest(
                tip=token.chain_tip,
                fan_out=fan_out,
                max_fan_out=limits.max_fan_out,
                max_nodes=limits.max_dag_nodes,
                ttl_seconds=self._lifetime,
            ),
        )
        if outcome is Claim.CLAIMED:
            return
        if outcome is Claim.STALE:
            error = StaleChainTip(
                "This session token was already used to continue the session; "
                "use the token of the latest answer (or send "
                f"{DISPATCH_STRATEGY}: fan-out for a sibling)."
            )
            raise _token_rejected(error)
        limit, code = (
            (limits.max_fan_out, "max_fan_out_reached")
            if outcome is Claim.FAN_OUT_EXHAUSTED
            else (limits.max_dag_nodes, "max_dag_nodes_reached")
        )
        raise rejected(
            f"The session reached its limit of {limit} ({code.removesuffix('_reached')}"
            "); start a new session.",
            status=403,
            code=code,
        )

    async def issue(
        self,
        place: Place,
        *,
        tenant_id: str,
        key_id: str,
        window_hmac: str,
        policy: SafetyPolicy,
        risk: RiskLevel | None,
        end: bool = False,
    ) -> Issued:
        """Open the point after this call's (durable) window and sign its token
        (with no continuation id when ``end``, at depth M, or with no budget)."""
        budget = next_budget(place.budget, risk, self._decrements)
        complete = end or place.window >= place.limits.max_windows or budget <= 0
        continuation_id = "" if complete else ids.new_continuation_id()
        now = int(time.time())
        token = SessionToken(
            session_id=place.session_id,
            window=place.window,
            quality_history=place.quality_history,
            safety_budget=budget,
            chain_tip=window_hmac,
            continuation_id=continuation_id,
            dag=place.dag,
            strategy=STRATEGY,
            policy_hash=policy_hash(policy),
            ckf_hash="",
            scope=key_id,
            issued_at=now,
            expires_at=now + self._lifetime,
            nonce=place.nonce,
            key_version=place.key_version,
        )
        signed = sign_token(
            token, await self._keys.master(tenant_id, token.key_version)
        )
        if continuation_id:
            await self._state.open_point(
                tenant_id,
                place.session_id,
                continuation_id,
                ContinuationPoint(
                    tip=window_hmac, window=place.window, policy=format_policy(policy)
                ),
                ttl_seconds=self._lifetime,
            )
        return Issued(
            set_session=set_session_header(signed, token),
            continuation_id=continuation_id or None,
            budget=budget,
        )


def _session_policy(point: ContinuationPoint | None) -> SafetyPolicy | None:
    if point is None:
        return None
    try:
        return parse_policy(point.policy) if point.policy else SafetyPolicy()
    except PolicyError:
        log.warning("session.stored_policy_unreadable")
        return None
