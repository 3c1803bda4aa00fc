"""The fake upstream, driven by the official SDKs and by plain httpx."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.fakes.upstream import (
    DEFAULT_MODELS,
    REPLY_BYTES_HEADER,
    Behaviour,
    FakeUpstream,
    count_tokens,
    embedding_for,
    filler_text,
)

ROOT = Path(__file__).resolve().parents[2]
USER_HELLO: Any = [{"role": "user", "content": "hello fake world"}]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
    },
}
ANTHROPIC_TOOL: Any = {
    "name": "get_weather",
    "description": "Weather for a city.",
    "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}},
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeUpstream) -> FakeUpstream:
    server.reset()
    return server


@pytest.fixture
def oai(fake: FakeUpstream) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=fake.openai_base_url, api_key="sk-test", max_retries=0
    ) as client:
        yield client


@pytest.fixture
def claude(fake: FakeUpstream) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=fake.anthropic_base_url, api_key="ak-test", max_retries=0
    ) as client:
        yield client


@pytest.fixture
def http(fake: FakeUpstream) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, timeout=5.0) as client:
        yield client


def sse_events(lines: Iterator[str]) -> list[tuple[str | None, str]]:
    """(event name, data) for each SSE message of a stream."""
    events: list[tuple[str | None, str]] = []
    name: str | None = None
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            events.append((name, line.removeprefix("data: ")))
            name = None
    return events


# --------------------------------------------------------------------- OpenAI chat


def test_chat_completion_echoes_the_last_message_with_usage(
    oai: openai.OpenAI,
) -> None:
    messages: list[Any] = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "hello fake world"}]},
    ]
    completion = oai.chat.completions.create(model="fake-gpt", messages=messages, n=3)

    assert completion.object == "chat.completion"
    assert completion.model == "fake-gpt"
    assert [choice.index for choice in completion.choices] == [0, 1, 2]
    for choice in completion.choices:
        assert choice.message.role == "assistant"
        assert choice.message.content == "echo: hello fake world"
        assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 5  # "be brief" + "hello fake world"
    assert completion.usage.completion_tokens == 3 * 4
    assert completion.usage.total_tokens == 17


def test_chat_stream_with_include_usage(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model="fake-gpt",
        messages=USER_HELLO,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    content = [c.choices[0].delta.content for c in chunks[1:-2]]
    assert len(content) > 1
    assert "".join(filter(None, content)) == "echo: hello fake world"
    assert chunks[-2].choices[0].finish_reason == "stop"
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None
    assert usage_chunk.usage.prompt_tokens == 3
    assert usage_chunk.usage.completion_tokens == 4


def test_chat_stream_ends_with_done_and_no_usage_unless_asked(
    http: httpx.Client,
) -> None:
    body = {"model": "fake-gpt", "messages": USER_HELLO, "stream": True, "n": 2}
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.iter_lines())

    assert events[-1] == (None, "[DONE]")
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert all("usage" not in chunk for chunk in chunks)
    for index in (0, 1):
        deltas = [c["choices"][0] for c in chunks if c["choices"][0]["index"] == index]
        text = "".join(d["delta"].get("content") or "" for d in deltas)
        assert text == "echo: hello fake world"
        assert deltas[-1]["finish_reason"] == "stop"


def test_tool_call_without_streaming(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(
        model="fake-gpt", messages=USER_HELLO, tools=[WEATHER_TOOL]
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    (call,) = choice.message.tool_calls
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"text": "hello fake world"}
    assert completion.usage is not None
    assert completion.usage.completion_tokens == count_tokens(call.function.arguments)


def test_tool_call_streamed_in_fragments(oai: openai.OpenAI) -> None:
    other_tool: Any = {"type": "function", "function": {"name": "other"}}
    stream = oai.chat.completions.create(
        model="fake-gpt",
        messages=USER_HELLO,
        tools=[WEATHER_TOOL, other_tool],
        tool_choice={"type": "function", "function": {"name": "other"}},
        stream=True,
    )
    deltas = [
        (chunk.choices[0].delta, chunk.choices[0].finish_reason) for chunk in stream
    ]

    calls = [call for delta, _ in deltas for call in delta.tool_calls or []]
    assert {call.index for call in calls} == {0}
    assert calls[0].id is not None
    assert calls[0].function is not None
    assert calls[0].function.name == "other"
    fragments = [call.function.arguments for call in calls[1:] if call.function]
    assert len(fragments) > 1
    assert json.loads("".join(filter(None, fragments))) == {"text": "hello fake world"}
    assert deltas[-1][1] == "tool_calls"


def test_openai_stream_helper_accumulates_the_tool_call(oai: openai.OpenAI) -> None:
    with oai.chat.completions.stream(
        model="fake-gpt",
        messages=USER_HELLO,
        tools=[WEATHER_TOOL],
        stream_options={"include_usage": True},
    ) as stream:
        final = stream.get_final_completion()

    (choice,) = final.choices
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    (call,) = choice.message.tool_calls
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"text": "hello fake world"}
    assert final.usage is not None
    assert final.usage.completion_tokens == count_tokens(call.function.arguments)


def test_tool_result_is_answered_with_text(oai: openai.OpenAI) -> None:
    messages: list[Any] = [
        *USER_HELLO,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    completion = oai.chat.completions.create(
        model="fake-gpt", messages=messages, tools=[WEATHER_TOOL]
    )

    assert completion.choices[0].message.content == "echo: sunny"
    assert completion.choices[0].finish_reason == "stop"


# ------------------------------------------------------- embeddings and models


def test_embeddings_default_sdk_call_uses_base64(
    fake: FakeUpstream, oai: openai.OpenAI
) -> None:
    response = oai.embeddings.create(model="fake-embedding", input=["alpha", "beta"])

    assert fake.last_request.json["encoding_format"] == "base64"
    assert [item.index for item in response.data] == [0, 1]
    assert response.data[0].embedding == embedding_for("alpha")
    assert response.data[1].embedding == embedding_for("beta")
    assert response.data[0].embedding != response.data[1].embedding
    assert sum(value * value for value in embedding_for("alpha")) == pytest.approx(1)
    assert response.usage.prompt_tokens == 2


def test_embeddings_as_floats_with_dimensions(oai: openai.OpenAI) -> None:
    response = oai.embeddings.create(
        model="fake-embedding",
        input="one two three",
        encoding_format="float",
        dimensions=5,
    )
    again = oai.embeddings.create(
        model="fake-embedding", input="one two three", dimensions=5
    )

    assert len(response.data) == 1
    assert response.data[0].embedding == embedding_for("one two three", 5)
    assert again.data[0].embedding == response.data[0].embedding
    assert response.usage.total_tokens == 3


def test_models_in_openai_shape(oai: openai.OpenAI) -> None:
    models = list(oai.models.list())

    assert [model.id for model in models] == list(DEFAULT_MODELS)
    assert {model.object for model in models} == {"model"}


def test_models_in_anthropic_shape_when_anthropic_version_is_sent(
    fake: FakeUpstream, claude: anthropic.Anthropic
) -> None:
    models = list(claude.models.list())

    assert "anthropic-version" in fake.last_request.headers
    assert [model.id for model in models] == list(DEFAULT_MODELS)
    assert {model.type for model in models} == {"model"}
    assert models[0].display_name == DEFAULT_MODELS[0]


# ---------------------------------------------------------------------- Anthropic


def test_anthropic_message(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="fake-claude",
        max_tokens=64,
        system="be brief",
        messages=[{"role": "user", "content": "hello fake world"}],
    )

    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == "fake-claude"
    assert message.id.startswith("msg_")
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].type == "text"
    assert message.content[0].text == "echo: hello fake world"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 5
    assert message.usage.output_tokens == 4


def test_anthropic_stream_helper_builds_the_final_message(
    claude: anthropic.Anthropic,
) -> None:
    with claude.messages.stream(
        model="fake-claude", max_tokens=64, messages=USER_HELLO
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()

    assert len(pieces) > 1
    assert "".join(pieces) == "echo: hello fake world"
    assert final.content[0].type == "text"
    assert final.content[0].text == "echo: hello fake world"
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == 3
    assert final.usage.output_tokens == 4


def test_anthropic_stream_sends_the_real_event_sequence(http: httpx.Client) -> None:
    body = {
        "model": "fake-claude",
        "max_tokens": 64,
        "messages": USER_HELLO,
        "stream": True,
    }
    with http.stream("POST", "/v1/messages", json=body) as response:
        events = sse_events(response.iter_lines())

    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}
    assert all(json.loads(data)["type"] == name for name, data in events)
    message_delta = json.loads(events[-2][1])
    assert message_delta["delta"]["stop_reason"] == "end_turn"
    assert message_delta["usage"]["output_tokens"] == 4


def test_anthropic_tool_use_streamed(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model="fake-claude",
        max_tokens=64,
        messages=USER_HELLO,
        tools=[ANTHROPIC_TOOL],
    ) as stream:
        deltas = [
            event.delta.partial_json
            for event in stream
            if event.type == "content_block_delta"
            and event.delta.type == "input_json_delta"
        ]
        final = stream.get_final_message()

    assert len(deltas) > 1
    assert json.loads("".join(deltas)) == {"text": "hello fake world"}
    assert final.stop_reason == "tool_use"
    (block,) = final.content
    assert block.type == "tool_use"
    assert block.name == "get_weather"
    assert block.id.startswith("toolu_")
    assert block.input == {"text": "hello fake world"}


def test_anthropic_tool_result_is_answered_with_text(
    claude: anthropic.Anthropic,
) -> None:
    message = claude.messages.create(
        model="fake-claude",
        max_tokens=64,
        tools=[ANTHROPIC_TOOL],
        messages=[
            *USER_HELLO,
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}
                ],
            },
        ],
    )

    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text"
    assert message.content[0].text == "echo: sunny"


# ------------------------------------------------------------------ scripted knobs


@pytest.mark.parametrize(
    ("status", "error_class", "error_type"),
    [
        (400, openai.BadRequestError, "invalid_request_error"),
        (401, openai.AuthenticationError, "authentication_error"),
        (429, openai.RateLimitError, "rate_limit_error"),
        (503, openai.InternalServerError, "server_error"),
    ],
)
def test_scripted_error_raises_the_openai_exception(
    fake: FakeUpstream,
    oai: openai.OpenAI,
    status: int,
    error_class: type[openai.APIStatusError],
    error_type: str,
) -> None:
    fake.script(status=status, headers={"retry-after": "7"})

    with pytest.raises(error_class) as caught:
        oai.chat.completions.create(model="fake-gpt", messages=USER_HELLO)

    assert caught.value.status_code == status
    assert caught.value.response.headers["retry-after"] == "7"
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["type"] == error_type


@pytest.mark.parametrize(
    ("status", "error_class", "error_type"),
    [
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
        (500, anthropic.InternalServerError, "api_error"),
    ],
)
def test_scripted_error_raises_the_anthropic_exception(
    fake: FakeUpstream,
    claude: anthropic.Anthropic,
    status: int,
    error_class: type[anthropic.APIStatusError],
    error_type: str,
) -> None:
    fake.script(status=status)

    with pytest.raises(error_class) as caught:
        claude.messages.create(model="fake-claude", max_tokens=8, messages=USER_HELLO)

    assert caught.value.status_code == status
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == error_type


def test_scripted_rules_honour_times_and_path(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    fake.script(status=503, path="/v1/chat/completions", times=2)
    body = {"model": "fake-gpt", "messages": USER_HELLO}

    assert http.get("/v1/models").status_code == 200
    statuses = [
        http.post("/v1/chat/completions", json=body).status_code for _ in range(3)
    ]

    assert statuses == [503, 503, 200]


def test_sdk_retry_consumes_a_single_scripted_failure(fake: FakeUpstream) -> None:
    fake.script(status=429, headers={"retry-after-ms": "1"})
    with openai.OpenAI(
        base_url=fake.openai_base_url, api_key="sk-test", max_retries=1
    ) as client:
        completion = client.chat.completions.create(
            model="fake-gpt", messages=USER_HELLO
        )

    assert completion.choices[0].message.content == "echo: hello fake world"
    assert len(fake.requests) == 2


def test_scripted_body_is_sent_verbatim(fake: FakeUpstream, http: httpx.Client) -> None:
    fake.script(status=200, body="{not json", headers={"x-extra": "1"})

    response = http.post("/v1/chat/completions", json={"messages": USER_HELLO})

    assert response.status_code == 200
    assert response.text == "{not json"
    assert response.headers["x-extra"] == "1"


def test_scripted_json_body_replaces_the_answer(
    fake: FakeUpstream, claude: anthropic.Anthropic
) -> None:
    fake.script(body={"type": "message", "surprise": True}, path="/v1/messages")

    raw = claude.messages.with_raw_response.create(
        model="fake-claude", max_tokens=8, messages=USER_HELLO
    )

    assert raw.http_response.json() == {"type": "message", "surprise": True}
    assert raw.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    "knobs",
    [{"status": 42}, {"delay": -1.0}, {"chunk_delay": -0.5}, {"hang_after": -1}],
)
def test_invalid_knobs_are_refused(fake: FakeUpstream, knobs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        Behaviour(**knobs)
    with pytest.raises(ValueError, match="must"):
        fake.script(**knobs)


def test_script_refuses_zero_times(fake: FakeUpstream) -> None:
    with pytest.raises(ValueError, match="times"):
        fake.script(status=500, times=0)


def test_start_up_defaults_apply_until_a_script_overrides_them() -> None:
    with (
        FakeUpstream(Behaviour(status=503, headers={"X-Default": "yes"})) as fake,
        httpx.Client(base_url=fake.url) as http,
    ):
        fake.script(status=200, times=1)
        statuses = [http.get("/v1/models").status_code for _ in range(3)]
        last = http.get("/v1/models")

    assert statuses == [200, 503, 503]
    assert last.headers["x-default"] == "yes"
    assert last.json()["error"]["type"] == "server_error"


def test_delay_and_chunk_delay(fake: FakeUpstream, http: httpx.Client) -> None:
    body = {"messages": [{"role": "user", "content": "a b c d"}], "stream": True}
    fake.script(delay=0.2)
    started = time.monotonic()
    http.post("/v1/chat/completions", json={"messages": USER_HELLO})
    delayed = time.monotonic() - started

    fake.script(chunk_delay=0.05)
    started = time.monotonic()
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        events = sse_events(response.iter_lines())
    streamed = time.monotonic() - started

    assert delayed >= 0.2
    assert len(events) == 8  # role, "echo: " "a " "b " "c " "d", finish, [DONE]
    assert streamed >= 7 * 0.05


@pytest.mark.parametrize(
    ("model", "headers"),
    [
        ("fake-gpt", {REPLY_BYTES_HEADER: "1000"}),
        ("fake-gpt-bytes-1000", {}),
    ],
)
def test_reply_size_knob(
    oai: openai.OpenAI, claude: anthropic.Anthropic, model: str, headers: dict[str, str]
) -> None:
    completion = oai.chat.completions.create(
        model=model, messages=USER_HELLO, extra_headers=headers
    )
    stream = oai.chat.completions.create(
        model=model, messages=USER_HELLO, stream=True, extra_headers=headers
    )
    streamed = [chunk.choices[0].delta.content or "" for chunk in stream]
    message = claude.messages.create(
        model=model, max_tokens=8, messages=USER_HELLO, extra_headers=headers
    )

    content = completion.choices[0].message.content
    assert content == filler_text(1000)
    assert len(content.encode()) == 1000
    assert len(streamed) > 100
    assert "".join(streamed) == content
    assert message.content[0].type == "text"
    assert message.content[0].text == content
    assert completion.usage is not None
    assert completion.usage.completion_tokens == count_tokens(content)


@pytest.mark.parametrize(
    ("method", "path", "payload", "headers", "status", "shape"),
    [
        ("POST", "/v1/chat/completions", b"{oops", {}, 400, "openai"),
        ("POST", "/v1/chat/completions", b'{"messages": []}', {}, 400, "openai"),
        ("POST", "/v1/embeddings", b'{"input": 3}', {}, 400, "openai"),
        ("POST", "/v1/messages", b"[]", {}, 400, "anthropic"),
        ("GET", "/v1/nowhere", b"", {}, 404, "openai"),
        (
            "GET",
            "/v1/nowhere",
            b"",
            {"anthropic-version": "2023-06-01"},
            404,
            "anthropic",
        ),
        (
            "POST",
            "/v1/chat/completions",
            json.dumps({"messages": USER_HELLO}).encode(),
            {REPLY_BYTES_HEADER: "lots"},
            400,
            "openai",
        ),
    ],
)
def test_invalid_requests_get_provider_shaped_errors(
    http: httpx.Client,
    method: str,
    path: str,
    payload: bytes,
    headers: dict[str, str],
    status: int,
    shape: str,
) -> None:
    response = http.request(method, path, content=payload, headers=headers)

    assert response.status_code == status
    error = response.json()
    if shape == "anthropic":
        assert error["type"] == "error"
        assert error["error"]["message"]
    else:
        assert set(error["error"]) == {"message", "type", "param", "code"}


# ------------------------------------------------------------------------ records


def test_records_show_what_each_sdk_sent(
    fake: FakeUpstream, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    oai.chat.completions.create(model="fake-gpt", messages=USER_HELLO)
    claude.messages.create(model="fake-claude", max_tokens=8, messages=USER_HELLO)

    chat, message = fake.requests
    assert (chat.method, chat.path) == ("POST", "/v1/chat/completions")
    assert chat.headers["Authorization"] == "Bearer sk-test"
    assert chat.json == {"model": "fake-gpt", "messages": USER_HELLO}
    assert json.loads(chat.body) == chat.json
    assert (message.method, message.path) == ("POST", "/v1/messages")
    # anthropic 2.x sends the key as a bearer token, older SDKs as x-api-key.
    assert claude.auth_headers
    for name, value in claude.auth_headers.items():
        assert message.headers[name] == value
    assert "ak-test" in (
        message.headers.get("x-api-key"),
        message.headers.get("authorization", "").removeprefix("Bearer "),
    )
    assert message.headers["anthropic-version"]
    assert message.json["max_tokens"] == 8
    assert fake.last_request == message


def test_reset_forgets_records_counters_and_rules(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    fake.script(status=500, times=None)
    assert http.get("/v1/models?limit=2").status_code == 500
    assert fake.last_request.query == "limit=2"

    fake.reset()

    assert fake.requests == []
    assert fake.disconnects == 0
    with pytest.raises(LookupError):
        _ = fake.last_request
    assert http.get("/v1/models").status_code == 200


def test_concurrent_requests_are_all_recorded(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    def call(index: int) -> int:
        body = {"messages": [{"role": "user", "content": f"n{index}"}]}
        return http.post("/v1/chat/completions", json=body).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(call, range(40)))

    assert statuses == [200] * 40
    assert fake.wait_for_requests(40, timeout=5)
    contents = sorted(r.json["messages"][0]["content"] for r in fake.requests)
    assert contents == sorted(f"n{index}" for index in range(40))


def test_record_false_counts_without_keeping_requests() -> None:
    with FakeUpstream(record=False) as fake, httpx.Client(base_url=fake.url) as http:
        http.get("/v1/models")
        http.get("/v1/models")

        assert fake.wait_for_requests(2, timeout=5)
        assert fake.requests == []


# ------------------------------------------------------------ hangs, disconnects


def test_client_disconnect_mid_stream_is_seen(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    fake.script(hang_after=2)
    body = {"messages": USER_HELLO, "stream": True}

    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        chunks = response.iter_raw()  # held: dropping it would close the stream
        assert next(chunks).startswith(b"data: ")
        assert fake.requests[0].json["stream"] is True
        assert fake.disconnects == 0

    assert fake.wait_for_disconnects(1, timeout=5)
    assert fake.disconnects == 1


def test_sdk_closing_a_stream_early_is_seen(
    fake: FakeUpstream, claude: anthropic.Anthropic
) -> None:
    fake.script(hang_after=4)

    with claude.messages.stream(
        model="fake-claude", max_tokens=8, messages=USER_HELLO
    ) as stream:
        assert next(iter(stream)).type == "message_start"

    assert fake.wait_for_disconnects(1, timeout=5)


def test_disconnect_during_the_delay_is_seen(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    fake.script(delay=30)

    with pytest.raises(httpx.ReadTimeout):
        http.get("/v1/models", timeout=0.2)

    assert fake.wait_for_disconnects(1, timeout=5)


def test_hung_stream_trips_the_client_read_timeout(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    fake.script(hang_after=3)
    body = {"messages": USER_HELLO, "stream": True}
    lines: list[str] = []

    with (
        pytest.raises(httpx.ReadTimeout),
        http.stream("POST", "/v1/chat/completions", json=body, timeout=0.3) as response,
    ):
        lines.extend(line for line in response.iter_lines() if line)

    assert len(lines) == 3
    assert fake.wait_for_disconnects(1, timeout=5)


def test_completed_responses_are_not_counted_as_disconnects() -> None:
    fake = FakeUpstream().start()
    try:
        with openai.OpenAI(base_url=fake.openai_base_url, api_key="k") as client:
            list(
                client.chat.completions.create(
                    model="fake-gpt", messages=USER_HELLO, stream=True
                )
            )
            client.chat.completions.create(model="fake-gpt", messages=USER_HELLO)
    finally:
        fake.stop()

    assert len(fake.requests) == 2
    assert fake.disconnects == 0


def test_stop_ends_a_hung_stream_promptly() -> None:
    fake = FakeUpstream(Behaviour(hang_after=1)).start()
    body = {"messages": USER_HELLO, "stream": True}
    with httpx.Client(base_url=fake.url) as http:
        with http.stream("POST", "/v1/chat/completions", json=body) as response:
            chunks = response.iter_raw()
            assert next(chunks).startswith(b"data: ")
            started = time.monotonic()
            fake.stop()
            stopped_in = time.monotonic() - started
            rest = b"".join(chunks)

    assert stopped_in < 1.5
    assert b"[DONE]" not in rest


# ---------------------------------------------------------------------- lifecycle


def test_lifecycle() -> None:
    fake = FakeUpstream()
    with pytest.raises(RuntimeError):
        _ = fake.url

    with fake:
        url = fake.url
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        assert fake.openai_base_url == url + "/v1"
        with pytest.raises(RuntimeError):
            fake.start()
        assert httpx.get(url + "/v1/models").status_code == 200
        names = {thread.name for thread in threading.enumerate()}
        assert f"fake-upstream-{fake.port}" in names

    assert f"fake-upstream-{url.rsplit(':', 1)[1]}" not in {
        thread.name for thread in threading.enumerate()
    }
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/v1/models")
    fake.stop()  # stopping twice is harmless


def test_runs_as_its_own_process() -> None:
    command = [sys.executable, "-m", "tests.fakes.upstream", "--port", "0"]
    with subprocess.Popen(
        [*command, "--delay-ms", "50"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            match = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)\n", line)
            assert match, line
            started = time.monotonic()
            response = httpx.get(match.group(1) + "/v1/models")
            elapsed = time.monotonic() - started
        finally:
            process.terminate()
        assert process.wait(timeout=10) == 0

    assert response.status_code == 200
    assert elapsed >= 0.05
