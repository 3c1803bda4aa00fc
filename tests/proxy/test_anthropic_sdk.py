"""The official anthropic SDK against ``/v1/messages``, native and translated."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.proxy.conftest import WiredTenant
from tests.proxy.test_openai_sdk import assert_only_provider_credentials
from tests.support import GatewayServer

MODELS = {
    "anthropic": "claude-sonnet-4-5",
    "openai": "gpt-4o",
    "custom": "local/llama3.1",
}
TOOL = {
    "name": "lookup",
    "description": "Look something up.",
    "input_schema": {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    },
}


def sdk(gateway: GatewayServer, wired: WiredTenant) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=gateway.url, api_key=wired.api_key, max_retries=0
    )


@pytest.mark.parametrize("kind", ["anthropic", "openai", "custom"])
def test_messages(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream, kind: str
) -> None:
    message = sdk(gateway, wired).messages.create(
        model=MODELS[kind],
        max_tokens=64,
        system="Be brief.",
        messages=[{"role": "user", "content": "hello there"}],
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "echo: hello there"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 4
    assert message.usage.output_tokens == 3
    assert_only_provider_credentials(upstream, wired, kind)
    expected = "/v1/messages" if kind == "anthropic" else "/v1/chat/completions"
    assert upstream.last_request.path == expected


@pytest.mark.parametrize("kind", ["anthropic", "openai", "custom"])
def test_streaming_messages(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream, kind: str
) -> None:
    with sdk(gateway, wired).messages.stream(
        model=MODELS[kind],
        max_tokens=64,
        messages=[{"role": "user", "content": "one two three"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "echo: one two three"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 4
    assert_only_provider_credentials(upstream, wired, kind)


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_tool_use_round_trip(
    gateway: GatewayServer, wired: WiredTenant, kind: str
) -> None:
    client = sdk(gateway, wired)
    first = client.messages.create(
        model=MODELS[kind],
        max_tokens=64,
        tools=[TOOL],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "find cats"}],
    )
    use = next(block for block in first.content if block.type == "tool_use")
    assert first.stop_reason == "tool_use"
    assert use.input == {"text": "find cats"}
    second = client.messages.create(
        model=MODELS[kind],
        max_tokens=64,
        tools=[TOOL],  # type: ignore[list-item]
        messages=[
            {"role": "user", "content": "find cats"},
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},  # type: ignore[misc]
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": use.id,
                        "content": "two cats",
                    }
                ],
            },
        ],
    )
    assert second.content[0].text == "echo: two cats"  # type: ignore[union-attr]


def test_streamed_tool_use_through_openai(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    with sdk(gateway, wired).messages.stream(
        model="gpt-4o",
        max_tokens=64,
        tools=[TOOL],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "find some dogs please"}],
    ) as stream:
        final = stream.get_final_message()
    use = next(block for block in final.content if block.type == "tool_use")
    assert use.input == {"text": "find some dogs please"}  # type: ignore[union-attr]


def test_the_key_is_accepted_in_x_api_key(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/messages",
        headers={"x-api-key": wired.api_key, "anthropic-version": "2023-06-01"},
        json={
            "model": "claude-sonnet-4-5",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}],
        },
    )
    assert response.status_code == 200, response.text
    assert upstream.last_request.headers["x-api-key"] == wired.anthropic_key
    assert upstream.last_request.headers["anthropic-version"] == "2023-06-01"


def test_errors_on_messages_have_anthropics_envelope(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    with pytest.raises(anthropic.BadRequestError) as raised:
        sdk(gateway, wired).messages.create(
            model="claude-sonnet-4-5",
            max_tokens=16,
            messages=[{"role": "system", "content": "no"}],  # type: ignore[typeddict-item]
        )
    body = raised.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "messages[0].role" in body["error"]["message"]
