"""Tests for the OpenAI <-> Anthropic translation layer.

Translated documents are validated against the official SDK types (tests only;
the package never imports the SDKs) so shapes are proven, not guessed. The SDK
request types are TypedDicts whose ``Iterable`` fields pydantic validates
lazily, hence ``_materialise``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from anthropic.types import Message, RawMessageStreamEvent
from anthropic.types.message_create_params import (
    MessageCreateParamsNonStreaming,
    MessageCreateParamsStreaming,
)
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.completion_create_params import (
    CompletionCreateParamsNonStreaming,
    CompletionCreateParamsStreaming,
)
from pydantic import TypeAdapter

from crp_gateway.providers.translate import (
    AnthropicToOpenAIStream,
    OpenAIToAnthropicStream,
    ProviderStreamError,
    TokenUsage,
    TranslationError,
    anthropic_request_to_openai,
    anthropic_response_to_openai,
    encode_anthropic_event,
    openai_request_to_anthropic,
    openai_response_to_anthropic,
)

ANTHROPIC_REQUEST = TypeAdapter(MessageCreateParamsNonStreaming)
ANTHROPIC_STREAM_REQUEST = TypeAdapter(MessageCreateParamsStreaming)
OPENAI_REQUEST = TypeAdapter(CompletionCreateParamsNonStreaming)
OPENAI_STREAM_REQUEST = TypeAdapter(CompletionCreateParamsStreaming)
ANTHROPIC_EVENT = TypeAdapter(RawMessageStreamEvent)

PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="  # noqa: E501
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


def _materialise(value: Any) -> Any:
    """Walk a validated TypedDict so lazily validated iterables are checked."""
    if isinstance(value, Mapping):
        return {key: _materialise(item) for key, item in value.items()}
    if isinstance(value, list | tuple | Iterator) or hasattr(value, "__next__"):
        return [_materialise(item) for item in value]
    return value


def to_anthropic(body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Translate and prove the result is a valid Anthropic request."""
    kwargs.setdefault("model", "claude-sonnet-4-5")
    kwargs.setdefault("default_max_tokens", 4096)
    out = openai_request_to_anthropic(body, **kwargs)
    adapter = ANTHROPIC_STREAM_REQUEST if out.get("stream") else ANTHROPIC_REQUEST
    _materialise(adapter.validate_python(out))
    return out


