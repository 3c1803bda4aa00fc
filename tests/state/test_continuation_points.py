"""Continuation points in shared state: one linear child, or up to N siblings,
claimed atomically (G12), on both backends."""

from __future__ import annotations

import asyncio

import pytest

from crp_gateway.state import (
    Claim,
    ClaimRequest,
    ContinuationPoint,
    MemoryState,
    RedisState,
    SharedState,
)
from tests.support import Backend, run

TIP = "sha256:" + "a" * 64
POINT = ContinuationPoint(tip=TIP, window=1, policy="warn-on HIGH")


def _linear(**changes: object) -> ClaimRequest:
    values: dict[str, object] = {
        "tip": TIP,
        "fan_out": False,
        "max_fan_out": 3,
        "max_nodes": 50,
        "ttl_seconds": 60,
    }
    values.update(changes)
    return ClaimRequest(**values)  # type: ignore[arg-type]


async def _with_state(backend: Backend, scenario: object) -> object:
    state: SharedState = (
        RedisState.from_url(backend.redis_url, prefix=backend.redis_prefix)
        if backend.is_services and backend.redis_url
        else MemoryState()
    )
    try:
        return await scenario(state)  # type: ignore[operator]
    finally:
        await state.aclose()


def test_a_point_takes_one_linear_child(backend: Backend) -> None:
    async def scenario(state: SharedState) -> list[Claim]:
        await state.open_point("t1", "s1", "c1", POINT, ttl_seconds=60)
        assert await state.get_point("t1", "s1", "c1") == POINT
        return [await state.claim_point("t1", "s1", "c1", _linear()) for _ in range(2)]

    assert run(_with_state(backend, scenario)) == [Claim.CLAIMED, Claim.STALE]


def test_a_wrong_tip_or_unknown_point_is_stale(backend: Backend) -> None:
    async def scenario(state: SharedState) -> list[Claim]:
        await state.open_point("t1", "s1", "c1", POINT, ttl_seconds=60)
        return [
            await state.claim_point(
                "t1", "s1", "c1", _linear(tip="sha256:" + "b" * 64)
            ),
            await state.claim_point("t1", "s1", "nope", _linear()),
            await state.claim_point("t2", "s1", "c1", _linear()),  # another tenant
            await state.claim_point("t1", "s1", "c1", _linear()),
        ]

    assert run(_with_state(backend, scenario)) == [
        Claim.STALE,
        Claim.STALE,
        Claim.STALE,
        Claim.CLAIMED,
    ]


def test_concurrent_claims_let_exactly_one_linear_child_through(
    backend: Backend,
) -> None:
    async def scenario(state: SharedState) -> list[Claim]:
        await state.open_point("t1", "s1", "c1", POINT, ttl_seconds=60)
        return list(
            await asyncio.gather(
                *(state.claim_point("t1", "s1", "c1", _linear()) for _ in range(20))
            )
        )

    outcomes = run(_with_state(backend, scenario))
    assert isinstance(outcomes, list)
    assert outcomes.count(Claim.CLAIMED) == 1
    assert outcomes.count(Claim.STALE) == 19


def test_fan_out_shares_a_point_up_to_the_limit(backend: Backend) -> None:
    async def scenario(state: SharedState) -> list[Claim]:
        await state.open_point("t1", "s1", "c1", POINT, ttl_seconds=60)
        fan = _linear(fan_out=True)
        siblings = await asyncio.gather(
            *(state.claim_point("t1", "s1", "c1", fan) for _ in range(5))
        )
        linear = await state.claim_point("t1", "s1", "c1", _linear())
        return [*sorted(siblings), linear]

    outcomes = run(_with_state(backend, scenario))
    expected = sorted([Claim.CLAIMED] * 3 + [Claim.FAN_OUT_EXHAUSTED] * 2)
    assert outcomes == [*expected, Claim.STALE]


def test_a_session_holds_at_most_max_nodes_windows(backend: Backend) -> None:
    async def scenario(state: SharedState) -> list[Claim]:
        await state.open_point("t1", "s1", "c1", POINT, ttl_seconds=60)
        fan = _linear(fan_out=True, max_fan_out=10, max_nodes=3)
        return [await state.claim_point("t1", "s1", "c1", fan) for _ in range(3)]

    # the root is node 1; two children make 3
    assert run(_with_state(backend, scenario)) == [
        Claim.CLAIMED,
        Claim.CLAIMED,
        Claim.DAG_FULL,
    ]


@pytest.mark.parametrize("ttl", [1])
def test_a_point_expires_with_its_token(backend: Backend, ttl: int) -> None:
    async def scenario(state: SharedState) -> tuple[object, Claim]:
        await state.open_point("t1", "s1", "c1", POINT, ttl_seconds=ttl)
        await asyncio.sleep(ttl + 0.2)
        return (
            await state.get_point("t1", "s1", "c1"),
            await state.claim_point("t1", "s1", "c1", _linear()),
        )

    assert run(_with_state(backend, scenario)) == (None, Claim.STALE)
