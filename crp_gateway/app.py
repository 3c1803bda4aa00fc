"""``create_app()``: middleware, routes, error rendering and the lifespan."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from crp_gateway import __version__
from crp_gateway.api import (
    audit,
    discovery,
    health,
    inference,
    keys,
    providers,
    reports,
    systems,
    tenants,
)
from crp_gateway.errors import GatewayError, error_body
from crp_gateway.logging import configure_logging, get_logger
from crp_gateway.middleware import BodyLimitMiddleware, RequestContextMiddleware
from crp_gateway.runtime import open_runtime
from crp_gateway.settings import ConfigError, Settings, load_settings

log = get_logger("crp_gateway.app")


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    """One line naming the offending field; never the submitted value."""
    first: dict[str, Any] = exc.errors()[0]
    if first.get("type") == "json_invalid":
        return "The request body is not valid JSON.", None
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    field = ".".join(location) or None
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if field is None:
        return f"Invalid request body: {message}", None
    return f"Invalid value for {field!r}: {message}", field


def _envelope(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """Anthropic's SDKs expect ``"type": "error"`` beside ``error`` on their route."""
    if request.url.path == "/v1/messages":
        return {"type": "error", **body}
    return body


async def _gateway_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)
    return JSONResponse(
        _envelope(request, exc.to_body()), exc.status_code, headers=exc.headers
    )


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        error_body(exc.status_code, str(exc.detail)),
        exc.status_code,
        headers=dict(exc.headers or {}),
    )


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    message, field = _validation_message(exc)
    body = error_body(400, message)
    if field is not None:
        body["error"]["param"] = field
    return JSONResponse(body, 400)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    request_id = request.scope.get("state", {}).get("request_id", "")
    body = {
        "error": {
            "type": "api_error",
            "code": "internal_error",
            "message": f"Internal error; quote request id {request_id} to support.",
        }
    }
    return JSONResponse(body, 500)


def create_app(
    settings: Settings | None = None, *, redis_prefix: str | None = None
) -> FastAPI:
    """Build the ASGI app. Without ``settings``, read them from the environment."""
    settings = settings or load_settings()
    configure_logging(level=settings.log_level.value, json=settings.is_production)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with open_runtime(settings, redis_prefix=redis_prefix) as runtime:
            log.info("gateway.started", version=__version__)
            yield {"runtime": runtime}

    app = FastAPI(
        title="CRP Gateway",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
    for module in (
        health,
        discovery,
        tenants,
        keys,
        providers,
        systems,
        reports,
        inference,
        audit,
    ):
        app.include_router(module.router)
    # Added last = outermost: request ids wrap everything, CORS answers preflights
    # before any body is read.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.crp_max_body_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.allowed_origins,
        allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["*"],
        expose_headers=["X-Request-Id", "Server-Timing"],
        max_age=600,
    )
    app.add_middleware(RequestContextMiddleware)
    return app


def app_from_environment() -> FastAPI:
    """For ``uvicorn main:app``: a bad configuration is one line on stderr."""
    try:
        return create_app()
    except ConfigError as exc:
        print(f"crp-gateway: configuration error: {exc}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None
