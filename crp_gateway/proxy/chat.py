"""``POST /v1/chat/completions``: OpenAI clients, any provider.

OpenAI-compatible providers get the client's body unchanged but for ``model``
(and ``stream_options.include_usage`` on streams, for billing); Anthropic
providers get it translated both ways.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.responses import Response, StreamingResponse

from crp_gateway.errors import GatewayError, InvalidRequest
from crp_gateway.providers import wire
from crp_gateway.providers.translate import (
    AnthropicToOpenAIStream,
    TokenUsage,
    TranslationError,
    anthropic_response_to_openai,
    openai_request_to_anthropic,
)
from crp_gateway.proxy import relay, routing, validation
from crp_gateway.proxy.call import Call
from crp_gateway.proxy.routing import Route

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def json_response(call: Call, content: bytes, headers: dict[str, str]) -> Response:
    headers["Server-Timing"] = call.timing.header()
    return Response(content, media_type="application/json", headers=headers)


def stream_response(call: Call, body: Any, headers: dict[str, str]) -> Response:
    headers.update(STREAM_HEADERS)
    headers["Server-Timing"] = call.timing.header()
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


def translation_error(error: TranslationError) -> InvalidRequest:
    return InvalidRequest(str(error), code="unsupported_parameter", param=error.field)


async def resolve(call: Call, model: str, *, stream: bool) -> Route:
    upstreams = await call.runtime.providers.for_tenant(call.principal.tenant_id)
    route = routing.route(upstreams, model)
    call.start_usage(route, stream=stream)
    return route


async def chat_completions(call: Call, body: dict[str, Any]) -> Response:
    model, stream = validation.chat_request(body)
    route = await resolve(call, model, stream=stream)
    try:
        if route.upstream.speaks_openai:
            if stream:
                return await _openai_stream(call, route, body)
            return await _openai_complete(call, route, body)
        if stream:
            return await _anthropic_stream(call, route, body)
        return await _anthropic_complete(call, route, body)
    except GatewayError as error:
        call.finish_usage(status=error.status_code)
        raise


async def _openai_complete(call: Call, route: Route, body: dict[str, Any]) -> Response:
    started = time.perf_counter()
    raw, parsed, response = await wire.request_json(
        call.runtime.clients,
        route.upstream,
        "POST",
        "chat/completions",
        body={**body, "model": route.model},
    )
    call.timing.upstream_seconds = time.perf_counter() - started
    if call.usage is not None and isinstance(parsed.get("usage"), dict):
        relay.set_usage(call, TokenUsage.from_openai(parsed["usage"]))
    call.finish_usage()
    return json_response(call, raw, wire.returned_headers(response))


async def _openai_stream(call: Call, route: Route, body: dict[str, Any]) -> Response:
    options = body.get("stream_options")
    options = options if isinstance(options, dict) else {}
    started = time.perf_counter()
    response = await wire.open_response(
        call.runtime.clients,
        route.upstream,
        "POST",
        "chat/completions",
        body={
            **body,
            "model": route.model,
            "stream_options": {**options, "include_usage": True},
        },
        stream=True,
    )
    call.timing.upstream_seconds = time.perf_counter() - started
    events = relay.openai_passthrough(
        call, response, hide_usage_chunk=options.get("include_usage") is not True
    )
    return stream_response(call, events, wire.returned_headers(response))


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
    started = time.perf_counter()
    _raw, parsed, response = await wire.request_json(
        call.runtime.clients,
        route.upstream,
        "POST",
        "messages",
        body=request,
        client_headers=call.client_headers,
    )
    call.timing.upstream_seconds = time.perf_counter() - started
    answer = anthropic_response_to_openai(
        parsed, model=route.model, created=int(time.time())
    )
    relay.set_usage(call, TokenUsage.from_anthropic(parsed.get("usage") or {}))
    call.finish_usage()
    return json_response(
        call, relay.compact_json(answer), wire.returned_headers(response)
    )


async def _anthropic_stream(call: Call, route: Route, body: dict[str, Any]) -> Response:
    request = _to_anthropic(call, route, body)
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    started = time.perf_counter()
    response = await wire.open_response(
        call.runtime.clients,
        route.upstream,
        "POST",
        "messages",
        body=request,
        client_headers=call.client_headers,
        stream=True,
    )
    call.timing.upstream_seconds = time.perf_counter() - started
    translator = AnthropicToOpenAIStream(
        model=route.model, created=int(time.time()), include_usage=include_usage
    )
    events = relay.anthropic_to_openai(call, response, translator)
    return stream_response(call, events, wire.returned_headers(response))
