"""Provider failures are reported as failures, with the provider key scrubbed."""

from __future__ import annotations

import socket
import time

import httpx
import openai
import pytest

from tests.conftest import StartGateway
from tests.fakes.upstream import FakeUpstream
from tests.proxy.conftest import WiredTenant, register
from tests.support import GatewayServer, provider_key, sign_up

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def _post(
    gateway: GatewayServer, api_key: str, body: dict[str, object] = CHAT
) -> httpx.Response:
    with gateway.client(api_key) as client:
        return client.post("/v1/chat/completions", json=body)


def test_a_provider_400_is_a_400_with_its_message_and_no_key(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    upstream.script(
        status=400,
        body={
            "error": {
                "type": "invalid_request_error",
                "message": f"max_tokens too large for key {wired.openai_key}",
            }
        },
    )
    response = _post(gateway, wired.api_key)
    assert response.status_code == 400
    error = response.json()["error"]
    assert "max_tokens too large" in error["message"]
    assert wired.openai_key not in response.text
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_provider_key_is_424_naming_the_credential(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream, status: int
) -> None:
    upstream.script(status=status)
    client = openai.OpenAI(
        base_url=f"{gateway.url}/v1", api_key=wired.api_key, max_retries=0
    )
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(**CHAT)  # type: ignore[call-overload]
    assert raised.value.status_code == 424
    error = raised.value.body  # the SDK unwraps the "error" object
    assert isinstance(error, dict)
    assert error["code"] == "provider_auth_failed"
    assert "'openai'" in error["message"]
    assert "POST /v1/providers/openai" in error["message"]


def test_a_provider_429_keeps_its_retry_after(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    upstream.script(status=429, headers={"retry-after": "7"})
    response = _post(gateway, wired.api_key)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.json()["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize("status", [500, 503, 529])
def test_a_provider_5xx_is_502(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream, status: int
) -> None:
    upstream.script(status=status)
    response = _post(gateway, wired.api_key)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "provider_error"
    assert "echo" not in response.text


def test_a_provider_error_while_streaming_is_a_status_not_a_stream(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    upstream.script(status=500)
    response = _post(gateway, wired.api_key, {**CHAT, "stream": True})
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("application/json")


def test_a_slow_provider_is_504(
    start_gateway: StartGateway, upstream: FakeUpstream
) -> None:
    with start_gateway(crp_upstream_read_timeout=0.3) as server:
        tenant = sign_up(server)
        register(
            server,
            tenant.api_key,
            "openai",
            {
                "api_key": provider_key(),
                "default_model": "gpt-4o",
                "base_url": upstream.openai_base_url,
            },
        )
        upstream.script(delay=2.0)
        response = _post(server, tenant.api_key)
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "provider_timeout"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_provider_is_502_unreachable(gateway: GatewayServer) -> None:
    tenant = sign_up(gateway)
    register(
        gateway,
        tenant.api_key,
        "custom",
        {
            "name": "gone",
            "api_key": provider_key(),
            "default_model": "m",
            "base_url": f"http://127.0.0.1:{_closed_port()}/v1",
        },
    )
    response = _post(gateway, tenant.api_key, {**CHAT, "model": "m"})
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "provider_unreachable"


def test_a_disconnect_mid_stream_closes_the_upstream_connection(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    upstream.script(hang_after=2)
    with (
        gateway.client(wired.api_key) as client,
        client.stream(
            "POST", "/v1/chat/completions", json={**CHAT, "stream": True}
        ) as response,
    ):
        assert response.status_code == 200
        first = next(response.iter_lines())
        assert first.startswith("data: ")
    assert upstream.wait_for_disconnects(1, timeout=10)


def test_a_stream_idle_past_its_timeout_ends_with_an_error_event(
    start_gateway: StartGateway, upstream: FakeUpstream
) -> None:
    with start_gateway(crp_upstream_stream_idle_timeout=0.3) as server:
        tenant = sign_up(server)
        register(
            server,
            tenant.api_key,
            "openai",
            {
                "api_key": provider_key(),
                "default_model": "gpt-4o",
                "base_url": upstream.openai_base_url,
            },
        )
        upstream.script(hang_after=2)
        started = time.monotonic()
        response = _post(server, tenant.api_key, {**CHAT, "stream": True})
    assert response.status_code == 200
    assert time.monotonic() - started < 10
    data = [line for line in response.text.splitlines() if line.startswith("data:")]
    assert any('"provider_timeout"' in line for line in data)
    assert "data: [DONE]" not in data  # a cut stream does not pretend to be complete


def test_a_misconfigured_credential_is_424_not_500(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    from sqlalchemy import update

    from crp_gateway.store.database import create_engine
    from crp_gateway.store.models import ProviderCredential
    from tests.support import run

    async def corrupt() -> None:
        engine = create_engine(gateway.settings.store_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    update(ProviderCredential)
                    .where(
                        ProviderCredential.tenant_id == wired.tenant.tenant_id,
                        ProviderCredential.name == "openai",
                    )
                    .values(key_version=ProviderCredential.key_version + 7)
                )
        finally:
            await engine.dispose()

    run(corrupt())
    time.sleep(gateway.settings.crp_provider_cache_seconds + 0.05)
    response = _post(gateway, wired.api_key)
    assert response.status_code == 424
    assert response.json()["error"]["code"] == "provider_misconfigured"
    assert upstream.requests == []


@pytest.mark.parametrize(
    ("path", "model", "events"),
    [
        ("/v1/chat/completions", "gpt-4o", 3),
        ("/v1/chat/completions", "claude-sonnet-4-5", 2),
        ("/v1/messages", "claude-sonnet-4-5", 3),
        ("/v1/messages", "gpt-4o", 3),
    ],
)
def test_chunks_are_relayed_as_they_arrive(
    gateway: GatewayServer,
    wired: WiredTenant,
    upstream: FakeUpstream,
    path: str,
    model: str,
    events: int,
) -> None:
    """The provider sends a few events and then stalls: a relay that buffered
    would deliver nothing; ours delivers them while the provider still hangs."""
    upstream.script(hang_after=4)
    body = {
        "model": model,
        "max_tokens": 32,
        "stream": True,
        "messages": [{"role": "user", "content": "one two three four five six"}],
    }
    received = 0
    with (
        gateway.client(wired.api_key, timeout=10) as client,
        client.stream("POST", path, json=body) as response,
    ):
        for line in response.iter_lines():
            received += line.startswith("data:")
            if received >= events:
                break
    assert received >= events
    assert upstream.wait_for_disconnects(1, timeout=10)
