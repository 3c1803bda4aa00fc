"""Shared pieces of the translation layer: errors, token usage, JSON helpers.

Everything here is pure: no I/O, no clocks, no module-level mutable state.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

JSONObject = dict[str, Any]
"""A JSON object as produced by ``json.loads`` (and accepted by ``json.dumps``)."""


class TranslationError(ValueError):
    """A request or response cannot be expressed in the other wire format.

    ``field`` is the dotted/indexed path of the offending parameter in the
    *input* document (e.g. ``"messages[2].tool_calls[0].function.arguments"``),
    so the caller can report it as OpenAI's ``param`` or in an Anthropic
    ``invalid_request_error`` message. ``reason`` is the message without it.
    """

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


class ProviderStreamError(Exception):
    """The provider reported an error in the middle of a stream.

    ``error_type`` is the provider's error type (Anthropic: ``overloaded_error``,
    ``api_error``, ``rate_limit_error``...), for the caller to map onto an
    HTTP status or an error event of the client-facing format.
    """

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


def _count(value: object) -> int:
    """A token count from a usage object; absent, null or malformed counts as 0."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return 0


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Token usage in OpenAI semantics, the gateway's billing currency.

    ``prompt_tokens`` counts *every* input token, including those read from or
    written to a prompt cache; ``cached_tokens`` and ``cache_creation_tokens``
    are subsets of it.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_creation_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_anthropic(cls, usage: Mapping[str, Any]) -> TokenUsage:
        """Anthropic ``input_tokens`` excludes cache reads and writes; add them."""
        read = _count(usage.get("cache_read_input_tokens"))
        written = _count(usage.get("cache_creation_input_tokens"))
        return cls(
            prompt_tokens=_count(usage.get("input_tokens")) + read + written,
            completion_tokens=_count(usage.get("output_tokens")),
            cached_tokens=read,
            cache_creation_tokens=written,
        )

    @classmethod
    def from_openai(cls, usage: Mapping[str, Any]) -> TokenUsage:
        details = usage.get("prompt_tokens_details")
        if not isinstance(details, Mapping):
            details = {}
        return cls(
            prompt_tokens=_count(usage.get("prompt_tokens")),
            completion_tokens=_count(usage.get("completion_tokens")),
            cached_tokens=_count(details.get("cached_tokens")),
            cache_creation_tokens=_count(details.get("cache_write_tokens")),
        )

    def to_openai(self) -> JSONObject:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
        }

    def to_anthropic(self) -> JSONObject:
        uncached = self.prompt_tokens - self.cached_tokens - self.cache_creation_tokens
        return {
            "input_tokens": max(uncached, 0),
            "output_tokens": self.completion_tokens,
            "cache_creation_input_tokens": self.cache_creation_tokens,
            "cache_read_input_tokens": self.cached_tokens,
        }


def dumps_compact(value: object) -> str:
    """Compact JSON (no whitespace, UTF-8 kept as is), as the providers emit it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def parse_arguments(raw: object, *, field: str) -> JSONObject:
    """Parse OpenAI tool-call ``arguments`` (a JSON string) into an object.

    An empty string or null means "no arguments" (some clients send that for
    parameterless functions); anything else must be a JSON object.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    if not isinstance(raw, str):
        raise TranslationError("tool call arguments must be a JSON string", field=field)
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise TranslationError(
            f"tool call arguments are not valid JSON ({exc.msg} at position {exc.pos})",
            field=field,
        ) from exc
    if not isinstance(parsed, dict):
        raise TranslationError(
            f"tool call arguments must be a JSON object, got {type(parsed).__name__}",
            field=field,
        )
    return parsed


def require_mapping(value: object, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TranslationError("expected a JSON object", field=field)
    return value


def require_list(value: object, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise TranslationError("expected a JSON array", field=field)
    return value


def require_str(value: object, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise TranslationError("expected a non-empty string", field=field)
    return value


def optional_number(body: Mapping[str, Any], key: str) -> float | None:
    """A numeric sampling parameter, or None when absent/null."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TranslationError("expected a number", field=key)
    return value


def stop_list(value: object, field: str) -> list[str]:
    """OpenAI ``stop`` (string, list or null) as a list of strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    items = require_list(value, field)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TranslationError("expected a string", field=f"{field}[{i}]")
    return list(items)
