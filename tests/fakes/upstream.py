"""A fake LLM upstream (OpenAI and Anthropic) served over real HTTP on loopback.

`FakeUpstream` runs a Starlette app under uvicorn in a background thread, on a
socket it binds itself to an ephemeral port of 127.0.0.1 (no port race). It is the
only fake of the LLM providers in the project: tests point the gateway (or an SDK)
at it, and the benchmark runs it as its own process::

    with FakeUpstream() as fake:
        client = openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-test")
        client.chat.completions.create(model="fake-gpt", messages=[...])
        assert fake.last_request.headers["authorization"] == "Bearer sk-test"

    $ python -m tests.fakes.upstream --port 9100 --delay-ms 20
    listening on http://127.0.0.1:9100

Endpoints
    POST /v1/chat/completions   OpenAI chat: JSON, or SSE when ``stream`` is true
                                (``stream_options.include_usage`` adds a final
                                usage chunk with empty ``choices``); ``n``; ``tools``.
    POST /v1/embeddings         OpenAI embeddings: ``input`` string, strings or token
                                arrays; ``encoding_format`` "float" (default) or
                                "base64" (what the openai SDK sends by default);
                                ``dimensions`` (default `EMBEDDING_DIMENSIONS`).
    POST /v1/messages           Anthropic messages: JSON, or the real SSE event
                                sequence when ``stream`` is true; ``tools``. The
                                Anthropic SDK's base_url is `url`, not url + "/v1".
    GET  /v1/models             `models` in OpenAI's list shape, or Anthropic's
                                when the request has an ``anthropic-version`` header.
    anything else               404 with a provider-shaped error.

Provider shape (errors and the models list)
    /v1/messages is Anthropic's, /v1/chat/completions and /v1/embeddings are
    OpenAI's; any other path is Anthropic's exactly when the request carries an
    ``anthropic-version`` header (the Anthropic API requires it on every request,
    the OpenAI API never uses it), else OpenAI's.

Answers (deterministic, derived from the request)
    Text        ``"echo: " + <text of the last message>``; the text of a message is
                its string content, or its text parts (and tool results) joined by
                one space.
    Sized text  A request header ``x-fake-reply-bytes: N``, or else a model name
                ending in ``-bytes-N`` (e.g. "fake-gpt-bytes-1024"), replaces the
                echo with ASCII filler words of exactly N bytes (`filler_text`).
    Tool calls  When the request has ``tools``, ``tool_choice`` is not "none" and
                the last message is not a tool result, the answer is one call to the
                tool named by ``tool_choice``, else to the first tool, with arguments
                ``{"text": <text of the last message>}``; finish_reason "tool_calls",
                stop_reason "tool_use". After a tool result the answer is text again.
    Streaming   The text goes out one word (with its trailing whitespace) per chunk;
                tool arguments in fragments of 8 characters.
    ``n``       Every choice carries the same answer.
    Tokens      `count_tokens`: whitespace-separated words. Prompt tokens count the
                text of every message (and the Anthropic ``system``); completion
                tokens count the reply text, or the tool arguments JSON, times ``n``.
                As in the real API, Anthropic's message_start says output_tokens 1
                and message_delta carries the total.
    Embeddings  `embedding_for`: a unit float32 vector drawn from SHAKE-256 of the
                text; token arrays are embedded as their decimal text.

Knobs (`Behaviour`)
    status       A status >= 400 answers with a provider-shaped error body.
    headers      Extra response headers (e.g. ``retry-after``).
    body         Sent verbatim instead of the answer (a str/bytes as is, anything
                 else as JSON), with ``status``: for malformed or odd responses.
    delay        Seconds to wait before the response starts.
    chunk_delay  Seconds to wait between stream chunks.
    hang_after   A stream sends this many events (SSE messages, the first role
                 chunk or message_start included) and then neither sends nor closes
                 until the client goes away or the server stops. Streams only; the
                 response headers are always sent, so 0 hangs before the first event.

    Start-up defaults: ``FakeUpstream(Behaviour(delay=0.02))``, or the CLI flags
    ``--status --delay-ms --chunk-delay-ms --hang-after``. Per request:
    ``fake.script(status=429, headers={"retry-after": "7"}, times=1)`` queues a rule
    that overrides the defaults for the next ``times`` requests (None: until
    `reset`) whose path equals ``path`` (None: any path); the first live rule in
    the order they were scripted wins.

Observing
    ``requests`` / ``last_request`` (`RecordedRequest`: method, path, query,
    case-insensitive headers, raw body, parsed JSON), ``wait_for_requests``,
    ``disconnects`` (responses the client abandoned before their end, including
    during ``delay``), ``wait_for_disconnects``, and ``reset``, which forgets the
    records, the counters and the scripted rules. All of it is thread-safe.
    ``FakeUpstream(record=False)`` (what the CLI uses) keeps no records, only the
    counts, so long benchmark runs do not grow.

Lifecycle
    `stop` ends hung streams and cuts delays short, then waits for uvicorn, which
    takes about 0.2 s: share one instance per module or session and `reset` it
    between tests.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import hashlib
import json
import math
import re
import secrets
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Final, Literal, Self

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

__all__ = [
    "DEFAULT_MODELS",
    "EMBEDDING_DIMENSIONS",
    "REPLY_BYTES_HEADER",
    "Behaviour",
    "FakeUpstream",
    "RecordedRequest",
    "count_tokens",
    "embedding_for",
    "filler_text",
    "main",
]

DEFAULT_MODELS: Final = ("fake-gpt", "fake-claude", "fake-embedding")
EMBEDDING_DIMENSIONS: Final = 16
REPLY_BYTES_HEADER: Final = "x-fake-reply-bytes"

_MAX_REPLY_BYTES: Final = 1 << 24
_MAX_CHOICES: Final = 128
_MAX_DIMENSIONS: Final = 1 << 16
_ARGUMENT_FRAGMENT: Final = 8
_FILLER: Final = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do "
_SIZED_MODEL: Final = re.compile(r"-bytes-([0-9]+)$")
_SIZE: Final = re.compile(r"[0-9]{1,8}")
_PIECE: Final = re.compile(r"\S+\s*|\s+")
_JSON_TYPE: Final = "application/json"
_SSE_TYPE: Final = "text/event-stream; charset=utf-8"
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_HOLE: Final = "\x00"  # the slot of a `_Frame`; JSON always escapes it
_ALL_METHODS: Final = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_START_TIMEOUT: Final = 10.0
_STOP_TIMEOUT: Final = 10.0

Flavour = Literal["openai", "anthropic"]
ScriptedBody = bytes | str | Mapping[str, Any] | Sequence[Any]
Content = bytes | Iterator[bytes]
"""A JSON document, or the SSE messages of a stream (produced lazily)."""


# --------------------------------------------------------------------------- knobs


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How the fake answers; every field is a knob (see the module docstring)."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: ScriptedBody | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    hang_after: int | None = None

    def __post_init__(self) -> None:
        if not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status, got {self.status}")
        if self.delay < 0 or self.chunk_delay < 0:
            raise ValueError("delays must not be negative")
        if self.hang_after is not None and self.hang_after < 0:
            raise ValueError("hang_after must not be negative")
        lowered = {name.lower(): value for name, value in self.headers.items()}
        object.__setattr__(self, "headers", lowered)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    query: str
    headers: Headers
    body: bytes
    json: Any
    """The parsed body, or None when it is empty or not JSON."""


@dataclass(slots=True)
class _Rule:
    behaviour: Behaviour
    path: str | None
    remaining: int | None

    def matches(self, path: str) -> bool:
        return self.path is None or self.path == path


class _Journal:
    """The thread-safe state shared by the server thread and the test."""

    def __init__(self, defaults: Behaviour, *, keep_records: bool) -> None:
        self.defaults = defaults
        self._keep_records = keep_records
        self._changed = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._request_count = 0
        self._disconnects = 0
        self._rules: list[_Rule] = []

    def record(self, request: RecordedRequest) -> None:
        with self._changed:
            self._request_count += 1
            if self._keep_records:
                self._requests.append(request)
            self._changed.notify_all()

    def note_disconnect(self) -> None:
        with self._changed:
            self._disconnects += 1
            self._changed.notify_all()

    def add_rule(self, rule: _Rule) -> None:
        with self._changed:
            self._rules.append(rule)

    def behaviour_for(self, path: str) -> Behaviour:
        with self._changed:
            rule = next((rule for rule in self._rules if rule.matches(path)), None)
            if rule is None:
                return self.defaults
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._rules.remove(rule)
            return rule.behaviour

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._changed:
            return list(self._requests)

    @property
    def disconnects(self) -> int:
        with self._changed:
            return self._disconnects

    def wait_for_requests(self, count: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._request_count >= count, timeout)

    def wait_for_disconnects(self, count: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._disconnects >= count, timeout)

    def reset(self) -> None:
        with self._changed:
            self._requests.clear()
            self._rules.clear()
            self._request_count = 0
            self._disconnects = 0


# ------------------------------------------------------------ deterministic answers


class _RequestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class _ToolCall:
    name: str
    input: dict[str, Any]

    @property
    def arguments(self) -> str:
        return json.dumps(self.input)


@dataclass(frozen=True, slots=True)
class _Answer:
    text: str
    tool: _ToolCall | None
    prompt_tokens: int

    @property
    def completion_tokens(self) -> int:
        return count_tokens(self.tool.arguments if self.tool else self.text)


def count_tokens(text: str) -> int:
    """The fake's token rule: the number of whitespace-separated words."""
    return len(text.split())


