"""Shared state in Redis, for any number of replicas."""

from __future__ import annotations

from redis.asyncio import Redis

from crp_gateway.state.base import (
    Claim,
    ClaimRequest,
    ContinuationPoint,
    RateDecision,
    Window,
    decide,
)

# KEYS: the point's hash, the session's window counter.
# ARGV: tip, "1" for fan-out, max_fan_out, max_nodes, ttl seconds.
# The check and the take happen in one script, so two replicas can never both
# take a linear point, nor more than max_fan_out siblings.
_CLAIM = """
local point = redis.call('HMGET', KEYS[1], 'tip', 'children', 'closed')
if not point[1] or point[1] ~= ARGV[1] or point[3] == '1' then
  return 'stale'
end
local children = tonumber(point[2] or '0')
local fan_out = ARGV[2] == '1'
if not fan_out and children > 0 then return 'stale' end
if fan_out and children >= tonumber(ARGV[3]) then return 'fan-out-exhausted' end
local nodes = tonumber(redis.call('GET', KEYS[2]) or '1')
if nodes >= tonumber(ARGV[4]) then return 'dag-full' end
redis.call('HINCRBY', KEYS[1], 'children', 1)
if not fan_out then redis.call('HSET', KEYS[1], 'closed', '1') end
redis.call('SET', KEYS[2], nodes + 1, 'EX', tonumber(ARGV[5]))
return 'claimed'
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisState:
    """Fixed-window counters as ``INCR`` + ``EXPIRE`` on one key per window;
    continuation points as hashes with a TTL, claimed by a Lua script."""

    def __init__(self, client: Redis, *, prefix: str = "crp") -> None:
        self._redis = client
        self._prefix = prefix
        self._claim = client.register_script(_CLAIM)

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

    def _point_key(self, tenant_id: str, session_id: str, continuation_id: str) -> str:
        return self.key(tenant_id, "cont", session_id, continuation_id)

    def _nodes_key(self, tenant_id: str, session_id: str) -> str:
        return self.key(tenant_id, "nodes", session_id)

    async def open_point(
        self,
        tenant_id: str,
        session_id: str,
        continuation_id: str,
        point: ContinuationPoint,
        *,
        ttl_seconds: int,
    ) -> None:
        key = self._point_key(tenant_id, session_id, continuation_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)  # a fresh point: no children, not closed
            pipe.hset(
                key,
                mapping={
                    "tip": point.tip,
                    "window": point.window,
                    "policy": point.policy,
                    "children": 0,
                },
            )
            pipe.expire(key, ttl_seconds)
            nodes = self._nodes_key(tenant_id, session_id)
            if point.window == 1:
                pipe.set(nodes, 1, ex=ttl_seconds)  # the root: a new session
            else:
                pipe.expire(nodes, ttl_seconds)
            await pipe.execute()

    async def get_point(
        self, tenant_id: str, session_id: str, continuation_id: str
    ) -> ContinuationPoint | None:
        key = self._point_key(tenant_id, session_id, continuation_id)
        tip, window, policy = await self._redis.hmget(key, ["tip", "window", "policy"])
        if tip is None or window is None or policy is None:
            return None
        return ContinuationPoint(
            tip=_text(tip), window=int(window), policy=_text(policy)
        )

    async def claim_point(
        self,
        tenant_id: str,
        session_id: str,
        continuation_id: str,
        request: ClaimRequest,
    ) -> Claim:
        outcome = await self._claim(
            keys=[
                self._point_key(tenant_id, session_id, continuation_id),
                self._nodes_key(tenant_id, session_id),
            ],
            args=[
                request.tip,
                "1" if request.fan_out else "0",
                request.max_fan_out,
                request.max_nodes,
                request.ttl_seconds,
            ],
        )
        return Claim(_text(outcome))

    async def ping(self) -> None:
        await self._redis.ping()

    async def aclose(self) -> None:
        await self._redis.aclose()
