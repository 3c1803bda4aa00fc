"""In-process shared state for a single replica (no ``REDIS_URL``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from crp_gateway.state.base import (
    Claim,
    ClaimRequest,
    ContinuationPoint,
    RateDecision,
    Window,
    decide,
)

_PRUNE_EVERY = 1024


@dataclass(slots=True)
class _Slot:
    point: ContinuationPoint
    expires_at: float
    children: int = 0
    closed: bool = False  # a linear child took it


class MemoryState:
    """Counters and continuation points in dicts; correct for exactly one process.

    Every method runs without awaiting, so each is atomic on the event loop.
    """

    def __init__(self) -> None:
        self._counters: dict[str, tuple[int, int]] = {}
        self._hits = 0
        self._points: dict[tuple[str, str, str], _Slot] = {}
        self._nodes: dict[tuple[str, str], tuple[int, float]] = {}
        self._opened = 0

    async def hit(
        self, scope: str, name: str, *, limit: int, window_seconds: int
    ) -> RateDecision:
        window = Window.now(window_seconds)
        key = f"{scope}:{name}:{window_seconds}"
        index, count = self._counters.get(key, (window.index, 0))
        count = count + 1 if index == window.index else 1
        self._counters[key] = (window.index, count)
        self._hits += 1
        if self._hits % _PRUNE_EVERY == 0:
            self._prune(window_seconds)
        return decide(count, limit, window)

    def _prune(self, window_seconds: int) -> None:
        current = Window.now(window_seconds).index
        for key, (index, _count) in list(self._counters.items()):
            if index < current - 1:
                del self._counters[key]

    async def open_point(
        self,
        tenant_id: str,
        session_id: str,
        continuation_id: str,
        point: ContinuationPoint,
        *,
        ttl_seconds: int,
    ) -> None:
        now = time.monotonic()
        expires_at = now + ttl_seconds
        self._points[tenant_id, session_id, continuation_id] = _Slot(point, expires_at)
        nodes, _ = self._nodes.get((tenant_id, session_id), (1, 0.0))
        if point.window == 1:
            nodes = 1  # the root: a new session
        self._nodes[tenant_id, session_id] = (nodes, expires_at)
        self._opened += 1
        if self._opened % _PRUNE_EVERY == 0:
            self._prune_points(now)

    def _prune_points(self, now: float) -> None:
        for key, slot in list(self._points.items()):
            if slot.expires_at <= now:
                del self._points[key]
        for session, (_, expires_at) in list(self._nodes.items()):
            if expires_at <= now:
                del self._nodes[session]

    def _live(self, key: tuple[str, str, str]) -> _Slot | None:
        slot = self._points.get(key)
        if slot is None or slot.expires_at <= time.monotonic():
            return None
        return slot

    async def get_point(
        self, tenant_id: str, session_id: str, continuation_id: str
    ) -> ContinuationPoint | None:
        slot = self._live((tenant_id, session_id, continuation_id))
        return slot.point if slot is not None else None

    async def claim_point(
        self,
        tenant_id: str,
        session_id: str,
        continuation_id: str,
        request: ClaimRequest,
    ) -> Claim:
        slot = self._live((tenant_id, session_id, continuation_id))
        if slot is None or slot.closed or slot.point.tip != request.tip:
            return Claim.STALE
        if not request.fan_out and slot.children:
            return Claim.STALE
        if request.fan_out and slot.children >= request.max_fan_out:
            return Claim.FAN_OUT_EXHAUSTED
        nodes, _ = self._nodes.get((tenant_id, session_id), (1, 0.0))
        if nodes >= request.max_nodes:
            return Claim.DAG_FULL
        slot.children += 1
        slot.closed = not request.fan_out
        expires_at = time.monotonic() + request.ttl_seconds
        self._nodes[tenant_id, session_id] = (max(nodes, 1) + 1, expires_at)
        return Claim.CLAIMED

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self._counters.clear()
        self._points.clear()
        self._nodes.clear()