@functools.lru_cache(maxsize=64)
def filler_text(size: int) -> str:
    """The ASCII filler words of exactly ``size`` bytes used for sized replies."""
    repeats = size // len(_FILLER) + 1
    return (_FILLER * repeats)[:size]


def embedding_for(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """The unit vector the fake returns for ``text`` (float32 values)."""
    return list(struct.unpack(f"<{dimensions}f", _packed_embedding(text, dimensions)))


def _base64_embedding(text: str, dimensions: int) -> str:
    return base64.b64encode(_packed_embedding(text, dimensions)).decode()


def _packed_embedding(text: str, dimensions: int) -> bytes:
    digest = hashlib.shake_256(text.encode()).digest(4 * dimensions)
    raw = struct.unpack(f"<{dimensions}I", digest)
    values = [number / 2**31 - 1.0 for number in raw]
    norm = math.sqrt(sum(value * value for value in values)) or 1.0
    return struct.pack(f"<{dimensions}f", *(value / norm for value in values))


@functools.lru_cache(maxsize=256)
def _pieces(text: str) -> tuple[str, ...]:
    return tuple(_PIECE.findall(text))


def _fragments(text: str) -> list[str]:
    step = _ARGUMENT_FRAGMENT
    return [text[start : start + step] for start in range(0, len(text), step)]


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(text for text in map(_part_text, content) if text)
    return ""


def _part_text(part: Any) -> str:
    text = _dig(part, "text")
    if isinstance(text, str):
        return text
    return _text_of(_dig(part, "content"))


def _json_object(request: RecordedRequest) -> dict[str, Any]:
    if not isinstance(request.json, dict):
        raise _RequestError(400, "the request body must be a JSON object")
    return request.json


def _messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _RequestError(400, "'messages' must be a non-empty array")
    return [message for message in messages if isinstance(message, dict)]


def _prompt_tokens(messages: list[dict[str, Any]], system: Any = None) -> int:
    texts = [_text_of(system), *(_text_of(m.get("content")) for m in messages)]
    return sum(map(count_tokens, texts))


def _bounded_int(
    body: Mapping[str, Any], name: str, *, default: int, maximum: int
) -> int:
    value = body.get(name)
    if value is None:
        return default
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not 1 <= value <= maximum
    ):
        raise _RequestError(400, f"'{name}' must be an integer in 1..{maximum}")
    return value


