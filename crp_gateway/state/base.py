"""The shared-state interface."""

from __future__ import annotations

import time
from dataclasses import dataclass
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


class SharedState(Protocol):
    """What every shared-state backend offers."""

    async def hit(
        self, scope: str, name: str, *, limit: int, window_seconds: int
    ) -> RateDecision:
        """Count one event for ``name`` within ``scope`` and say if it fits."""

    async def ping(self) -> None:
        """Raise if the backend does not answer."""

    async def aclose(self) -> None:
        """Release connections."""
