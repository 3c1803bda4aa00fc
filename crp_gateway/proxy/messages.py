"""``POST /v1/messages``: Anthropic clients, any provider.

Anthropic providers get the client's body unchanged but for ``model``;
OpenAI-compatible providers get it translated to Chat Completions and back.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.responses import Response

from crp_gateway.errors import GatewayError
from crp_gateway.providers import wire
from crp_gateway.providers.translate import (
    OpenAIToAnthropicStream,
    TokenUsage,
    TranslationError,
    anthropic_request_to_openai,
    openai_response_to_anthropic,
)
from crp_gateway.proxy import relay, validation
from crp_gateway.proxy.call import Call
from crp_gateway.proxy.chat import (
    json_response,
    resolve,
    stream_response,
    translation_error,
)
from crp_gateway.proxy.routing import Route


async def messages(call: Call, body: dict[str, Any]) -> Response:
    model, stream = validation.messages_request(body)
    route = await resolve(call, model, stream=stream)
    try:
        if route.upstream.speaks_openai:
            return await _via_openai(call, route, body, stream=stream)
        return await _native(call, route, body, stream=stream)
    except GatewayError as error:
        call.finish_usage(status=error.status_code)
        raise


async def _native(
    call: Call, route: Route, body: dict[str, Any], *, stream: bool
) -> Response:
    payload = {**body, "model": route.model}
    if "max_tokens" not in payload:
        payload["max_tokens"] = call.runtime.settings.crp_default_max_tokens
    started = time.perf_counter()
    if stream:
        response = await wire.open_response(
            call.runtime.clients,
            route.upstream,
            "POST",
            "messages",
            body=payload,
            client_headers=call.client_headers,
            stream=True,
        )
        call.timing.upstream_seconds = time.perf_counter() - started
        events = relay.anthropic_passthrough(call, response)
        return stream_response(call, events, wire.returned_headers(response))
    raw, parsed, response = await wire.request_json(
        call.runtime.clients,
        route.upstream,
        "POST",
        "messages",
        body=payload,
        client_headers=call.client_headers,
    )
    call.timing.upstream_seconds = time.perf_counter() - started
    relay.set_usage(call, TokenUsage.from_anthropic(parsed.get("usage") or {}))
    call.finish_usage()
    return json_response(call, raw, wire.returned_headers(response))


async def _via_openai(
    call: Call, route: Route, body: dict[str, Any], *, stream: bool
) -> Response:
    try:
        request = anthropic_request_to_openai(body, model=route.model)
    except TranslationError as error:
        raise translation_error(error) from None
    started = time.perf_counter()
    if stream:
        response = await wire.open_response(
            call.runtime.clients,
            route.upstream,
            "POST",
            "chat/completions",
            body=request,
            stream=True,
        )
        call.timing.upstream_seconds = time.perf_counter() - started
        translator = OpenAIToAnthropicStream(model=route.model)
        events = relay.openai_to_anthropic(call, response, translator)
        return stream_response(call, events, wire.returned_headers(response))
    _raw, parsed, response = await wire.request_json(
        call.runtime.clients, route.upstream, "POST", "chat/completions", body=request
    )
    call.timing.upstream_seconds = time.perf_counter() - started
    answer = openai_response_to_anthropic(parsed, model=route.model)
    relay.set_usage(call, TokenUsage.from_openai(parsed.get("usage") or {}))
    call.finish_usage()
    return json_response(
        call, relay.compact_json(answer), wire.returned_headers(response)
    )