def _model(body: Mapping[str, Any], default: str) -> str:
    model = body.get("model")
    return model if isinstance(model, str) and model else default


def _reply_size(request: RecordedRequest, model: str) -> int | None:
    raw = request.headers.get(REPLY_BYTES_HEADER)
    if raw is None:
        match = _SIZED_MODEL.search(model)
        raw = match.group(1) if match else None
    if raw is None:
        return None
    if not _SIZE.fullmatch(raw) or int(raw) > _MAX_REPLY_BYTES:
        message = f"{REPLY_BYTES_HEADER} must be an integer in 0..{_MAX_REPLY_BYTES}"
        raise _RequestError(400, message)
    return int(raw)


def _answer(
    *, last_text: str, prompt_tokens: int, tool_name: str | None, size: int | None
) -> _Answer:
    if tool_name is not None:
        return _Answer("", _ToolCall(tool_name, {"text": last_text}), prompt_tokens)
    text = f"echo: {last_text}" if size is None else filler_text(size)
    return _Answer(text, None, prompt_tokens)


def _dumps(document: Any) -> bytes:
    return _ENCODER.encode(document).encode()


class _Frame:
    """An SSE message serialised once around a `_HOLE`, for the chunks of a stream.

    ``fill`` only encodes the new string, so a chunk costs no more than that.
    """

    __slots__ = ("_head", "_tail")

    def __init__(self, message: bytes) -> None:
        self._head, self._tail = message.split(_dumps(_HOLE), 1)

    def fill(self, value: str) -> bytes:
        return self._head + _dumps(value) + self._tail


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


