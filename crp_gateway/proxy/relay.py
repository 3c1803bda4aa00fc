"""Stream relays: provider SSE in, client SSE out, one event at a time.

Each relay closes the upstream response when it ends for any reason, so a client
that disconnects (Starlette cancels the response) closes the provider
connection too, and records the call's usage exactly once.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any

import aiohttp

from crp_gateway.errors import GatewayError
from crp_gateway.governance import texts
from crp_gateway.providers import sse
from crp_gateway.providers.errors import scrub, transport_errors
from crp_gateway.providers.translate import (
    AnthropicToOpenAIStream,
    OpenAIToAnthropicStream,
    ProviderStreamError,
    TokenUsage,
    encode_anthropic_event,
)
from crp_gateway.proxy.call import Call

CLIENT_CLOSED_REQUEST = 499


def set_usage(call: Call, usage: TokenUsage) -> None:
    if call.usage is not None:
        call.usage.prompt_tokens = usage.prompt_tokens
        call.usage.completion_tokens = usage.completion_tokens


StreamFailure = GatewayError | ProviderStreamError


def compact_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def openai_error_event(error: StreamFailure) -> bytes:
    """The error chunk the OpenAI SDKs raise on (``data: {"error": ...}``)."""
    if isinstance(error, ProviderStreamError):
        body = {
            "error": {
                "type": "provider_error",
                "code": error.error_type,
                "message": error.message,
            }
        }
    else:
        body = error.to_body()
    return sse.encode_data(body)


def anthropic_error_event(error: StreamFailure) -> bytes:
    """Anthropic's ``event: error`` for either kind of failure."""
    inner = {"type": error.error_type, "message": error.message}
    return encode_anthropic_event({"type": "error", "error": inner})


async def _relay(
    call: Call,
    response: aiohttp.ClientResponse,
    handle: Callable[[sse.Event], Iterable[bytes]],
    finish: Callable[[], Iterable[bytes]],
    on_error: Callable[[StreamFailure], bytes],
) -> AsyncGenerator[bytes, None]:
    status = CLIENT_CLOSED_REQUEST  # until the stream ends or fails on its own
    assert call.route is not None
    try:
        with transport_errors(call.route.upstream):
            async for event in sse.events(response.content.iter_any()):
                for out in handle(event):
                    yield out
        status = 200
        for out in finish():
            yield out
    except GatewayError as error:
        status = error.status_code
        yield on_error(error)
    except ProviderStreamError as error:
        status = 502
        upstream = call.route.upstream
        yield on_error(
            ProviderStreamError(error.error_type, scrub(error.message, upstream))
        )
    finally:
        # Cancelled or closed by a disconnect, status is still 499.
        if status == 200:
            response.release()  # fully read: the connection goes back to the pool
        else:
            response.close()  # cut short: close the provider connection now
        call.stream_status = status
        if call.defer_usage:
            pass  # the verdict records the usage with the audit record
        elif status == CLIENT_CLOSED_REQUEST:
            call.abandon_usage(status=status)  # cancelled: nothing may be awaited
        else:
            await call.finish_usage(status=status)


def openai_passthrough(
    call: Call, response: aiohttp.ClientResponse, *, hide_usage_chunk: bool
) -> AsyncGenerator[bytes, None]:
    """OpenAI-compatible provider to OpenAI client: events forwarded as they come.

    The gateway always asks for ``include_usage``; when the client did not, the
    usage-only chunk is read for billing and not forwarded.
    """

    governed = call.governance is not None

    def handle(event: sse.Event) -> Iterable[bytes]:
        if event.data == sse.DONE or not (governed or b'"usage"' in event.data):
            return (event.raw + b"\n\n",)
        chunk: Any = event.json()
        if not isinstance(chunk, dict):
            return (event.raw + b"\n\n",)
        call.collect(texts.openai_chunk_text(chunk))
        if isinstance(chunk.get("usage"), dict):
            set_usage(call, TokenUsage.from_openai(chunk["usage"]))
            if hide_usage_chunk and not chunk.get("choices"):
                return ()
        return (event.raw + b"\n\n",)

    return _relay(call, response, handle, tuple, openai_error_event)


def anthropic_to_openai(
    call: Call, response: aiohttp.ClientResponse, translator: AnthropicToOpenAIStream
) -> AsyncGenerator[bytes, None]:
    def handle(event: sse.Event) -> Iterable[bytes]:
        payload = event.json()
        call.collect(texts.anthropic_event_text(payload))
        chunks = translator.process(payload)
        set_usage(call, translator.usage)
        return [sse.encode_data(chunk) for chunk in chunks]

    def finish() -> Iterable[bytes]:
        return (b"data: [DONE]\n\n",)

    return _relay(call, response, handle, finish, openai_error_event)


def anthropic_passthrough(
    call: Call, response: aiohttp.ClientResponse
) -> AsyncGenerator[bytes, None]:
    """Anthropic provider to Anthropic client: events forwarded unchanged."""
    seen: dict[str, Any] = {}

    def handle(event: sse.Event) -> Iterable[bytes]:
        if event.name == b"content_block_delta" and call.governance is not None:
            call.collect(texts.anthropic_event_text(json.loads(event.data)))
        elif event.name in {b"message_start", b"message_delta"}:
            payload: Any = json.loads(event.data)
            usage = (
                payload.get("message", {}).get("usage")
                if event.name == b"message_start"
                else payload.get("usage")
            )
            if isinstance(usage, dict):
                seen.update({k: v for k, v in usage.items() if v is not None})
                set_usage(call, TokenUsage.from_anthropic(seen))
        elif event.name == b"error":
            error = json.loads(event.data).get("error", {})
            raise ProviderStreamError(
                str(error.get("type", "api_error")), str(error.get("message", ""))
            )
        return (event.raw + b"\n\n",)

    return _relay(call, response, handle, tuple, anthropic_error_event)


def openai_to_anthropic(
    call: Call, response: aiohttp.ClientResponse, translator: OpenAIToAnthropicStream
) -> AsyncGenerator[bytes, None]:
    finished = False

    def handle(event: sse.Event) -> Iterable[bytes]:
        nonlocal finished
        if event.data == sse.DONE:
            finished = True
            out = translator.finish()
        else:
            chunk = event.json()
            call.collect(texts.openai_chunk_text(chunk))
            out = translator.process(chunk)
        set_usage(call, translator.usage)
        return [encode_anthropic_event(item) for item in out]

    def finish() -> Iterable[bytes]:
        if finished:
            return ()
        out = translator.finish()
        set_usage(call, translator.usage)
        return [encode_anthropic_event(item) for item in out]

    return _relay(call, response, handle, finish, anthropic_error_event)
