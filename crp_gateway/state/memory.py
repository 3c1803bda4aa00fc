"""In-process shared state for a single replica (no ``REDIS_URL``)."""

from __future__ import annotations

from crp_gateway.state.base import RateDecision, Window, decide

_PRUNE_EVERY = 1024


class MemoryState:
    """Fixed-window counters in a dict; correct for exactly one process."""

    def __init__(self) -> None:
        self._counters: dict[str, tuple[int, int]] = {}
        self._hits = 0

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

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self._counters.clear()