# ------------------------------------------------------------------------- OpenAI


def _chat(request: RecordedRequest) -> Content:
    body = _json_object(request)
    messages = _messages(body)
    last = messages[-1] if messages else {}
    model = _model(body, DEFAULT_MODELS[0])
    answer = _answer(
        last_text=_text_of(last.get("content")),
        prompt_tokens=_prompt_tokens(messages),
        tool_name=None if last.get("role") == "tool" else _openai_tool_name(body),
        size=_reply_size(request, model),
    )
    n = _bounded_int(body, "n", default=1, maximum=_MAX_CHOICES)
    head = {"id": _new_id("chatcmpl-"), "created": int(time.time()), "model": model}
    if body.get("stream") is True:
        include_usage = _dig(body, "stream_options", "include_usage") is True
        return _chat_chunks(answer, head, n, include_usage=include_usage)
    choices = [_chat_choice(answer, index) for index in range(n)]
    completion = {"object": "chat.completion", "choices": choices}
    return _dumps({**head, **completion, "usage": _chat_usage(answer, n)})


def _openai_tool_name(body: Mapping[str, Any]) -> str | None:
    tools, choice = body.get("tools"), body.get("tool_choice")
    if not isinstance(tools, list) or not tools or choice == "none":
        return None
    name = _dig(choice, "function", "name") or _dig(tools[0], "function", "name")
    return name if isinstance(name, str) else "tool"


def _finish_reason(answer: _Answer) -> str:
    return "tool_calls" if answer.tool else "stop"


def _chat_usage(answer: _Answer, n: int) -> dict[str, int]:
    completion = answer.completion_tokens * n
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": answer.prompt_tokens + completion,
    }


