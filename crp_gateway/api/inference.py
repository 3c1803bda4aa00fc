"""The model endpoints: OpenAI's chat, embeddings and models, Anthropic's messages.

Bodies are read as raw JSON, not through a Pydantic model, so every field the
client sends (known to us or not) reaches the provider unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from crp_gateway.api.deps import PrincipalDep, RuntimeDep
from crp_gateway.auth.authenticator import Principal
from crp_gateway.errors import RateLimited
from crp_gateway.proxy import chat, embeddings, messages, validation
from crp_gateway.proxy.call import Call, Timing
from crp_gateway.runtime import Runtime

router = APIRouter(prefix="/v1", tags=["inference"])

Handler = Callable[[Call, dict[str, Any]], Awaitable[Response]]


async def _check_key_rate(runtime: Runtime, principal: Principal) -> None:
    if principal.rpm_limit is None:
        return
    decision = await runtime.state.hit(
        principal.tenant_id,
        f"key:{principal.key_id}:rpm",
        limit=principal.rpm_limit,
        window_seconds=60,
    )
    if not decision.allowed:
        raise RateLimited(
            f"This key allows {principal.rpm_limit} requests per minute.",
            retry_after=decision.retry_after,
        )


async def _run(
    request: Request,
    runtime: Runtime,
    principal: Principal,
    endpoint: str,
    handler: Handler,
) -> Response:
    await _check_key_rate(runtime, principal)
    body = validation.parse_object(await request.body())
    state = request.scope.get("state", {})
    call = Call(
        runtime=runtime,
        principal=principal,
        request_id=state.get("request_id", ""),
        client_headers=request.headers,
        timing=Timing(started=state.get("started", time.perf_counter())),
        endpoint=endpoint,
    )
    return await handler(call, body)


@router.post("/chat/completions")
async def chat_completions(
    request: Request, runtime: RuntimeDep, principal: PrincipalDep
) -> Response:
    """OpenAI-compatible chat completions, streaming or not, on any provider."""
    return await _run(request, runtime, principal, "chat", chat.chat_completions)


@router.post("/messages")
async def create_message(
    request: Request, runtime: RuntimeDep, principal: PrincipalDep
) -> Response:
    """Anthropic-compatible messages, streaming or not, on any provider."""
    return await _run(request, runtime, principal, "messages", messages.messages)


@router.post("/embeddings")
async def create_embeddings(
    request: Request, runtime: RuntimeDep, principal: PrincipalDep
) -> Response:
    """OpenAI-compatible embeddings through OpenAI and custom providers."""
    return await _run(request, runtime, principal, "embeddings", embeddings.embeddings)


@router.get("/models")
async def list_models(runtime: RuntimeDep, principal: PrincipalDep) -> JSONResponse:
    """Models reachable through the tenant's providers, plain and provider/model."""
    upstreams = await runtime.providers.for_tenant(principal.tenant_id)
    return JSONResponse(
        await runtime.models.list_models(principal.tenant_id, upstreams)
    )
