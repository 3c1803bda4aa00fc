"""Pure ASGI middleware at the edge: request ids and access lines, body limits.

Both wrap ``send``/``receive`` instead of buffering, so streamed responses (SSE)
pass through untouched.
"""

from __future__ import annotations

import json
import re
import time

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crp_gateway.errors import error_body
from crp_gateway.governance.headers import SECURITY_HEADERS
from crp_gateway.ids import random_token
from crp_gateway.logging import get_logger

log = get_logger("crp_gateway.http")

REQUEST_ID_HEADER = "x-request-id"
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._\-]{8,64}")


class RequestContextMiddleware:
    """Gives every request an id (``X-Request-Id``), binds it to the log context,
    adds the security headers of crp-protocol.md §2.2 (015§7) to every response
    that does not set its own, and writes one ``http.request`` line at the end."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._security = list(SECURITY_HEADERS.items())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        request_id = (
            offered
            if _CLIENT_REQUEST_ID.fullmatch(offered)
            else f"req_{random_token()}"
        )
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["started"] = started
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-Id"] = request_id
                for name, value in self._security:
                    headers.setdefault(name, value)
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                log.info(
                    "http.request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                )


class BodyLimitMiddleware:
    """Refuses request bodies over ``max_bytes`` with 413.

    A declared ``Content-Length`` over the limit is refused before the body is
    read. A chunked body is counted as it arrives; crossing the limit raises an
    ``HTTPException(413)`` from ``receive``, which FastAPI's body parsing re-raises
    and the app's error handler renders.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if (
            declared is not None
            and declared.isdigit()
            and int(declared) > self.max_bytes
        ):
            await self._refuse(send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._message())
            return message

        await self.app(scope, counting_receive, send)

    def _message(self) -> str:
        return f"Request body is larger than the {self.max_bytes}-byte limit."

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(error_body(413, self._message())).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
