"""Turning a provider's failure into the gateway's answer, at exactly one boundary.

:func:`transport_errors` maps ``aiohttp`` exceptions (most specific first) and
:func:`raise_for_status` maps an upstream error status. Every message that quotes
the provider is scrubbed of the provider key first.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import aiohttp

from crp_gateway.errors import (
    GatewayError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    ProviderAuthFailed,
    ProviderFailed,
    ProviderTimeout,
    RateLimited,
)
from crp_gateway.providers.upstream import Upstream

_MAX_MESSAGE = 500
_KEY_SHAPES = re.compile(r"\b(?:sk|key|pk)-[A-Za-z0-9_\-*.]{6,}")


def scrub(text: str, upstream: Upstream) -> str:
    """``text`` without the provider key, its masked echoes, or anything key-like."""
    if upstream.api_key:
        text = text.replace(upstream.api_key, "[redacted]")
    text = _KEY_SHAPES.sub("[redacted]", text)
    return text[:_MAX_MESSAGE]


def upstream_message(body: bytes, upstream: Upstream) -> str:
    """The provider's own error message (OpenAI or Anthropic shape), scrubbed."""
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        return scrub(body.decode("utf-8", "replace").strip(), upstream) or "no detail"
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return scrub(error["message"], upstream)
    if isinstance(error, str):
        return scrub(error, upstream)
    return "no detail"


def _retry_after(headers: Mapping[str, str]) -> int | None:
    value = headers.get("retry-after", "")
    try:
        return max(1, round(float(value)))
    except ValueError:
        return None


def error_for_status(
    upstream: Upstream, status: int, body: bytes, headers: Mapping[str, str]
) -> GatewayError:
    """The gateway error for a provider's ``status`` (>= 400)."""
    name = upstream.name
    if status in {401, 403}:
        return ProviderAuthFailed(
            f"Provider {name!r} refused the stored API key (HTTP {status}). Rotate it "
            f"with POST /v1/providers/{upstream.kind.value}"
            + (" (with the same name)." if upstream.kind.value == "custom" else "."),
        )
    message = upstream_message(body, upstream)
    if status == 429:
        return RateLimited(
            f"Provider {name!r} is rate limiting: {message}",
            retry_after=_retry_after(headers),
            code="provider_rate_limited",
        )
    if status >= 500:
        return ProviderFailed(f"Provider {name!r} failed (HTTP {status}): {message}")
    if status == 404:
        return NotFound(f"Provider {name!r}: {message}", code="model_not_found")
    if status == 413:
        return PayloadTooLarge(f"Provider {name!r}: {message}")
    return InvalidRequest(f"Provider {name!r}: {message}", code="provider_rejected")


@contextlib.contextmanager
def transport_errors(upstream: Upstream) -> Iterator[None]:
    """Map ``aiohttp`` failures talking to ``upstream`` to gateway errors."""
    name = upstream.name
    try:
        yield
    except TimeoutError as exc:
        raise ProviderTimeout(
            f"Provider {name!r} did not answer in time ({type(exc).__name__})."
        ) from exc
    except (aiohttp.ClientConnectorError, aiohttp.InvalidURL) as exc:
        raise ProviderFailed(
            f"Provider {name!r} is unreachable at its base_url.",
            code="provider_unreachable",
        ) from exc
    except aiohttp.ClientError as exc:
        raise ProviderFailed(
            f"Provider {name!r} broke the connection ({type(exc).__name__}).",
            code="provider_unreachable",
        ) from exc
