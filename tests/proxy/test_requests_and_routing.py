"""Validation before any provider is called, and which provider a model reaches."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.proxy.conftest import WiredTenant, register
from tests.support import GatewayServer, provider_key, sign_up


@pytest.mark.parametrize(
    ("content", "param"),
    [
        (b"{broken", None),
        (b"[]", None),
        (b'{"model": "gpt-4o"}', "messages"),
        (b'{"model": "gpt-4o", "messages": "hi"}', "messages"),
        (b'{"model": "gpt-4o", "messages": []}', "messages"),
        (b'{"model": "gpt-4o", "messages": [{"content": "x"}]}', "messages[0].role"),
        (b'{"model": "gpt-4o", "messages": [{"role": "wizard"}]}', "messages[0].role"),
        (b'{"model": "gpt-4o", "messages": ["text"]}', "messages[0]"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "model"),
        (
            b'{"model": "gpt-4o", "stream": "yes", "messages": [{"role": "user"}]}',
            "stream",
        ),
    ],
)
def test_bad_chat_requests_are_400_before_any_provider_call(
    gateway: GatewayServer,
    wired: WiredTenant,
    upstream: FakeUpstream,
    content: bytes,
    param: str | None,
) -> None:
    with gateway.client(wired.api_key) as client:
        response = client.post(
            "/v1/chat/completions",
            content=content,
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error.get("param") == param
    if param:
        assert param in error["message"]
    assert upstream.requests == []


def test_no_provider_configured_says_how_to_add_one(gateway: GatewayServer) -> None:
    tenant = sign_up(gateway)
    client = openai.OpenAI(
        base_url=f"{gateway.url}/v1", api_key=tenant.api_key, max_retries=0
    )
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
    assert raised.value.code == "no_provider_configured"
    assert "POST /v1/providers/" in raised.value.message


def _chat(gateway: GatewayServer, api_key: str, model: str) -> Any:
    with gateway.client(api_key) as client:
        return client.post(
            "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        )


@pytest.mark.parametrize(
    ("model", "path", "sent_model"),
    [
        ("openai/gpt-4o-mini", "/v1/chat/completions", "gpt-4o-mini"),
        ("anthropic/claude-opus-4-1", "/v1/messages", "claude-opus-4-1"),
        (
            "local/meta-llama/Llama-3-8B",
            "/v1/chat/completions",
            "meta-llama/Llama-3-8B",
        ),
        ("llama3.1", "/v1/chat/completions", "llama3.1"),  # a default model
        ("o3-mini", "/v1/chat/completions", "o3-mini"),  # the openai family
        ("claude-haiku-4-5", "/v1/messages", "claude-haiku-4-5"),  # anthropic family
    ],
)
def test_routing(
    gateway: GatewayServer,
    wired: WiredTenant,
    upstream: FakeUpstream,
    model: str,
    path: str,
    sent_model: str,
) -> None:
    response = _chat(gateway, wired.api_key, model)
    assert response.status_code == 200, response.text
    assert upstream.last_request.path == path
    assert upstream.last_request.json["model"] == sent_model


def test_an_unknown_provider_prefix_is_model_not_found(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    response = _chat(gateway, wired.api_key, "mistral/large")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
    assert upstream.requests == []


def test_a_model_no_rule_picks_is_model_not_found(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    response = _chat(gateway, wired.api_key, "mystery-model")
    assert response.status_code == 404
    assert "provider/model" in response.json()["error"]["message"]


def test_the_only_provider_takes_any_model(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    tenant = sign_up(gateway)
    register(
        gateway,
        tenant.api_key,
        "custom",
        {
            "name": "solo",
            "api_key": provider_key(),
            "default_model": "qwen",
            "base_url": upstream.openai_base_url,
        },
    )
    response = _chat(gateway, tenant.api_key, "mystery-model")
    assert response.status_code == 200
    assert upstream.last_request.json["model"] == "mystery-model"


def test_an_inference_key_may_call_models(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    with gateway.client(wired.api_key) as client:
        inference = client.post("/v1/keys", json={"name": "app"}).json()["api_key"]
    assert _chat(gateway, inference, "gpt-4o").status_code == 200


def test_a_keys_rpm_limit_is_enforced(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    with gateway.client(wired.api_key) as client:
        limited = client.post("/v1/keys", json={"name": "slow", "rpm_limit": 2}).json()[
            "api_key"
        ]
    statuses = [_chat(gateway, limited, "gpt-4o").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
