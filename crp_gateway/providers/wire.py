"""How to reach each kind of provider: URLs, headers, and one request helper.

OpenAI and custom providers speak the OpenAI API under their ``base_url``
(``.../v1``); Anthropic speaks the Messages API under its ``base_url`` (without
``/v1``, as Anthropic's SDKs have it). The outbound headers are built from an
allowlist: the provider key, the content type and a few provider-defined
options the client may set. Nothing else of the client's request is forwarded:
not its ``Authorization``, cookies, forwarding headers or any ``CRP-*`` header.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from crp_gateway.errors import ProviderFailed
from crp_gateway.providers.credentials import unreadable
from crp_gateway.providers.errors import error_for_status, transport_errors
from crp_gateway.providers.upstream import Upstream, UpstreamClients

ANTHROPIC_VERSION = "2023-06-01"
_CONNECT_ATTEMPTS = 2

#: Client headers an Anthropic provider may receive, unchanged.
ANTHROPIC_CLIENT_HEADERS = ("anthropic-version", "anthropic-beta")

#: Upstream response headers worth handing back to the client.
RETURNED_HEADER_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-", "openai-")


def upstream_url(upstream: Upstream, path: str) -> str:
    """``path`` is relative to the API root: ``chat/completions``, ``messages``."""
    root = upstream.base_url if upstream.speaks_openai else f"{upstream.base_url}/v1"
    return f"{root}/{path}"


def _api_key(upstream: Upstream) -> str:
    if upstream.api_key is None:
        raise unreadable(upstream.name, upstream.kind.value)
    return upstream.api_key


def outbound_headers(
    upstream: Upstream, client_headers: Mapping[str, str], *, stream: bool
) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if stream:
        headers["Accept"] = "text/event-stream"
        headers["Accept-Encoding"] = "identity"
    key = _api_key(upstream)
    if upstream.speaks_openai:
        headers["Authorization"] = f"Bearer {key}"
        if upstream.organization:
            headers["OpenAI-Organization"] = upstream.organization
        return headers
    headers["x-api-key"] = key
    headers["anthropic-version"] = ANTHROPIC_VERSION
    for name in ANTHROPIC_CLIENT_HEADERS:
        if value := client_headers.get(name):
            headers[name] = value
    return headers


def returned_headers(response: aiohttp.ClientResponse) -> dict[str, str]:
    """The provider's rate-limit and processing headers, never a ``CRP-*`` one."""
    kept = {
        name.lower(): value
        for name, value in response.headers.items()
        if name.lower().startswith(RETURNED_HEADER_PREFIXES)
    }
    for name in ("x-request-id", "request-id"):
        if value := response.headers.get(name):
            kept["x-upstream-request-id"] = value
    return kept


async def _send(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    data: bytes | None,
    headers: dict[str, str],
    timeout: aiohttp.ClientTimeout,
) -> aiohttp.ClientResponse:
    """One request; a failure to *connect* (nothing sent yet) is retried once."""
    for attempt in range(_CONNECT_ATTEMPTS):
        try:
            return await session.request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            )
        except aiohttp.ClientConnectorError:
            if attempt + 1 == _CONNECT_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


async def open_response(
    clients: UpstreamClients,
    upstream: Upstream,
    method: str,
    path: str,
    *,
    body: Any = None,
    client_headers: Mapping[str, str] | None = None,
    stream: bool = False,
) -> aiohttp.ClientResponse:
    """Send a request and return the response with its body still unread.

    An error status is read, closed and raised as the gateway's error; the caller
    owns (and must release or close) a successful response.
    """
    url = upstream_url(upstream, path)
    data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
    with transport_errors(upstream):
        response = await _send(
            clients.for_url(url),
            method,
            url,
            data=data,
            headers=outbound_headers(upstream, client_headers or {}, stream=stream),
            timeout=clients.timeouts.for_request(stream=stream),
        )
    if response.status >= 400:
        try:
            with transport_errors(upstream):
                error_body = await response.read()
        finally:
            response.release()
        raise error_for_status(upstream, response.status, error_body, response.headers)
    return response


async def request_json(
    clients: UpstreamClients,
    upstream: Upstream,
    method: str,
    path: str,
    *,
    body: Any = None,
    client_headers: Mapping[str, str] | None = None,
) -> tuple[bytes, Any, aiohttp.ClientResponse]:
    """A complete JSON exchange: the raw body, its parsed value and the response."""
    response = await open_response(
        clients, upstream, method, path, body=body, client_headers=client_headers
    )
    try:
        with transport_errors(upstream):
            raw = await response.read()
    finally:
        response.release()
    try:
        return raw, json.loads(raw), response
    except ValueError:
        raise ProviderFailed(
            f"Provider {upstream.name!r} answered {response.status} with a body "
            "that is not JSON."
        ) from None
