"""``POST /v1/chat/completions``: OpenAI clients, any provider.

OpenAI-compatible providers get the client's body unchanged but for ``model``
(and ``stream_options.include_usage`` on streams, for billing); Anthropic
providers get it translated both ways. Every call is governed
(``proxy.governed``).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.responses import Response

from crp_gateway.errors import GatewayError, InvalidRequest
from crp_gateway.governance import texts
from crp_gateway.providers import wire
from crp_gateway.providers.translate import (
    AnthropicToOpenAIStream,
    TokenUsage,
    TranslationError,
    anthropic_response_to_openai,
    openai_request_to_anthropic,
)
from crp_gateway.proxy import governed, relay, routing, validation
from crp_gateway.proxy.call import Call
from crp_gateway.proxy.routing import Route


def translation_error(error: TranslationError) -> InvalidRequest:
    return InvalidRequest(str(error), code="unsupported_parameter", param=error.field)


async def resolve(
    call: Call, body: dict[str, Any], model: str, *, stream: bool
) -> Route:
    """Route the call, then run governance's request phase on it."""
    try:
        context = await call.runtime.providers.context(call.principal.tenant_id)
        route = routing.route(context.upstreams, model)
        call.start_usage(route, stream=stream)
        await governed.prepare(call, body, context)
    except GatewayError as error:  # refused or halted before dispatch: still a call
        await governed.failed(call, error)
        raise
    return route


async def complete(
    call: Call, content: bytes, output_text: str, upstream_headers: dict[str, str]
) -> Response:
    """A complete answer: decided, audited, usage recorded, CRP headers attached."""
    upstream_headers.update(await governed.conclude(call, output_text))
    await call.finish_usage()  # ungoverned; a governed call's rode with its audit
    upstream_headers["Server-Timing"] = call.timing.header()
    return Response(content, media_type="application/json", headers=upstream_headers)


async def chat_completions(call: Call, body: dict[str, Any]) -> Response:
    model, stream = validation.chat_request(body)
    route = await resolve(call, body, model, stream=stream)
    try:
        if route.upstream.speaks_openai:
            if stream:
                return await _openai_stream(call, route, body)
            return await _openai_complete(call, route, body)
        if stream:
            return await _anthropic_stream(call, route, body)
        return await _anthropic_complete(call, route, body)
    except GatewayError as error:
        await governed.failed(call, error)
        raise


async def _openai_complete(call: Call, route: Route, body: dict[str, Any]) -> Response:
    raw, parsed, response = await call.fetch_json(
        "chat/completions", {**body, "model": route.model}
    )
    if isinstance(parsed, dict) and isinstance(parsed.get("usage"), dict):
        relay.set_usage(call, TokenUsage.from_openai(parsed["usage"]))
    output = texts.openai_output_text(parsed) if isinstance(parsed, dict) else ""
    return await complete(call, raw, output, wire.returned_headers(response))


async def _openai_stream(call: Call, route: Route, body: dict[str, Any]) -> Response:
    options = body.get("stream_options")
    options = options if isinstance(options, dict) else {}
    response = await call.open_stream(
        "chat/completions",
        {
            **body,
            "model": route.model,
            "stream_options": {**options, "include_usage": True},
        },
    )
    events = relay.openai_passthrough(
        call, response, hide_usage_chunk=options.get("include_usage") is not True
    )
    return await governed.respond_stream(call, events, wire.returned_headers(response))


def _to_anthropic(call: Call, route: Route, body: dict[str, Any]) -> dict[str, Any]:
    try:
        return openai_request_to_anthropic(
            body,
            model=route.model,
            default_max_tokens=call.runtime.settings.crp_default_max_tokens,
        )
    except TranslationError as error:
        raise translation_error(error) from None


async def _anthropic_complete(
    call: Call, route: Route, body: dict[str, Any]
) -> Response:
    request = _to_anthropic(call, route, body)
    _raw, parsed, response = await call.fetch_json(
        "messages", request, forward_headers=True
    )
    answer = anthropic_response_to_openai(
        parsed, model=route.model, created=int(time.time())
    )
    relay.set_usage(call, TokenUsage.from_anthropic(parsed.get("usage") or {}))
    return await complete(
        call,
        relay.compact_json(answer),
        texts.openai_output_text(answer),
        wire.returned_headers(response),
    )


async def _anthropic_stream(call: Call, route: Route, body: dict[str, Any]) -> Response:
    request = _to_anthropic(call, route, body)
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    response = await call.open_stream("messages", request, forward_headers=True)
    translator = AnthropicToOpenAIStream(
        model=route.model, created=int(time.time()), include_usage=include_usage
    )
    events = relay.anthropic_to_openai(call, response, translator)
    return await governed.respond_stream(call, events, wire.returned_headers(response))
