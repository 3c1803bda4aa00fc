"""The shared-state interface."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Outcome of one hit on a fixed-window counter."""

    allowed: bool
    limit: int
    remaining: int
    retry_after: int


@dataclass(frozen=True, slots=True)
class Window:
    """The fixed window a moment falls in: its index and seconds until it ends."""

    index: int
    resets_in: int

    @classmethod
    def at(cls, now: float, seconds: int) -> Window:
        index = int(now // seconds)
        return cls(index=index, resets_in=max(1, int((index + 1) * seconds - now)))

    @classmethod
    def now(cls, seconds: int) -> Window:
        return cls.at(time.time(), seconds)


def decide(count: int, limit: int, window: Window) -> RateDecision:
    allowed = count <= limit
    return RateDecision(
        allowed=allowed,
        limit=limit,
        remaining=max(0, limit - count),
        retry_after=0 if allowed else window.resets_in,
    )


@dataclass(frozen=True, slots=True)
class ContinuationPoint:
    """A place a session can be continued from (G12: one per DAG node).

    ``tip`` is the HMAC of the window the point follows (the token's ``ct``);
    ``policy`` the session's policy text, so that a continuation can be checked
    for being at least as strict (007§5 step 6); ``window`` its number.
    """

    tip: str
    window: int
    policy: str


class Claim(StrEnum):
    """The outcome of claiming a continuation point for one new window."""

    CLAIMED = "claimed"
    STALE = "stale"  # gone, another tip, or already continued: 409
    FAN_OUT_EXHAUSTED = "fan-out-exhausted"  # max_fan_out children: 403
    DAG_FULL = "dag-full"  # max_dag_nodes windows in the session: 403


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """What a continuation asks of its point.

    A linear continuation takes a point that has no child yet and closes it; a
    fan-out child (``fan_out``) shares it with up to ``max_fan_out`` siblings,
    as long as no linear child took it.
    """

    tip: str
    fan_out: bool
    max_fan_out: int
    max_nodes: int
    ttl_seconds: int


class SharedState(Protocol):
    """What every shared-state backend offers."""

    async def hit(
        self, scope: str, name: str, *, limit: int, window_seconds: int
    ) -> RateDecision:
        """Count one event for ``name`` within ``scope`` and say if it fits."""

    async def open_point(
        self,
        tenant_id: str,
        session_id: str,
        continuation_id: str,
        point: ContinuationPoint,
        *,
        ttl_seconds: int,
    ) -> None:
        """Store a new continuation point (and count its window in the session)."""

    async def get_point(
        self, tenant_id: str, session_id: str, continuation_id: str
    ) -> ContinuationPoint | None:
        """The live point, or ``None`` (expired, never issued)."""

    async def claim_point(
        self,
        tenant_id: str,
        session_id: str,
        continuation_id: str,
        request: ClaimRequest,
    ) -> Claim:
        """Atomically check ``request.tip`` and take one child slot."""

    async def ping(self) -> None:
        """Raise if the backend does not answer."""

    async def aclose(self) -> None:
        """Release connections."""