def _chat_choice(answer: _Answer, index: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
    if answer.tool:
        function = {"name": answer.tool.name, "arguments": answer.tool.arguments}
        call = {"id": _new_id("call_"), "type": "function", "function": function}
        message["tool_calls"] = [call]
    else:
        message["content"] = answer.text
    return {
        "index": index,
        "message": message,
        "logprobs": None,
        "finish_reason": _finish_reason(answer),
    }


def _chat_piece_delta(answer: _Answer) -> tuple[dict[str, Any], Sequence[str]]:
    """The delta (with a `_HOLE`) that streams the answer, and its pieces."""
    if answer.tool is None:
        return {"content": _HOLE}, _pieces(answer.text)
    call = {"index": 0, "function": {"arguments": _HOLE}}
    return {"tool_calls": [call]}, _fragments(answer.tool.arguments)


def _chat_first_delta(answer: _Answer) -> dict[str, Any]:
    if answer.tool is None:
        return {"role": "assistant", "content": "", "refusal": None}
    call = {
        "index": 0,
        "id": _new_id("call_"),
        "type": "function",
        "function": {"name": answer.tool.name, "arguments": ""},
    }
    return {"role": "assistant", "content": None, "tool_calls": [call]}


def _chat_chunks(
    answer: _Answer, head: dict[str, Any], n: int, *, include_usage: bool
) -> Iterator[bytes]:
    base = {**head, "object": "chat.completion.chunk"}
    if include_usage:
        base["usage"] = None

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {
            "index": index,
            "delta": delta,
            "logprobs": None,
            "finish_reason": finish,
        }
        return _sse({**base, "choices": [choice]})

    for index in range(n):
        yield chunk(index, _chat_first_delta(answer))
    delta, pieces = _chat_piece_delta(answer)
    frames = [_Frame(chunk(index, delta)) for index in range(n)]
    for piece in pieces:
        for frame in frames:
            yield frame.fill(piece)
    for index in range(n):
        yield chunk(index, {}, _finish_reason(answer))
    if include_usage:
        yield _sse({**base, "choices": [], "usage": _chat_usage(answer, n)})
    yield b"data: [DONE]\n\n"


def _sse(document: Any) -> bytes:
    return b"data: " + _dumps(document) + b"\n\n"


def _embeddings(request: RecordedRequest) -> Content:
    body = _json_object(request)
    texts = _embedding_inputs(body.get("input"))
    dimensions = _bounded_int(
        body, "dimensions", default=EMBEDDING_DIMENSIONS, maximum=_MAX_DIMENSIONS
    )
    encode = _embedding_encoder(body.get("encoding_format", "float"))
    data = [
        {"object": "embedding", "index": index, "embedding": encode(text, dimensions)}
        for index, text in enumerate(texts)
    ]
    tokens = sum(map(count_tokens, texts))
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    model = _model(body, DEFAULT_MODELS[2])
    return _dumps({"object": "list", "data": data, "model": model, "usage": usage})


def _embedding_inputs(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(item, str) for item in value):
            return value
        if all(isinstance(item, int) for item in value):
            return [" ".join(map(str, value))]
        if all(_is_token_array(item) for item in value):
            return [" ".join(map(str, item)) for item in value]
    message = "'input' must be a string, or a non-empty array of strings or tokens"
    raise _RequestError(400, message)


def _is_token_array(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, int) for item in value)


def _embedding_encoder(encoding: Any) -> Callable[[str, int], list[float] | str]:
    if encoding == "float":
        return embedding_for
    if encoding == "base64":
        return _base64_embedding
    raise _RequestError(400, "'encoding_format' must be 'float' or 'base64'")


# ---------------------------------------------------------------------- Anthropic


def _anthropic_messages(request: RecordedRequest) -> Content:
    body = _json_object(request)
    messages = _messages(body)
    last = messages[-1] if messages else {}
    model = _model(body, DEFAULT_MODELS[1])
    answer = _answer(
        last_text=_text_of(last.get("content")),
        prompt_tokens=_prompt_tokens(messages, body.get("system")),
        tool_name=None if _has_tool_result(last) else _anthropic_tool_name(body),
        size=_reply_size(request, model),
    )
    if body.get("stream") is True:
        return _message_events(answer, _new_id("msg_"), model)
    message = _message_head(_new_id("msg_"), model, answer.prompt_tokens)
    message["content"] = [_content_block(answer, _new_id("toolu_"), final=True)]
    message["stop_reason"] = _stop_reason(answer)
    message["usage"]["output_tokens"] = answer.completion_tokens
    return _dumps(message)


def _has_tool_result(message: Mapping[str, Any]) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(
        _dig(block, "type") == "tool_result" for block in content
    )


def _anthropic_tool_name(body: Mapping[str, Any]) -> str | None:
    tools, choice = body.get("tools"), body.get("tool_choice")
    if not isinstance(tools, list) or not tools or _dig(choice, "type") == "none":
        return None
    name = _dig(choice, "name") or _dig(tools[0], "name")
    return name if isinstance(name, str) else "tool"


def _stop_reason(answer: _Answer) -> str:
    return "tool_use" if answer.tool else "end_turn"


def _message_head(ident: str, model: str, input_tokens: int) -> dict[str, Any]:
    return {
        "id": ident,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1},
    }


def _content_block(answer: _Answer, tool_id: str, *, final: bool) -> dict[str, Any]:
    if answer.tool is None:
        return {"type": "text", "text": answer.text if final else ""}
    tool_input = answer.tool.input if final else {}
    return {
        "type": "tool_use",
        "id": tool_id,
        "name": answer.tool.name,
        "input": tool_input,
    }


