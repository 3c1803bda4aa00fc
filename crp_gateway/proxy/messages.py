"""``POST /v1/messages``: Anthropic clients, any provider.

Anthropic providers get the client's body unchanged but for ``model``;
OpenAI-compatible providers get it translated to Chat Completions and back.
Every call is governed (``proxy.governed``).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from crp_gateway.errors import GatewayError
from crp_gateway.governance import texts
from crp_gateway.providers import wire
from crp_gateway.providers.translate import (
    OpenAIToAnthropicStream,
    TokenUsage,
    TranslationError,
    anthropic_request_to_openai,
    openai_response_to_anthropic,
)
from crp_gateway.proxy import governed, relay, validation
from crp_gateway.proxy.call import Call
from crp_gateway.proxy.chat import complete, resolve, translation_error
from crp_gateway.proxy.routing import Route


async def messages(call: Call, body: dict[str, Any]) -> Response:
    model, stream = validation.messages_request(body)
    route = await resolve(call, body, model, stream=stream)
    try:
        if route.upstream.speaks_openai:
            return await _via_openai(call, route, body, stream=stream)
        return await _native(call, route, body, stream=stream)
    except GatewayError as error:
        await governed.failed(call, error)
        raise


async def _native(
    call: Call, route: Route, body: dict[str, Any], *, stream: bool
) -> Response:
    payload = {**body, "model": route.model}
    if "max_tokens" not in payload:
        payload["max_tokens"] = call.runtime.settings.crp_default_max_tokens
    if stream:
        response = await call.open_stream("messages", payload, forward_headers=True)
        events = relay.anthropic_passthrough(call, response)
        return await governed.respond_stream(
            call, events, wire.returned_headers(response)
        )
    raw, parsed, response = await call.fetch_json(
        "messages", payload, forward_headers=True
    )
    relay.set_usage(call, TokenUsage.from_anthropic(parsed.get("usage") or {}))
    output = texts.anthropic_output_text(parsed) if isinstance(parsed, dict) else ""
    return await complete(call, raw, output, wire.returned_headers(response))


async def _via_openai(
    call: Call, route: Route, body: dict[str, Any], *, stream: bool
) -> Response:
    try:
        request = anthropic_request_to_openai(body, model=route.model)
    except TranslationError as error:
        raise translation_error(error) from None
    if stream:
        response = await call.open_stream("chat/completions", request)
        translator = OpenAIToAnthropicStream(model=route.model)
        events = relay.openai_to_anthropic(call, response, translator)
        return await governed.respond_stream(
            call, events, wire.returned_headers(response)
        )
    _raw, parsed, response = await call.fetch_json("chat/completions", request)
    answer = openai_response_to_anthropic(parsed, model=route.model)
    relay.set_usage(call, TokenUsage.from_openai(parsed.get("usage") or {}))
    return await complete(
        call,
        relay.compact_json(answer),
        texts.anthropic_output_text(answer),
        wire.returned_headers(response),
    )
