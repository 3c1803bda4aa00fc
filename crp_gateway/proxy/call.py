"""What one proxied call carries through the data path, and its timing header."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import aiohttp

from crp_gateway.audit.sessions import Place
from crp_gateway.auth.authenticator import Principal
from crp_gateway.governance.engine import Prepared
from crp_gateway.providers import wire
from crp_gateway.proxy.routing import Route
from crp_gateway.proxy.usage import Usage
from crp_gateway.runtime import Runtime


@dataclass(slots=True)
class Timing:
    """``Server-Timing``: gateway time and upstream time, told apart.

    ``upstream`` is the time spent waiting on the provider: the whole exchange for
    a complete answer, or until its response headers for a stream (the header is
    sent before the stream ends). ``gateway`` is the rest of the time from the
    moment the request arrived until our response headers.
    """

    started: float
    upstream_seconds: float = 0.0

    def header(self) -> str:
        total = time.perf_counter() - self.started
        gateway = max(0.0, total - self.upstream_seconds)
        upstream = self.upstream_seconds
        return f"gateway;dur={gateway * 1000:.2f}, upstream;dur={upstream * 1000:.2f}"


@dataclass(slots=True)
class Call:
    runtime: Runtime
    principal: Principal
    request_id: str
    client_headers: Mapping[str, str]
    timing: Timing
    endpoint: str
    route: Route | None = None
    usage: Usage | None = field(default=None)
    governance: Prepared | None = None
    output: list[str] = field(default_factory=list)
    #: Set while a stream is buffered: its usage is recorded after the verdict.
    defer_usage: bool = False
    stream_status: int = 200
    #: Where the call's audit window goes (set by governance's request phase).
    place: Place | None = None
    plan: str = "free"
    #: Whether a request went to the provider (a failure after it is an error,
    #: before it a refusal).
    dispatched: bool = False
    #: Set once the call's audit record is written (a call has one).
    audited: bool = False
    _recorded: bool = False

    def collect(self, text: str) -> None:
        """Keep answer text for the governance verdict (only when governed)."""
        if self.governance is not None and text:
            self.output.append(text)

    def start_usage(self, route: Route, *, stream: bool) -> Usage:
        self.route = route
        self.usage = Usage(
            tenant_id=self.principal.tenant_id,
            key_id=self.principal.key_id,
            request_id=self.request_id,
            endpoint=self.endpoint,
            provider=route.upstream.name,
            model=route.model,
            stream=stream,
        )
        return self.usage

    def _upstream(self) -> Route:
        if self.route is None:
            raise RuntimeError("the call has no route yet")
        return self.route

    def _client_headers(self, forward: bool) -> Mapping[str, str] | None:
        return self.client_headers if forward else None

    async def fetch_json(
        self, path: str, body: Any, *, forward_headers: bool = False
    ) -> tuple[bytes, Any, aiohttp.ClientResponse]:
        """A complete exchange with the routed provider, timed as upstream time.

        ``forward_headers`` lets the provider see the client's provider-defined
        options (``anthropic-version`` / ``-beta``; see ``wire``), nothing else.
        """
        started = time.perf_counter()
        self.dispatched = True
        try:
            return await wire.request_json(
                self.runtime.clients,
                self._upstream().upstream,
                "POST",
                path,
                body=body,
                client_headers=self._client_headers(forward_headers),
            )
        finally:
            self.timing.upstream_seconds = time.perf_counter() - started

    async def open_stream(
        self, path: str, body: Any, *, forward_headers: bool = False
    ) -> aiohttp.ClientResponse:
        """A streamed exchange, timed until the provider's response headers."""
        started = time.perf_counter()
        self.dispatched = True
        try:
            return await wire.open_response(
                self.runtime.clients,
                self._upstream().upstream,
                "POST",
                path,
                body=body,
                client_headers=self._client_headers(forward_headers),
                stream=True,
            )
        finally:
            self.timing.upstream_seconds = time.perf_counter() - started

    def take_usage(self, *, status: int) -> dict[str, Any] | None:
        """The call's usage row with its final status, once (then ``None``)."""
        if self.usage is None or self._recorded:
            return None
        self.usage.status = status
        self._recorded = True
        # a shallow copy: ``asdict`` would deep-copy every value of every call
        return {f.name: getattr(self.usage, f.name) for f in fields(self.usage)}

    async def finish_usage(self, *, status: int = 200) -> None:
        """Commit the call's usage row (once), before the answer is sent."""
        if (row := self.take_usage(status=status)) is not None:
            await self.runtime.audit.record_usage(row)

    def abandon_usage(self, *, status: int) -> None:
        """Queue the usage row of a call whose client left (nothing to await)."""
        if (row := self.take_usage(status=status)) is not None:
            self.runtime.audit.submit_usage(row)