def _message_piece_delta(answer: _Answer) -> tuple[dict[str, Any], Sequence[str]]:
    """The delta (with a `_HOLE`) that streams the answer, and its pieces."""
    if answer.tool is None:
        return {"type": "text_delta", "text": _HOLE}, _pieces(answer.text)
    delta = {"type": "input_json_delta", "partial_json": _HOLE}
    return delta, _fragments(answer.tool.arguments)


def _message_events(answer: _Answer, ident: str, model: str) -> Iterator[bytes]:
    head = _message_head(ident, model, answer.prompt_tokens)
    yield _event("message_start", {"message": head})
    block = _content_block(answer, _new_id("toolu_"), final=False)
    yield _event("content_block_start", {"index": 0, "content_block": block})
    yield _event("ping", {})
    delta, pieces = _message_piece_delta(answer)
    frame = _Frame(_event("content_block_delta", {"index": 0, "delta": delta}))
    for piece in pieces:
        yield frame.fill(piece)
    yield _event("content_block_stop", {"index": 0})
    stop = {"stop_reason": _stop_reason(answer), "stop_sequence": None}
    usage = {"output_tokens": answer.completion_tokens}
    yield _event("message_delta", {"delta": stop, "usage": usage})
    yield _event("message_stop", {})


def _event(name: str, fields: dict[str, Any]) -> bytes:
    data = _dumps({"type": name, **fields})
    return b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"


# ------------------------------------------------------------ models and errors


def _flavour(request: RecordedRequest) -> Flavour:
    if request.path == "/v1/messages":
        return "anthropic"
    if request.path in ("/v1/chat/completions", "/v1/embeddings"):
        return "openai"
    return "anthropic" if "anthropic-version" in request.headers else "openai"


def _models(models: tuple[str, ...], request: RecordedRequest) -> Content:
    if _flavour(request) == "openai":
        data = [
            {"id": model, "object": "model", "created": 0, "owned_by": "fake-upstream"}
            for model in models
        ]
        return _dumps({"object": "list", "data": data})
    listing = [
        {
            "type": "model",
            "id": model,
            "display_name": model,
            "created_at": "2025-01-01T00:00:00Z",
        }
        for model in models
    ]
    first, last = (models[0], models[-1]) if models else (None, None)
    page = {"has_more": False, "first_id": first, "last_id": last}
    return _dumps({"data": listing, **page})


def _unknown_route(request: RecordedRequest) -> Content:
    raise _RequestError(404, f"no route for {request.method} {request.path}")


_OPENAI_ERRORS: Final = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}
_ANTHROPIC_ERRORS: Final = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def _error_body(flavour: Flavour, status: int, message: str) -> bytes:
    if flavour == "anthropic":
        fallback = "api_error" if status >= 500 else "invalid_request_error"
        kind = _ANTHROPIC_ERRORS.get(status, fallback)
        return _dumps({"type": "error", "error": {"type": kind, "message": message}})
    fallback = "server_error" if status >= 500 else "invalid_request_error"
    kind = _OPENAI_ERRORS.get(status, fallback)
    error = {"message": message, "type": kind, "param": None, "code": None}
    return _dumps({"error": error})


def _scripted_body(body: ScriptedBody) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return _dumps(body)


# ------------------------------------------------------------------------ serving


_Handler = Callable[[RecordedRequest], Content]


def _render(
    request: RecordedRequest, behaviour: Behaviour, handler: _Handler
) -> tuple[int, Content]:
    if behaviour.body is not None:
        return behaviour.status, _scripted_body(behaviour.body)
    if behaviour.status >= 400:
        message = f"fake upstream: scripted failure (HTTP {behaviour.status})"
        return behaviour.status, _error_body(
            _flavour(request), behaviour.status, message
        )
    try:
        return behaviour.status, handler(request)
    except _RequestError as error:
        return error.status, _error_body(_flavour(request), error.status, error.message)


async def _record(request: Request) -> RecordedRequest:
    body = await request.body()
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    return RecordedRequest(
        method=request.method,
        path=request.scope["path"],
        query=request.scope["query_string"].decode("latin-1"),
        headers=request.headers,
        body=body,
        json=parsed,
    )


