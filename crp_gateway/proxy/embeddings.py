"""``POST /v1/embeddings`` through OpenAI and custom providers."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from crp_gateway.errors import GatewayError, InvalidRequest
from crp_gateway.providers import wire
from crp_gateway.providers.translate import TokenUsage
from crp_gateway.proxy import governed, relay, validation
from crp_gateway.proxy.call import Call
from crp_gateway.proxy.chat import complete, resolve


async def embeddings(call: Call, body: dict[str, Any]) -> Response:
    model = validation.embeddings_request(body)
    route = await resolve(call, body, model, stream=False)
    try:
        if not route.upstream.speaks_openai:
            raise InvalidRequest(
                f"Provider {route.upstream.name!r} offers no embeddings; use an "
                "OpenAI or custom provider (provider/model).",
                code="unsupported_endpoint",
                param="model",
            )
        raw, parsed, response = await call.fetch_json(
            "embeddings", {**body, "model": route.model}
        )
    except GatewayError as error:
        await governed.failed(call, error)
        raise
    if isinstance(parsed, dict) and isinstance(parsed.get("usage"), dict):
        relay.set_usage(call, TokenUsage.from_openai(parsed["usage"]))
    return await complete(call, raw, "", wire.returned_headers(response))  # no text out