def to_openai(body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Translate and prove the result is a valid OpenAI request."""
    kwargs.setdefault("model", "gpt-4o")
    out = anthropic_request_to_openai(body, **kwargs)
    adapter = OPENAI_STREAM_REQUEST if out.get("stream") else OPENAI_REQUEST
    _materialise(adapter.validate_python(out))
    return out


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def openai_body(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": "alias", "messages": list(messages), **fields}


def anthropic_body(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": "alias", "max_tokens": 256, "messages": list(messages), **fields}


def openai_tool(name: str = "get_weather") -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": "Weather for a city",
            "parameters": WEATHER_SCHEMA,
        },
    }


def anthropic_tool(name: str = "get_weather") -> dict[str, Any]:
    return {
        "name": name,
        "description": "Weather for a city",
        "input_schema": WEATHER_SCHEMA,
    }


def text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


# ============================================ OpenAI request -> Anthropic request


def test_system_and_developer_messages_are_hoisted_in_order() -> None:
    out = to_anthropic(
        openai_body(
            {"role": "system", "content": "You are terse."},
            user("hi"),
            {
                "role": "developer",
                "content": [{"type": "text", "text": "Answer in French."}],
            },
            user("again"),
        )
    )
    assert out["system"] == [
        text_block("You are terse."),
        text_block("Answer in French."),
    ]
    # The two user messages are now adjacent and merge into one turn.
    assert out["messages"] == [
        {"role": "user", "content": [text_block("hi"), text_block("again")]}
    ]


def test_minimal_request_uses_model_argument_and_default_max_tokens() -> None:
    out = to_anthropic(
        openai_body(user("hello")), model="claude-x", default_max_tokens=777
    )
    assert out == {
        "model": "claude-x",
        "max_tokens": 777,
        "messages": [{"role": "user", "content": [text_block("hello")]}],
    }


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, 4096),
        ({"max_tokens": 100}, 100),
        ({"max_completion_tokens": 200}, 200),
        ({"max_completion_tokens": 200, "max_tokens": 100}, 200),
        ({"max_completion_tokens": None, "max_tokens": 50}, 50),
    ],
)
def test_max_tokens(fields: dict[str, Any], expected: int) -> None:
    assert to_anthropic(openai_body(user("x"), **fields))["max_tokens"] == expected


@pytest.mark.parametrize("value", [0, -1, "10", True, 1.5])
def test_invalid_max_tokens(value: object) -> None:
    with pytest.raises(TranslationError) as info:
        openai_request_to_anthropic(
            openai_body(user("x"), max_tokens=value), model="m", default_max_tokens=1
        )
    assert info.value.field == "max_tokens"


@pytest.mark.parametrize(
    ("stop", "expected"),
    [("END", ["END"]), (["a", "b"], ["a", "b"]), (None, None), ([], None)],
)
def test_stop_sequences(stop: object, expected: list[str] | None) -> None:
    out = to_anthropic(openai_body(user("x"), stop=stop))
    assert out.get("stop_sequences") == expected


def test_sampling_stream_and_user_pass_through() -> None:
    out = to_anthropic(
        openai_body(
            user("x"),
            temperature=0.2,
            top_p=0.9,
            stream=True,
            stream_options={"include_usage": True},
            user="tenant-user-42",
        )
    )
    assert out["temperature"] == 0.2
    assert out["top_p"] == 0.9
    assert out["stream"] is True
    assert out["metadata"] == {"user_id": "tenant-user-42"}
    assert "stream_options" not in out


def test_safety_identifier_is_used_when_user_is_absent() -> None:
    out = to_anthropic(openai_body(user("x"), safety_identifier="hash-1"))
    assert out["metadata"] == {"user_id": "hash-1"}


def test_temperature_above_anthropic_range_is_rejected() -> None:
    with pytest.raises(TranslationError, match=r"\[0, 1\]") as info:
        to_anthropic(openai_body(user("x"), temperature=1.5))
    assert info.value.field == "temperature"


def test_hint_only_fields_are_dropped() -> None:
    out = to_anthropic(
        openai_body(
            user("x"),
            n=1,
            seed=7,
            frequency_penalty=0.5,
            presence_penalty=0.1,
            logprobs=False,
            response_format={"type": "text"},
            service_tier="auto",
            store=False,
            metadata={"k": "v"},
            reasoning_effort="low",
            modalities=["text"],
        )
    )
    assert set(out) == {"model", "max_tokens", "messages"}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("n", 2, "n=1"),
        ("logprobs", True, "log probabilities"),
        ("top_logprobs", 3, "log probabilities"),
        ("logit_bias", {"1234": -100}, "logit_bias"),
        ("response_format", {"type": "json_object"}, "JSON mode"),
        (
            "response_format",
            {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
            "structured outputs",
        ),
        ("functions", [{"name": "f"}], "tools"),
        ("function_call", "auto", "tool_choice"),
        ("audio", {"voice": "alloy", "format": "wav"}, "audio"),
        ("modalities", ["text", "audio"], "modality"),
        ("web_search_options", {}, "web search"),
    ],
)
def test_fields_that_would_change_semantics_are_rejected(
    field: str, value: object, message: str
) -> None:
    with pytest.raises(TranslationError, match=message) as info:
        openai_request_to_anthropic(
            openai_body(user("x"), **{field: value}), model="m", default_max_tokens=1
        )
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


def test_text_parts_and_empty_text_are_handled() -> None:
    out = to_anthropic(
        openai_body(
            user([{"type": "text", "text": "one"}, {"type": "text", "text": ""}]),
            {"role": "assistant", "content": ""},
            user([{"type": "text", "text": "two"}]),
        )
    )
    # The empty assistant message vanishes, so the user turns merge.
    assert out["messages"] == [
        {"role": "user", "content": [text_block("one"), text_block("two")]}
    ]


def test_consecutive_assistant_messages_merge() -> None:
    out = to_anthropic(
        openai_body(
            user("q"),
            {"role": "assistant", "content": "part one"},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
        )
    )
    assert [m["role"] for m in out["messages"]] == ["user", "assistant"]
    assert out["messages"][1]["content"] == [text_block("part one"), text_block("no")]


@pytest.mark.parametrize(
    ("url", "source"),
    [
        (
            f"data:image/png;base64,{PNG_B64}",
            {"type": "base64", "media_type": "image/png", "data": PNG_B64},
        ),
        (
            "data:image/jpg;base64,AAAA",
            {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"},
        ),
        (
            "DATA:Image/WEBP;charset=binary;base64,AAAA",
            {"type": "base64", "media_type": "image/webp", "data": "AAAA"},
        ),
        (
            "https://example.com/cat.png",
            {"type": "url", "url": "https://example.com/cat.png"},
        ),
        (
            "http://example.com/c.gif",
            {"type": "url", "url": "http://example.com/c.gif"},
        ),
    ],
)
def test_image_parts(url: str, source: dict[str, Any]) -> None:
    part = {"type": "image_url", "image_url": {"url": url, "detail": "high"}}
    out = to_anthropic(openai_body(user([{"type": "text", "text": "what?"}, part])))
    assert out["messages"][0]["content"] == [
        text_block("what?"),
        {"type": "image", "source": source},
    ]


@pytest.mark.parametrize(
    ("part", "field", "message"),
    [
        (
            {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AAAA"}},
            "messages[0].content[0].image_url.url",
            "media type 'image/bmp'",
        ),
        (
            {"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}},
            "messages[0].content[0].image_url.url",
            "base64",
        ),
        (
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,"}},
            "messages[0].content[0].image_url.url",
            "non-empty",
        ),
        (
            {"type": "image_url", "image_url": {"url": "ftp://example.com/a.png"}},
            "messages[0].content[0].image_url.url",
            "http",
        ),
        (
            {"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}},
            "messages[0].content[0].type",
            "'input_audio'",
        ),
        (
            {"type": "file", "file": {"file_id": "f"}},
            "messages[0].content[0].type",
            "'file'",
        ),
    ],
)
def test_unsupported_user_parts(part: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(TranslationError, match=message) as info:
        openai_request_to_anthropic(
            openai_body(user([part])), model="m", default_max_tokens=1
        )
    assert info.value.field == field


def _tool_conversation() -> list[dict[str, Any]]:
    return [
        user("Weather in Paris and Rome?"),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "arguments": '{"city": "Paris"}',
                    },
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {
            "role": "tool",
            "tool_call_id": "call_2",
            "content": [{"type": "text", "text": "21C"}],
        },
        user("Thanks, and tomorrow?"),
    ]


def test_tool_calls_and_tool_results() -> None:
    out = to_anthropic(openai_body(*_tool_conversation(), tools=[openai_tool()]))
    assert out["messages"] == [
        {"role": "user", "content": [text_block("Weather in Paris and Rome?")]},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "call_2",
                    "name": "get_weather",
                    "input": {"city": "Rome"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "call_2",
                    "content": [text_block("21C")],
                },
                text_block("Thanks, and tomorrow?"),
            ],
        },
    ]
    assert out["tools"] == [
        {
            "name": "get_weather",
            "input_schema": WEATHER_SCHEMA,
            "description": "Weather for a city",
        }
    ]
    assert "tool_choice" not in out


def test_tool_results_are_moved_before_text_in_a_merged_turn() -> None:
    messages = _tool_conversation()
    # A user message sneaking in between the tool call and its results.
    messages.insert(2, user("(hurry)"))
    content = to_anthropic(openai_body(*messages))["messages"][2]["content"]
    assert [block["type"] for block in content] == [
        "tool_result",
        "tool_result",
        "text",
        "text",
    ]
    assert [block.get("text") for block in content[2:]] == [
        "(hurry)",
        "Thanks, and tomorrow?",
    ]


def test_empty_tool_result_and_empty_arguments() -> None:
    out = to_anthropic(
        openai_body(
            user("ping the server"),
            {
                "role": "assistant",
                "content": "Pinging.",
                "tool_calls": [
                    {
                        "id": "c",
                        "type": "function",
                        "function": {"name": "ping", "arguments": ""},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c", "content": ""},
        )
    )
    assert out["messages"][1]["content"] == [
        text_block("Pinging."),
        {"type": "tool_use", "id": "c", "name": "ping", "input": {}},
    ]
    assert out["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "c"}
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ('{"city": "Par', "not valid JSON"),
        ("[1, 2]", "JSON object, got list"),
        ('"Paris"', "JSON object, got str"),
        ("{'city': 'Paris'}", "not valid JSON"),
    ],
)
def test_invalid_tool_call_arguments(arguments: str, message: str) -> None:
    call = {
        "id": "c",
        "type": "function",
        "function": {"name": "f", "arguments": arguments},
    }
    body = openai_body(user("x"), {"role": "assistant", "tool_calls": [call]})
    with pytest.raises(TranslationError, match=message) as info:
        openai_request_to_anthropic(body, model="m", default_max_tokens=1)
    assert info.value.field == "messages[1].tool_calls[0].function.arguments"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"role": "function", "name": "f", "content": "x"}, "messages[0].role"),
        ({"role": "wizard", "content": "x"}, "messages[0].role"),
        ({"role": "tool", "content": "x"}, "messages[0].tool_call_id"),
        (
            {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}},
            "messages[0].function_call",
        ),
        (
            {
                "role": "assistant",
                "tool_calls": [{"id": "c", "type": "custom", "custom": {"name": "g"}}],
            },
            "messages[0].tool_calls[0].type",
        ),
        (
            {"role": "system", "content": [{"type": "image_url"}]},
            "messages[0].content[0].type",
        ),
        ("not an object", "messages[0]"),
    ],
)
def test_malformed_messages(message: Any, field: str) -> None:
    with pytest.raises(TranslationError) as info:
        openai_request_to_anthropic(
            openai_body(message), model="m", default_max_tokens=1
        )
    assert info.value.field == field


def test_missing_messages() -> None:
    with pytest.raises(TranslationError) as info:
        openai_request_to_anthropic({"model": "m"}, model="m", default_max_tokens=1)
    assert info.value.field == "messages"


def test_tool_without_parameters_gets_empty_object_schema() -> None:
    tool = {"type": "function", "function": {"name": "now"}}
    out = to_anthropic(openai_body(user("x"), tools=[tool]))
    assert out["tools"] == [
        {"name": "now", "input_schema": {"type": "object", "properties": {}}}
    ]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"tool_choice": "auto"}, {"type": "auto"}),
        ({"tool_choice": "none"}, {"type": "none"}),
        ({"tool_choice": "required"}, {"type": "any"}),
        (
            {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
            {"type": "tool", "name": "get_weather"},
        ),
        (
            {"tool_choice": "required", "parallel_tool_calls": False},
            {"type": "any", "disable_parallel_tool_use": True},
        ),
        (
            {"parallel_tool_calls": False},
            {"type": "auto", "disable_parallel_tool_use": True},
        ),
        ({"tool_choice": "none", "parallel_tool_calls": False}, {"type": "none"}),
        ({"parallel_tool_calls": True}, None),
    ],
)
def test_tool_choice(fields: dict[str, Any], expected: dict[str, Any] | None) -> None:
    out = to_anthropic(openai_body(user("x"), tools=[openai_tool()], **fields))
    assert out.get("tool_choice") == expected


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"tools": [openai_tool()], "tool_choice": "sometimes"}, "tool_choice"),
        (
            {
                "tools": [openai_tool()],
                "tool_choice": {"type": "allowed_tools", "allowed_tools": {}},
            },
            "tool_choice",
        ),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": [{"type": "custom", "custom": {"name": "g"}}]}, "tools[0].type"),
        ({"tools": [{"type": "function", "function": {}}]}, "tools[0].function.name"),
    ],
)
def test_invalid_tools(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(TranslationError) as info:
        openai_request_to_anthropic(
            openai_body(user("x"), **fields), model="m", default_max_tokens=1
        )
    assert info.value.field == field


def test_tool_choice_auto_without_tools_is_dropped() -> None:
    out = to_anthropic(openai_body(user("x"), tool_choice="auto", tools=[]))
    assert "tool_choice" not in out
    assert "tools" not in out


# ========================================= Anthropic response -> OpenAI response


def anthropic_message(**overrides: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [text_block("Hello!")],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 6},
    }
    message.update(overrides)
    Message.model_validate(message)  # the fixture itself is a real shape
    return message


def to_chat_completion(resp: dict[str, Any]) -> dict[str, Any]:
    out = anthropic_response_to_openai(resp, model="my-alias", created=1_700_000_000)
    ChatCompletion.model_validate(out)
    return out


def test_text_response() -> None:
    out = to_chat_completion(
        anthropic_message(content=[text_block("Hello"), text_block(", world")])
    )
    assert out == {
        "id": "chatcmpl-msg_01XFDUDYJgAACzvnptvVoYEL",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "my-alias",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello, world",
                    "refusal": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": 6,
            "total_tokens": 18,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
    }


def test_tool_use_response() -> None:
    out = to_chat_completion(
        anthropic_message(
            content=[
                {"type": "thinking", "thinking": "Let me look.", "signature": "sig"},
                text_block("Checking."),
                {
                    "type": "tool_use",
                    "id": "toolu_01A",
                    "name": "get_weather",
                    "input": {"city": "Zürich", "days": [1, 2]},
                },
            ],
            stop_reason="tool_use",
        )
    )
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Checking."
    assert choice["message"]["tool_calls"] == [
        {
            "id": "toolu_01A",
            "type": "function",
            "function": {
                "name": "get_weather",
                "arguments": '{"city":"Zürich","days":[1,2]}',
            },
        }
    ]


def test_tool_only_response_has_null_content() -> None:
    out = to_chat_completion(
        anthropic_message(
            content=[{"type": "tool_use", "id": "t", "name": "now", "input": {}}],
            stop_reason="tool_use",
        )
    )
    message = out["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"][0]["function"]["arguments"] == "{}"


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        (None, "stop"),
    ],
)
def test_stop_reason_to_finish_reason(
    stop_reason: str | None, finish_reason: str
) -> None:
    out = to_chat_completion(anthropic_message(stop_reason=stop_reason))
    assert out["choices"][0]["finish_reason"] == finish_reason


def test_usage_includes_cache_tokens() -> None:
    usage = {
        "input_tokens": 10,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 1000,
        "output_tokens": 7,
    }
    out = to_chat_completion(anthropic_message(usage=usage))
    assert out["usage"] == {
        "prompt_tokens": 1110,
        "completion_tokens": 7,
        "total_tokens": 1117,
        "prompt_tokens_details": {"cached_tokens": 1000},
    }


# ============================================ Anthropic stream -> OpenAI chunks

ANTHROPIC_TOOL_STREAM: list[dict[str, Any]] = [
    {
        "type": "message_start",
        "message": {
            "id": "msg_014p7gG3wDgGV9EUtLvnow3U",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 472,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 100,
                "output_tokens": 2,
            },
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": text_block("")},
    {"type": "ping"},
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "Okay"},
    },
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": ", let me check."},
    },
    {"type": "content_block_stop", "index": 0},
    {
        "type": "content_block_start",
        "index": 1,
        "content_block": {
            "type": "tool_use",
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "name": "get_weather",
            "input": {},
        },
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": ""},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": '{"city": '},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": '"San Fra'},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": 'ncisco"}'},
    },
    {"type": "content_block_stop", "index": 1},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 89},
    },
    {"type": "message_stop"},
]


def run_anthropic_stream(
    events: list[dict[str, Any]], *, include_usage: bool
) -> tuple[AnthropicToOpenAIStream, list[dict[str, Any]]]:
    stream = AnthropicToOpenAIStream(
        model="my-alias", created=1_700_000_000, include_usage=include_usage
    )
    chunks: list[dict[str, Any]] = []
    for event in events:
        if event["type"] != "ping":
            ANTHROPIC_EVENT.validate_python(event)  # the fixture is a real shape
        chunks.extend(stream.process(event))
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
    return stream, chunks


def test_anthropic_stream_with_text_and_tool_call() -> None:
    stream, chunks = run_anthropic_stream(ANTHROPIC_TOOL_STREAM, include_usage=True)

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-msg_014p7gG3wDgGV9EUtLvnow3U",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": "my-alias",
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            ],
            "usage": None,
        }

    def arguments(fragment: str) -> dict[str, Any]:
        return chunk(
            {"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}
        )

    assert chunks == [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Okay"}),
        chunk({"content": ", let me check."}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
        arguments('{"city": '),
        arguments('"San Fra'),
        arguments('ncisco"}'),
        chunk({}, "tool_calls"),
        {
            "id": "chatcmpl-msg_014p7gG3wDgGV9EUtLvnow3U",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": "my-alias",
            "choices": [],
            "usage": {
                "prompt_tokens": 572,
                "completion_tokens": 89,
                "total_tokens": 661,
                "prompt_tokens_details": {"cached_tokens": 100},
            },
        },
    ]
    assert stream.done
    assert stream.finish_reason == "tool_calls"
    assert stream.usage == TokenUsage(
        prompt_tokens=572, completion_tokens=89, cached_tokens=100
    )
    joined = "".join(
        c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
        for c in chunks
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    )
    assert json.loads(joined) == {"city": "San Francisco"}


def test_anthropic_stream_without_include_usage_has_no_usage() -> None:
    stream, chunks = run_anthropic_stream(ANTHROPIC_TOOL_STREAM, include_usage=False)
    assert all("usage" not in c for c in chunks)
    assert all(c["choices"] for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    # Usage is still tracked for billing.
    assert stream.usage.completion_tokens == 89


def test_anthropic_stream_two_tool_calls_and_thinking() -> None:
    start = ANTHROPIC_TOOL_STREAM[0]
    events = [
        start,
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "Two cities..."},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "EqQB"},
        },
        {"type": "content_block_stop", "index": 0},
    ]
    for block_index, (tool_id, city) in enumerate(
        [("toolu_a", "Paris"), ("toolu_b", "Rome")], 1
    ):
        events += [
            {
                "type": "content_block_start",
                "index": block_index,
                "content_block": {
                    "type": "tool_use",
                    "id": tool_id,
                    "name": "get_weather",
                    "input": {},
                },
            },
            {
                "type": "content_block_delta",
                "index": block_index,
                "delta": {
                    "type": "input_json_delta",
                    "partial_json": f'{{"city":"{city}"}}',
                },
            },
            {"type": "content_block_stop", "index": block_index},
        ]
    events += [
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {
                "output_tokens": 40,
                "input_tokens": 480,
                "cache_read_input_tokens": None,
            },
        },
        {"type": "message_stop"},
    ]
    stream, chunks = run_anthropic_stream(events, include_usage=False)
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "toolu_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":"Paris"}'}}]},
        {
            "tool_calls": [
                {
                    "index": 1,
                    "id": "toolu_b",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 1, "function": {"arguments": '{"city":"Rome"}'}}]},
        {},
    ]
    # Cumulative input_tokens from message_delta win; a null cache count keeps
    # the message_start value.
    assert stream.usage == TokenUsage(
        prompt_tokens=580, completion_tokens=40, cached_tokens=100
    )


def test_anthropic_stream_max_tokens_and_missing_message_delta() -> None:
    events = [
        ANTHROPIC_TOOL_STREAM[0],
        ANTHROPIC_TOOL_STREAM[1],
        ANTHROPIC_TOOL_STREAM[3],
    ]
    _, chunks = run_anthropic_stream(
        [
            *events,
            {
                "type": "message_delta",
                "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
                "usage": {"output_tokens": 1},
            },
            {"type": "message_stop"},
        ],
        include_usage=False,
    )
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    # A stream that skips message_delta still ends with a finish_reason.
    _, chunks = run_anthropic_stream(
        [*events, {"type": "message_stop"}], include_usage=True
    )
    assert [
        c["choices"][0]["finish_reason"] if c["choices"] else "usage" for c in chunks
    ] == [
        None,
        None,
        "stop",
        "usage",
    ]


def test_anthropic_stream_error_event_raises() -> None:
    stream = AnthropicToOpenAIStream(model="m", created=0)
    stream.process(ANTHROPIC_TOOL_STREAM[0])
    error = {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    with pytest.raises(ProviderStreamError) as info:
        stream.process(error)
    assert info.value.error_type == "overloaded_error"
    assert info.value.message == "Overloaded"
    assert not stream.done


def test_anthropic_stream_malformed_error_event_still_raises() -> None:
    stream = AnthropicToOpenAIStream(model="m", created=0)
    with pytest.raises(ProviderStreamError) as info:
        stream.process({"type": "error"})
    assert info.value.error_type == "api_error"


def test_anthropic_stream_requires_message_start_first() -> None:
    stream = AnthropicToOpenAIStream(model="m", created=0)
    assert stream.process({"type": "ping"}) == []
    with pytest.raises(TranslationError, match="before message_start"):
        stream.process(ANTHROPIC_TOOL_STREAM[3])


def test_anthropic_stream_ignores_unknown_events() -> None:
    stream = AnthropicToOpenAIStream(model="m", created=0)
    stream.process(ANTHROPIC_TOOL_STREAM[0])
    assert stream.process({"type": "brand_new_event", "data": 1}) == []


# ============================================ Anthropic request -> OpenAI request


def test_anthropic_minimal_request() -> None:
    out = to_openai(anthropic_body(user("Hello, Claude")), model="gpt-4o-mini")
    assert out == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hello, Claude"}],
        "max_completion_tokens": 256,
    }


def test_anthropic_max_tokens_field_is_configurable() -> None:
    out = to_openai(anthropic_body(user("x")), max_tokens_field="max_tokens")
    assert out["max_tokens"] == 256
    assert "max_completion_tokens" not in out


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        ("Be terse.", [{"role": "system", "content": "Be terse."}]),
        (
            [
                text_block("Be terse."),
                {
                    "type": "text",
                    "text": "Cite sources.",
                    "cache_control": {"type": "ephemeral"},
                },
            ],
            [{"role": "system", "content": "Be terse.\n\nCite sources."}],
        ),
        ("", []),
        ([], []),
    ],
)
def test_anthropic_system(system: Any, expected: list[dict[str, Any]]) -> None:
    out = to_openai(anthropic_body(user("x"), system=system))
    assert out["messages"] == [*expected, {"role": "user", "content": "x"}]


def test_anthropic_sampling_stop_stream_and_metadata() -> None:
    out = to_openai(
        anthropic_body(
            user("x"),
            temperature=0.5,
            top_p=0.8,
            top_k=40,
            stop_sequences=["\n\nHuman:"],
            stream=True,
            metadata={"user_id": "u-1"},
            thinking={"type": "enabled", "budget_tokens": 2048},
            service_tier="auto",
        )
    )
    assert out == {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "x"}],
        "max_completion_tokens": 256,
        "temperature": 0.5,
        "top_p": 0.8,
        "stop": ["\n\nHuman:"],
        "stream": True,
        "stream_options": {"include_usage": True},
        "user": "u-1",
    }


def test_anthropic_images() -> None:
    content = [
        text_block("Compare"),
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
        },
        {
            "type": "image",
            "source": {"type": "url", "url": "https://example.com/b.jpg"},
        },
    ]
    out = to_openai(anthropic_body(user(content)))
    assert out["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Compare"},
                {
                    "type": "image_url",
                    "image_url": {"url": f"data:image/png;base64,{PNG_B64}"},
                },
                {
                    "type": "image_url",
                    "image_url": {"url": "https://example.com/b.jpg"},
                },
            ],
        }
    ]


def test_anthropic_tool_use_and_results() -> None:
    out = to_openai(
        anthropic_body(
            user("Weather in Paris?"),
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "s"},
                    text_block("Let me check."),
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                ],
            },
            user(
                [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_2",
                        "content": [text_block("line 1"), text_block("line 2")],
                        "is_error": True,
                    },
                    {"type": "tool_result", "tool_use_id": "toolu_3"},
                    text_block("And tomorrow?"),
                ]
            ),
            tools=[anthropic_tool()],
            tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        )
    )
    assert out["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "arguments": '{"city":"Paris"}',
                    },
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "line 1\nline 2"},
        {"role": "tool", "tool_call_id": "toolu_3", "content": ""},
        {"role": "user", "content": "And tomorrow?"},
    ]
    assert out["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": WEATHER_SCHEMA,
                "description": "Weather for a city",
            },
        }
    ]
    assert out["tool_choice"] == "auto"
    assert out["parallel_tool_calls"] is False


def test_anthropic_assistant_with_only_tool_use_has_null_content() -> None:
    message = {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "t", "name": "now", "input": {}}],
    }
    out = to_openai(
        anthropic_body(user("time?"), message, tools=[anthropic_tool("now")])
    )
    assert out["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "t",
                "type": "function",
                "function": {"name": "now", "arguments": "{}"},
            }
        ],
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        (
            {"type": "tool", "name": "get_weather"},
            {"type": "function", "function": {"name": "get_weather"}},
        ),
    ],
)
def test_anthropic_tool_choice(choice: dict[str, Any], expected: object) -> None:
    out = to_openai(
        anthropic_body(user("x"), tools=[anthropic_tool()], tool_choice=choice)
    )
    assert out["tool_choice"] == expected
    assert "parallel_tool_calls" not in out


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"max_tokens": None}, "max_tokens"),
        (
            {"tools": [{"type": "web_search_20250305", "name": "web_search"}]},
            "tools[0].type",
        ),
        ({"tools": [{"name": "f"}]}, "tools[0].input_schema"),
        (
            {"tools": [anthropic_tool()], "tool_choice": {"type": "maybe"}},
            "tool_choice.type",
        ),
        ({"tool_choice": {"type": "any"}}, "tool_choice"),
        ({"container": "container_1"}, "container"),
        (
            {"mcp_servers": [{"type": "url", "url": "https://x", "name": "x"}]},
            "mcp_servers",
        ),
        (
            {"output_config": {"format": {"type": "json_schema", "schema": {}}}},
            "output_config.format",
        ),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
        ({"system": [{"type": "image"}]}, "system[0].type"),
    ],
)
def test_anthropic_invalid_requests(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(TranslationError) as info:
        anthropic_request_to_openai(anthropic_body(user("x"), **fields), model="m")
    assert info.value.field == field


@pytest.mark.parametrize(
    ("block", "field"),
    [
        (
            {
                "type": "document",
                "source": {"type": "text", "media_type": "text/plain", "data": "d"},
            },
            "messages[0].content[0].type",
        ),
        (
            {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
            "messages[0].content[0].source.type",
        ),
        (
            {
                "type": "tool_result",
                "tool_use_id": "t",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://x/y.png"},
                    }
                ],
            },
            "messages[0].content[0].content[0].type",
        ),
    ],
)
def test_anthropic_unsupported_blocks(block: dict[str, Any], field: str) -> None:
    with pytest.raises(TranslationError) as info:
        anthropic_request_to_openai(anthropic_body(user([block])), model="m")
    assert info.value.field == field


# ========================================= OpenAI response -> Anthropic response


def openai_completion(
    message: dict[str, Any], finish_reason: str, **extra: Any
) -> dict[str, Any]:
    completion: dict[str, Any] = {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1_741_569_952,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "refusal": None, **message},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": 1200,
            "completion_tokens": 30,
            "total_tokens": 1230,
            "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
        "system_fingerprint": "fp_123",
        **extra,
    }
    ChatCompletion.model_validate(completion)  # the fixture itself is a real shape
    return completion


def to_message(resp: dict[str, Any]) -> dict[str, Any]:
    out = openai_response_to_anthropic(resp, model="my-alias")
    Message.model_validate(out)
    return out


def test_openai_text_response() -> None:
    out = to_message(openai_completion({"content": "Hi there"}, "stop"))
    assert out == {
        "id": "msg_chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "type": "message",
        "role": "assistant",
        "model": "my-alias",
        "content": [text_block("Hi there")],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 176,
            "output_tokens": 30,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 1024,
        },
    }


def test_openai_tool_call_response() -> None:
    message = {
        "content": None,
        "tool_calls": [
            {
                "id": "call_abc",
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "arguments": '{\n  "city": "Paris"\n}',
                },
            }
        ],
    }
    out = to_message(openai_completion(message, "tool_calls"))
    assert out["content"] == [
        {
            "type": "tool_use",
            "id": "call_abc",
            "name": "get_weather",
            "input": {"city": "Paris"},
        }
    ]
    assert out["stop_reason"] == "tool_use"


@pytest.mark.parametrize(
    ("finish_reason", "with_tools", "expected"),
    [
        ("stop", False, "end_turn"),
        ("length", False, "max_tokens"),
        ("tool_calls", True, "tool_use"),
        ("function_call", False, "tool_use"),
        ("content_filter", False, "refusal"),
        ("stop", True, "tool_use"),
        ("length", True, "max_tokens"),
        ("something_new", False, "end_turn"),
    ],
)
def test_finish_reason_to_stop_reason(
    finish_reason: str, with_tools: bool, expected: str
) -> None:
    message: dict[str, Any] = {"content": "x"}
    if with_tools:
        call = {
            "id": "c",
            "type": "function",
            "function": {"name": "f", "arguments": "{}"},
        }
        message["tool_calls"] = [call]
    resp = openai_completion({"content": "x"}, "stop")
    resp["choices"][0]["message"] = {"role": "assistant", **message}
    resp["choices"][0]["finish_reason"] = finish_reason
    assert openai_response_to_anthropic(resp, model="m")["stop_reason"] == expected


def test_openai_refusal_and_missing_usage() -> None:
    resp = openai_completion(
        {"content": None, "refusal": "I can't help with that."}, "stop"
    )
    del resp["usage"]
    out = to_message(resp)
    assert out["content"] == [text_block("I can't help with that.")]
    assert out["usage"]["input_tokens"] == 0
    assert out["usage"]["output_tokens"] == 0


def test_openai_response_errors() -> None:
    resp = openai_completion({"content": "x"}, "stop")
    resp["choices"] = []
    with pytest.raises(TranslationError, match="no choices"):
        openai_response_to_anthropic(resp, model="m")
    bad_call = {
        "id": "c",
        "type": "function",
        "function": {"name": "f", "arguments": "{oops"},
    }
    resp = openai_completion({"content": None, "tool_calls": [bad_call]}, "tool_calls")
    with pytest.raises(TranslationError) as info:
        openai_response_to_anthropic(resp, model="m")
    assert info.value.field == "choices[0].message.tool_calls[0].function.arguments"


# ============================================ OpenAI stream -> Anthropic events


def openai_chunk(
    delta: dict[str, Any] | None = None,
    finish_reason: str | None = None,
    *,
    usage: dict[str, Any] | None = None,
    choices: bool = True,
) -> dict[str, Any]:
    chunk = {
        "id": "chatcmpl-stream1",
        "object": "chat.completion.chunk",
        "created": 1_741_569_952,
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_123",
        "choices": (
            [
                {
                    "index": 0,
                    "delta": delta or {},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ]
            if choices
            else []
        ),
        "usage": usage,
    }
    ChatCompletionChunk.model_validate(chunk)  # the fixture itself is a real shape
    return chunk


def tool_delta(
    index: int, arguments: str, *, call_id: str = "", name: str = ""
) -> dict[str, Any]:
    call: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if call_id:
        call.update(id=call_id, type="function")
        call["function"]["name"] = name
    return {"tool_calls": [call]}


OPENAI_USAGE = {
    "prompt_tokens": 150,
    "completion_tokens": 42,
    "total_tokens": 192,
    "prompt_tokens_details": {"cached_tokens": 50, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
}

OPENAI_TOOL_STREAM = [
    openai_chunk({"role": "assistant", "content": "", "refusal": None}),
    openai_chunk({"content": "Checking"}),
    openai_chunk({"content": " both."}),
    openai_chunk(
        {
            "role": "assistant",
            "content": None,
            **tool_delta(0, "", call_id="call_A", name="get_weather"),
        }
    ),
    openai_chunk(tool_delta(0, '{"ci')),
    openai_chunk(tool_delta(0, 'ty": "Par')),
    openai_chunk(tool_delta(0, 'is"}')),
    openai_chunk(
        tool_delta(1, '{"city": "Rome"}', call_id="call_B", name="get_weather")
    ),
    openai_chunk({}, "tool_calls"),
    openai_chunk(usage=OPENAI_USAGE, choices=False),
]


def run_openai_stream(
    chunks: list[dict[str, Any]],
) -> tuple[OpenAIToAnthropicStream, list[dict[str, Any]]]:
    stream = OpenAIToAnthropicStream(model="my-alias")
    events: list[dict[str, Any]] = []
    for chunk in chunks:
        events.extend(stream.process(chunk))
    events.extend(stream.finish())
    for event in events:
        ANTHROPIC_EVENT.validate_python(event)
    return stream, events


def test_openai_stream_with_text_and_tool_calls() -> None:
    stream, events = run_openai_stream(OPENAI_TOOL_STREAM)

    def json_delta(index: int, fragment: str) -> dict[str, Any]:
        return {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "input_json_delta", "partial_json": fragment},
        }

    def tool_start(index: int, call_id: str) -> dict[str, Any]:
        return {
            "type": "content_block_start",
            "index": index,
            "content_block": {
                "type": "tool_use",
                "id": call_id,
                "name": "get_weather",
                "input": {},
            },
        }

    assert events == [
        {
            "type": "message_start",
            "message": {
                "id": "msg_chatcmpl-stream1",
                "type": "message",
                "role": "assistant",
                "model": "my-alias",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 0,
                    "output_tokens": 0,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                },
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": text_block("")},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "Checking"},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": " both."},
        },
        {"type": "content_block_stop", "index": 0},
        tool_start(1, "call_A"),
        json_delta(1, '{"ci'),
        json_delta(1, 'ty": "Par'),
        json_delta(1, 'is"}'),
        {"type": "content_block_stop", "index": 1},
        tool_start(2, "call_B"),
        json_delta(2, '{"city": "Rome"}'),
        {"type": "content_block_stop", "index": 2},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {
                "input_tokens": 100,
                "output_tokens": 42,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 50,
            },
        },
        {"type": "message_stop"},
    ]
    assert stream.stop_reason == "tool_use"
    assert stream.usage == TokenUsage(
        prompt_tokens=150, completion_tokens=42, cached_tokens=50
    )
    assert stream.finish() == []


def test_openai_stream_text_only_with_usage_on_first_chunk() -> None:
    usage = {"prompt_tokens": 9, "completion_tokens": 0, "total_tokens": 9}
    final = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
    _, events = run_openai_stream(
        [
            openai_chunk({"role": "assistant", "content": "Hi"}, usage=usage),
            openai_chunk({"content": "!"}, "length", usage=final),
        ]
    )
    assert events[0]["message"]["usage"]["input_tokens"] == 9
    assert [e["type"] for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[-2]["delta"]["stop_reason"] == "max_tokens"
    assert events[-2]["usage"]["output_tokens"] == 3


def test_openai_stream_text_after_tool_call_opens_new_block() -> None:
    _, events = run_openai_stream(
        [
            openai_chunk(tool_delta(0, "{}", call_id="c1", name="now")),
            openai_chunk({"content": "Done."}),
            openai_chunk({}, "stop"),
        ]
    )
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [(e["index"], e["content_block"]["type"]) for e in starts] == [
        (0, "tool_use"),
        (1, "text"),
    ]
    # finish_reason "stop" after tool calls still tells Anthropic clients to run tools.
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


def test_openai_stream_empty_choices_first_and_missing_tool_id() -> None:
    stream = OpenAIToAnthropicStream(model="m")
    first = stream.process(openai_chunk(choices=False))
    assert [e["type"] for e in first] == ["message_start"]
    events = stream.process(
        openai_chunk({"tool_calls": [{"index": 0, "function": {"name": "now"}}]})
    )
    assert events == [
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_msg_chatcmpl-stream1_0",
                "name": "now",
                "input": {},
            },
        }
    ]
    closing = stream.finish()
    assert [e["type"] for e in closing] == [
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert closing[1]["delta"]["stop_reason"] == "tool_use"


def test_openai_stream_errors() -> None:
    with pytest.raises(TranslationError, match="without any chunk"):
        OpenAIToAnthropicStream(model="m").finish()

    stream = OpenAIToAnthropicStream(model="m")
    stream.process(openai_chunk(tool_delta(0, '{"a":', call_id="c1", name="f")))
    stream.process(openai_chunk(tool_delta(1, "{}", call_id="c2", name="g")))
    with pytest.raises(TranslationError, match="resumed"):
        stream.process(openai_chunk(tool_delta(0, "1}")))

    stream = OpenAIToAnthropicStream(model="m")
    two = openai_chunk({"content": "a"})
    two["choices"].append(
        {"index": 1, "delta": {"content": "b"}, "finish_reason": None}
    )
    with pytest.raises(TranslationError, match="single choice"):
        stream.process(two)

    stream = OpenAIToAnthropicStream(model="m")
    stream.process(openai_chunk({"content": "a"}, "stop"))
    stream.finish()
    with pytest.raises(TranslationError, match="after the stream was finished"):
        stream.process(openai_chunk({"content": "late"}))


def test_openai_stream_without_finish_reason_ends_turn() -> None:
    stream, events = run_openai_stream([openai_chunk({"content": "cut"})])
    assert events[-2]["delta"]["stop_reason"] == "end_turn"
    assert stream.stop_reason == "end_turn"


def test_encode_anthropic_event() -> None:
    event = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "é\n"},
    }
    encoded = encode_anthropic_event(event)
    assert encoded == (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"\xc3\xa9\\n"}}\n\n'
    )
    header, data = encoded.decode().removesuffix("\n\n").split("\n")
    assert header == "event: content_block_delta"
    assert json.loads(data.removeprefix("data: ")) == event
    with pytest.raises(TranslationError):
        encode_anthropic_event({"index": 0})


# =================================================================== round trips


def test_tool_round_trip_openai_client_over_anthropic_provider() -> None:
    """tool_calls -> tool_use -> (provider answers) -> tool_calls -> tool_result."""
    request = to_anthropic(
        openai_body(
            user("Weather in Paris?"), tools=[openai_tool()], tool_choice="auto"
        )
    )
    assert request["tool_choice"] == {"type": "auto"}
    provider_reply = anthropic_message(
        content=[
            {
                "type": "tool_use",
                "id": "toolu_XYZ",
                "name": "get_weather",
                "input": {"city": "Paris"},
            }
        ],
        stop_reason="tool_use",
    )
    completion = to_chat_completion(provider_reply)
    assistant = completion["choices"][0]["message"]
    call = assistant["tool_calls"][0]
    # The client runs the tool and sends the whole conversation back.
    follow_up = to_anthropic(
        openai_body(
            user("Weather in Paris?"),
            assistant,
            {"role": "tool", "tool_call_id": call["id"], "content": "18C"},
            tools=[openai_tool()],
        )
    )
    assert follow_up["messages"][1:] == [
        {"role": "assistant", "content": provider_reply["content"]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_XYZ", "content": "18C"}
            ],
        },
    ]


def test_tool_round_trip_anthropic_client_over_openai_provider() -> None:
    reply = openai_completion(
        {
            "content": None,
            "tool_calls": [
                {
                    "id": "call_Q",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        "tool_calls",
    )
    message = to_message(reply)
    follow_up = to_openai(
        anthropic_body(
            user("Weather in Oslo?"),
            {"role": "assistant", "content": message["content"]},
            user([{"type": "tool_result", "tool_use_id": "call_Q", "content": "-3C"}]),
            tools=[anthropic_tool()],
        )
    )
    assert follow_up["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": reply["choices"][0]["message"]["tool_calls"],
        },
        {"role": "tool", "tool_call_id": "call_Q", "content": "-3C"},
    ]


def test_request_round_trip_preserves_conversation() -> None:
    original = openai_body(
        {"role": "system", "content": "Be brief."},
        *_tool_conversation()[:3],
        tools=[openai_tool()],
        tool_choice="required",
        max_tokens=64,
        stop=["END"],
        temperature=0.3,
    )
    back = to_openai(
        to_anthropic(original), model="alias", max_tokens_field="max_tokens"
    )
    assert back["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    **call,
                    "function": {
                        **call["function"],
                        "arguments": json.dumps(
                            json.loads(call["function"]["arguments"]),
                            separators=(",", ":"),
                        ),
                    },
                }
                for call in original["messages"][2]["tool_calls"]
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
    ]
    assert back["tools"] == [openai_tool()]
    assert back["tool_choice"] == "required"
    assert (back["max_tokens"], back["stop"], back["temperature"]) == (64, ["END"], 0.3)


def test_usage_conversions_are_inverse() -> None:
    usage = TokenUsage(
        prompt_tokens=1110,
        completion_tokens=7,
        cached_tokens=1000,
        cache_creation_tokens=100,
    )
    assert TokenUsage.from_anthropic(usage.to_anthropic()) == usage
    assert usage.total_tokens == 1117
    openai_side = TokenUsage.from_openai(usage.to_openai())
    assert openai_side == TokenUsage(
        prompt_tokens=1110, completion_tokens=7, cached_tokens=1000
    )
