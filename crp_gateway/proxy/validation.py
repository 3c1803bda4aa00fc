"""Request checks made before any provider is called, answered the way OpenAI
and Anthropic answer them: 400 ``invalid_request_error`` naming the field.

Only what the gateway itself needs is checked; unknown fields pass through.
"""

from __future__ import annotations

import json
from typing import Any

from crp_gateway.errors import InvalidRequest

OPENAI_ROLES = frozenset(
    {"system", "developer", "user", "assistant", "tool", "function"}
)
ANTHROPIC_ROLES = frozenset({"user", "assistant"})


def _invalid(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_request", param=param)


def parse_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise InvalidRequest(
            "The request body is not valid JSON.", code="invalid_json"
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequest(
            "The request body must be a JSON object.", code="invalid_request"
        )
    return body


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _invalid("'model' is required and must be a non-empty string.", "model")
    return model


def _messages(body: dict[str, Any], roles: frozenset[str]) -> list[Any]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise _invalid("'messages' is required and must be an array.", "messages")
    if not messages:
        raise _invalid("'messages' must contain at least one message.", "messages")
    for index, message in enumerate(messages):
        param = f"messages[{index}]"
        if not isinstance(message, dict):
            raise _invalid(f"'{param}' must be an object.", param)
        role = message.get("role")
        if not isinstance(role, str) or role not in roles:
            raise _invalid(
                f"'{param}.role' must be one of {sorted(roles)}.", f"{param}.role"
            )
    return messages


def _stream_flag(body: dict[str, Any]) -> bool:
    stream = body.get("stream", False)
    if stream is None:
        return False
    if not isinstance(stream, bool):
        raise _invalid("'stream' must be a boolean.", "stream")
    return stream


def chat_request(body: dict[str, Any]) -> tuple[str, bool]:
    """Check an OpenAI chat request; return its model and whether it streams."""
    model = _model(body)
    _messages(body, OPENAI_ROLES)
    return model, _stream_flag(body)


def messages_request(body: dict[str, Any]) -> tuple[str, bool]:
    """Check an Anthropic messages request; return its model and stream flag."""
    model = _model(body)
    _messages(body, ANTHROPIC_ROLES)
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (
        not isinstance(max_tokens, int)
        or isinstance(max_tokens, bool)
        or max_tokens < 1
    ):
        raise _invalid("'max_tokens' must be a positive integer.", "max_tokens")
    return model, _stream_flag(body)


def embeddings_request(body: dict[str, Any]) -> str:
    model = _model(body)
    value = body.get("input")
    if not isinstance(value, str | list) or not value:
        raise _invalid("'input' is required: a string or a non-empty array.", "input")
    return model