class _Reply(Response):
    """Sends one answer under a `Behaviour`'s timing and notices disconnects.

    A task watches ``receive`` for ``http.disconnect`` for as long as the answer is
    in flight (the delay included), so a client that goes away is seen even while
    nothing is being sent, as in a hung stream.
    """

    def __init__(
        self,
        content: Content,
        *,
        status: int,
        behaviour: Behaviour,
        closing: asyncio.Event,
        on_disconnect: Callable[[], None],
    ) -> None:
        if isinstance(content, bytes):
            headers = {"content-type": _JSON_TYPE, "content-length": str(len(content))}
        else:
            headers = {"content-type": _SSE_TYPE, "cache-control": "no-cache"}
        headers.update(behaviour.headers)
        self.status_code = status
        self.background = None
        self.raw_headers = [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in headers.items()
        ]
        self._content = content
        self._behaviour = behaviour
        self._closing = closing
        self._on_disconnect = on_disconnect
        self._finished = False
        self._disconnected = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(self._watch_client, receive, group.cancel_scope)
            try:
                await self._respond(send)
            except OSError:  # uvicorn's ClientDisconnected: a send to a gone client
                self._disconnected = True
            group.cancel_scope.cancel()
        if self._disconnected:
            self._on_disconnect()

    async def _watch_client(self, receive: Receive, group: anyio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        if not self._finished:
            self._disconnected = True
            group.cancel()

    async def _respond(self, send: Send) -> None:
        await self._pause(self._behaviour.delay)
        start = {"status": self.status_code, "headers": self.raw_headers}
        await send({"type": "http.response.start", **start})
        if isinstance(self._content, bytes):
            self._finished = True
            await send({"type": "http.response.body", "body": self._content})
            return
        await self._stream(send, self._content)
        self._finished = True
        await send({"type": "http.response.body", "body": b""})

    async def _stream(self, send: Send, events: Iterator[bytes]) -> None:
        for index, event in enumerate(events):
            if index == self._behaviour.hang_after:
                await self._closing.wait()
                return
            if index and self._behaviour.chunk_delay:
                await self._pause(self._behaviour.chunk_delay)
            await send({"type": "http.response.body", "body": event, "more_body": True})

    async def _pause(self, seconds: float) -> None:
        """Sleep, cut short when the server is stopping."""
        if seconds > 0:
            with anyio.move_on_after(seconds):
                await self._closing.wait()


class _Application:
    """The Starlette app of one serving session."""

    def __init__(self, journal: _Journal, models: tuple[str, ...]) -> None:
        self._journal = journal
        self._closing = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        routes = [
            Route("/v1/chat/completions", self._endpoint(_chat), methods=["POST"]),
            Route("/v1/embeddings", self._endpoint(_embeddings), methods=["POST"]),
            Route(
                "/v1/messages", self._endpoint(_anthropic_messages), methods=["POST"]
            ),
            Route(
                "/v1/models",
                self._endpoint(functools.partial(_models, models)),
                methods=["GET"],
            ),
            Route("/{path:path}", self._endpoint(_unknown_route), methods=_ALL_METHODS),
        ]
        self.asgi = Starlette(routes=routes, lifespan=self._lifespan)

    def release(self) -> None:
        """Cut delays short and end hung streams (called from any thread)."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(self._closing.set)

    @contextlib.asynccontextmanager
    async def _lifespan(self, _: Starlette) -> AsyncIterator[None]:
        self._loop = asyncio.get_running_loop()
        yield

    def _endpoint(self, handler: _Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            record = await _record(request)
            self._journal.record(record)
            behaviour = self._journal.behaviour_for(record.path)
            status, content = _render(record, behaviour, handler)
            return _Reply(
                content,
                status=status,
                behaviour=behaviour,
                closing=self._closing,
                on_disconnect=self._journal.note_disconnect,
            )

        return endpoint


class _Serving:
    """One run of the server: a bound socket, a uvicorn server, its thread."""

    def __init__(self, app: _Application, sock: socket.socket) -> None:
        self.port: int = sock.getsockname()[1]
        self._app = app
        self._socket = sock
        config = uvicorn.Config(
            app.asgi,
            lifespan="on",
            ws="none",
            log_level="warning",
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"fake-upstream-{self.port}",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the fake upstream did not start")
            time.sleep(0.001)

    def stop(self) -> None:
        self._app.release()
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(_STOP_TIMEOUT)
        self._socket.close()
        if self._thread.is_alive():
            raise RuntimeError("the fake upstream did not stop")


# ------------------------------------------------------------------------- public


class FakeUpstream:
    """A fake OpenAI and Anthropic API on loopback; see the module docstring.

    ``behaviour`` holds the start-up defaults of the knobs. ``record=False`` keeps
    no `RecordedRequest` and only counts requests, for long benchmark runs.
    """

    def __init__(
        self,
        behaviour: Behaviour | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        models: Sequence[str] = DEFAULT_MODELS,
        record: bool = True,
    ) -> None:
        self._journal = _Journal(behaviour or Behaviour(), keep_records=record)
        self._host = host
        self._port = port
        self._models = tuple(models)
        self._serving: _Serving | None = None

    # lifecycle

    def start(self) -> Self:
        if self._serving is not None:
            raise RuntimeError("the fake upstream is already running")
        sock = socket.create_server((self._host, self._port))
        serving = _Serving(_Application(self._journal, self._models), sock)
        serving.start()
        self._serving = serving
        return self

    def stop(self) -> None:
        """Stop serving; ends hung streams first. Does nothing when not running."""
        serving, self._serving = self._serving, None
        if serving is not None:
            serving.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._serving is None:
            raise RuntimeError("the fake upstream is not running")
        return self._serving.port

    @property
    def url(self) -> str:
        """E.g. "http://127.0.0.1:54321"; also the Anthropic SDK's base_url."""
        return f"http://{self._host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    # knobs

    @property
    def defaults(self) -> Behaviour:
        return self._journal.defaults

    def script(
        self,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        body: ScriptedBody | None = None,
        delay: float | None = None,
        chunk_delay: float | None = None,
        hang_after: int | None = None,
        path: str | None = None,
        times: int | None = 1,
    ) -> None:
        """Override the defaults for the next ``times`` requests to ``path``.

        Arguments left as None keep the start-up default; ``headers`` are added to
        the default headers. ``path=None`` matches every path, ``times=None``
        lasts until `reset`.
        """
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None")
        defaults = self._journal.defaults
        changes: dict[str, Any] = {
            "status": status,
            "body": body,
            "delay": delay,
            "chunk_delay": chunk_delay,
            "hang_after": hang_after,
        }
        behaviour = replace(
            defaults,
            headers={**defaults.headers, **(headers or {})},
            **{name: value for name, value in changes.items() if value is not None},
        )
        self._journal.add_rule(_Rule(behaviour, path, times))

    # observing

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received, oldest first."""
        return self._journal.requests

    @property
    def last_request(self) -> RecordedRequest:
        requests = self._journal.requests
        if not requests:
            raise LookupError("the fake upstream has received no request")
        return requests[-1]

    @property
    def disconnects(self) -> int:
        """How many responses the client abandoned before their end."""
        return self._journal.disconnects

    def wait_for_requests(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until ``count`` requests arrived since the last reset."""
        return self._journal.wait_for_requests(count, timeout)

    def wait_for_disconnects(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until ``disconnects`` reaches ``count``; False on timeout."""
        return self._journal.wait_for_disconnects(count, timeout)

    def reset(self) -> None:
        """Forget the recorded requests, the counters and the scripted rules."""
        self._journal.reset()


# ---------------------------------------------------------------------------- CLI


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.upstream",
        description="Serve the fake LLM upstream until interrupted.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0)
    parser.add_argument("--status", type=int, default=200)
    parser.add_argument("--hang-after", type=int, default=None)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM; requests are counted, not recorded."""
    args = _parse_args(argv)
    behaviour = Behaviour(
        status=args.status,
        delay=args.delay_ms / 1000,
        chunk_delay=args.chunk_delay_ms / 1000,
        hang_after=args.hang_after,
    )
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    with FakeUpstream(behaviour, host=args.host, port=args.port, record=False) as fake:
        sys.stdout.write(f"listening on {fake.url}\n")
        sys.stdout.flush()
        stopping.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
