"""The official openai SDK against the gateway, through every kind of provider."""

from __future__ import annotations

import json
import re

import openai
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.proxy.conftest import WiredTenant
from tests.support import GatewayServer

MODELS = {
    "openai": "gpt-4o",
    "anthropic": "claude-sonnet-4-5",
    "custom": "local/llama3.1",
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look something up.",
        "parameters": {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
        },
    },
}


def sdk(gateway: GatewayServer, wired: WiredTenant, **kwargs: object) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{gateway.url}/v1", api_key=wired.api_key, max_retries=0, **kwargs
    )


def provider_key_of(wired: WiredTenant, kind: str) -> str:
    return {
        "openai": wired.openai_key,
        "anthropic": wired.anthropic_key,
        "custom": wired.custom_key,
    }[kind]


def assert_only_provider_credentials(
    upstream: FakeUpstream, wired: WiredTenant, kind: str
) -> None:
    """Axiom 4's credential half: the provider saw its own key and nothing else."""
    assert upstream.requests, "the provider was never called"
    for recorded in upstream.requests:
        headers = {name.lower(): value for name, value in recorded.headers.items()}
        presented = headers.get("authorization", "") + headers.get("x-api-key", "")
        assert provider_key_of(wired, kind) in presented
        blob = json.dumps(headers) + recorded.body.decode("utf-8", "replace")
        assert wired.api_key not in blob
        assert "crp_gw_" not in blob
        for forbidden in ("cookie", "x-forwarded-for", "crp-safety-nonce", "x-client"):
            assert forbidden not in headers


@pytest.mark.parametrize("kind", ["openai", "anthropic", "custom"])
def test_chat(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream, kind: str
) -> None:
    client = sdk(
        gateway,
        wired,
        default_headers={
            "Cookie": "session=abc",
            "X-Forwarded-For": "203.0.113.9",
            "CRP-Safety-Nonce": "nonce-1",
            "X-Client": "mine",
        },
    )
    completion = client.chat.completions.create(
        model=MODELS[kind],
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello there"},
        ],
        max_tokens=50,
    )
    assert completion.choices[0].message.content == "echo: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 4  # "Be brief." + "hello there"
    assert completion.usage.completion_tokens == 3
    assert_only_provider_credentials(upstream, wired, kind)
    sent = upstream.last_request
    expected_path = "/v1/messages" if kind == "anthropic" else "/v1/chat/completions"
    assert sent.path == expected_path
    assert sent.json["model"] == MODELS[kind].removeprefix("local/")


@pytest.mark.parametrize("kind", ["openai", "anthropic", "custom"])
def test_streaming_chat(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream, kind: str
) -> None:
    client = sdk(gateway, wired)
    stream = client.chat.completions.create(
        model=MODELS[kind],
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two three"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.choices for c in chunks), "usage chunk shown though not asked for"
    assert_only_provider_credentials(upstream, wired, kind)


@pytest.mark.parametrize("kind", ["openai", "anthropic", "custom"])
def test_streaming_usage_when_asked(
    gateway: GatewayServer, wired: WiredTenant, kind: str
) -> None:
    client = sdk(gateway, wired)
    chunks = list(
        client.chat.completions.create(
            model=MODELS[kind],
            messages=[{"role": "user", "content": "count these words"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = chunks[-1].usage
    assert chunks[-1].choices == []
    assert usage is not None
    assert usage.prompt_tokens == 3
    assert usage.completion_tokens == 4


@pytest.mark.parametrize("kind", ["openai", "anthropic", "custom"])
def test_tools(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream, kind: str
) -> None:
    client = sdk(gateway, wired)
    first = client.chat.completions.create(
        model=MODELS[kind],
        messages=[{"role": "user", "content": "find cats"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    )
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "lookup"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"text": "find cats"}  # type: ignore[union-attr]
    second = client.chat.completions.create(
        model=MODELS[kind],
        messages=[
            {"role": "user", "content": "find cats"},
            first.choices[0].message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "three cats"},
        ],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    )
    assert second.choices[0].message.content == "echo: three cats"
    if kind == "anthropic":
        sent = upstream.last_request.json
        assert sent["messages"][-1]["content"][0]["type"] == "tool_result"
        assert sent["tools"][0]["input_schema"]["required"] == ["text"]


@pytest.mark.parametrize("kind", ["openai", "anthropic", "custom"])
def test_streamed_tool_call_deltas(
    gateway: GatewayServer, wired: WiredTenant, kind: str
) -> None:
    client = sdk(gateway, wired)
    with client.chat.completions.stream(
        model=MODELS[kind],
        messages=[{"role": "user", "content": "find some dogs please"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert json.loads(call.function.arguments) == {"text": "find some dogs please"}


def test_unknown_fields_pass_through_unchanged(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    client = sdk(gateway, wired)
    client.chat.completions.create(
        model="gpt-4o",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "describe"},
                    {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                ],
            }
        ],
        seed=7,
        n=2,
        response_format={"type": "json_object"},
        max_completion_tokens=20,
        extra_body={"vendor_knob": {"depth": 3}},
    )
    sent = upstream.last_request.json
    assert sent["seed"] == 7
    assert sent["n"] == 2
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["max_completion_tokens"] == 20
    assert sent["vendor_knob"] == {"depth": 3}
    assert (
        sent["messages"][0]["content"][1]["image_url"]["url"] == "https://x.test/a.png"
    )


@pytest.mark.parametrize("kind", ["openai", "custom"])
def test_embeddings(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream, kind: str
) -> None:
    client = sdk(gateway, wired)
    model = "openai/text-embedding-3-small" if kind == "openai" else "local/embed"
    result = client.embeddings.create(model=model, input=["alpha", "beta gamma"])
    assert len(result.data) == 2
    assert len(result.data[0].embedding) > 0
    assert result.data[0].embedding != result.data[1].embedding
    assert result.usage.prompt_tokens == 3
    assert_only_provider_credentials(upstream, wired, kind)


def test_embeddings_on_anthropic_are_refused(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    client = sdk(gateway, wired)
    with pytest.raises(openai.BadRequestError) as raised:
        client.embeddings.create(model="anthropic/claude-sonnet-4-5", input="x")
    assert raised.value.code == "unsupported_endpoint"
    assert upstream.requests == []


def test_models(gateway: GatewayServer, wired: WiredTenant) -> None:
    client = sdk(gateway, wired)
    ids = {model.id for model in client.models.list()}
    for expected in (
        "gpt-4o",
        "openai/gpt-4o",
        "claude-sonnet-4-5",
        "anthropic/claude-sonnet-4-5",
        "llama3.1",
        "local/llama3.1",
    ):
        assert expected in ids
    assert any(i.startswith("openai/") and i != "openai/gpt-4o" for i in ids), (
        "the upstream's own model list is missing"
    )


def test_server_timing_tells_gateway_and_upstream_apart(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    upstream.script(delay=0.05, times=1)
    client = sdk(gateway, wired)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )
    timing = raw.headers["server-timing"]
    match = re.fullmatch(r"gateway;dur=([\d.]+), upstream;dur=([\d.]+)", timing)
    assert match, timing
    assert float(match.group(2)) >= 50.0
