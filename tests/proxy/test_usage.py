"""Every call's tokens are recorded per tenant, key, provider and model."""

from __future__ import annotations

import time
from typing import Any

import openai

from tests.fakes.upstream import FakeUpstream
from tests.proxy.conftest import WiredTenant
from tests.support import GatewayServer


def _usage(gateway: GatewayServer, api_key: str) -> dict[str, Any]:
    with gateway.client(api_key) as client:
        usage: dict[str, Any] = client.get("/v1/tenants/me").json()["usage"]
    return usage


def _wait_for_requests(
    gateway: GatewayServer, api_key: str, count: int
) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    usage = _usage(gateway, api_key)
    while usage["requests"] < count and time.monotonic() < deadline:
        time.sleep(0.05)
        usage = _usage(gateway, api_key)
    return usage


def test_usage_of_complete_and_streamed_calls_is_recorded(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    client = openai.OpenAI(
        base_url=f"{gateway.url}/v1", api_key=wired.api_key, max_retries=0
    )
    client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "a b c"}]
    )  # 3 prompt, 4 completion ("echo: a b c")
    list(
        client.chat.completions.create(
            model="claude-sonnet-4-5",
            messages=[{"role": "user", "content": "d e"}],
            stream=True,
        )
    )  # 2 prompt, 3 completion
    list(
        client.chat.completions.create(
            model="local/llama3.1",
            messages=[{"role": "user", "content": "f"}],
            stream=True,
        )
    )  # 1 prompt, 2 completion
    usage = _wait_for_requests(gateway, wired.api_key, 3)
    assert usage["requests"] == 3
    assert usage["prompt_tokens"] == 6
    assert usage["completion_tokens"] == 9


def test_failed_calls_are_recorded_too(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    upstream.script(status=500)
    with gateway.client(wired.api_key) as client:
        client.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]},
        )
    usage = _wait_for_requests(gateway, wired.api_key, 1)
    assert usage["requests"] == 1
    assert usage["prompt_tokens"] == 0


def test_usage_is_per_tenant(gateway: GatewayServer, wired: WiredTenant) -> None:
    from tests.support import sign_up

    other = sign_up(gateway)
    client = openai.OpenAI(
        base_url=f"{gateway.url}/v1", api_key=wired.api_key, max_retries=0
    )
    client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "mine"}]
    )
    _wait_for_requests(gateway, wired.api_key, 1)
    assert _usage(gateway, other.api_key)["requests"] == 0


def _statuses(gateway: GatewayServer, tenant_id: str, count: int) -> list[int]:
    from crp_gateway.store.database import create_engine, create_sessionmaker
    from crp_gateway.store.repositories import UsageRepository
    from tests.support import run

    async def read() -> list[int]:
        engine = create_engine(gateway.settings.store_url)
        try:
            async with create_sessionmaker(engine)() as session:
                rows = await UsageRepository(session, tenant_id).recent(count)
                return sorted(row.status for row in rows)
        finally:
            await engine.dispose()

    deadline = time.monotonic() + 10
    statuses = run(read())
    while len(statuses) < count and time.monotonic() < deadline:
        time.sleep(0.05)
        statuses = run(read())
    return statuses


def test_halted_and_abandoned_streams_are_recorded_with_their_status(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    body = {
        "model": "gpt-4o",
        "stream": True,
        "messages": [{"role": "user", "content": "one two three four"}],
    }
    with gateway.client(wired.api_key) as client:
        halted = client.post(
            "/v1/chat/completions",
            json=body,
            headers={"CRP-Safety-Policy": "block-parametric"},  # halts every answer
        )
        upstream.script(hang_after=2)
        with client.stream("POST", "/v1/chat/completions", json=body) as response:
            next(response.iter_lines())
    assert halted.status_code == 451
    assert upstream.wait_for_disconnects(1, timeout=10)
    assert _statuses(gateway, wired.tenant.tenant_id, 2) == [451, 499]
