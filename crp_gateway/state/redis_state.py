"""Shared state in Redis, for any number of replicas."""

from __future__ import annotations

from redis.asyncio import Redis

from crp_gateway.state.base import RateDecision, Window, decide


class RedisState:
    """Fixed-window counters as ``INCR`` + ``EXPIRE`` on one key per window."""

    def __init__(self, client: Redis, *, prefix: str = "crp") -> None:
        self._redis = client
        self._prefix = prefix

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "crp") -> RedisState:
        client = Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=2, health_check_interval=30
        )
        return cls(client, prefix=prefix)

    def key(self, scope: str, *parts: str) -> str:
        return ":".join((self._prefix, f"{{{scope}}}", *parts))

    async def hit(
        self, scope: str, name: str, *, limit: int, window_seconds: int
    ) -> RateDecision:
        window = Window.now(window_seconds)
        key = self.key(scope, "rate", name, str(window_seconds), str(window.index))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, window_seconds + 1)
            count, _ = await pipe.execute()
        return decide(int(count), limit, window)

    async def ping(self) -> None:
        await self._redis.ping()

    async def aclose(self) -> None:
        await self._redis.aclose()
