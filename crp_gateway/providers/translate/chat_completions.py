"""Serve OpenAI ``/v1/chat/completions`` from an Anthropic Messages provider.

Request: OpenAI chat completion body -> Anthropic ``/v1/messages`` body.
Response: Anthropic ``message`` object -> OpenAI ``chat.completion`` object.
The field-by-field decisions are tabulated in the package docstring.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlsplit

from ._common import (
    JSONObject,
    TokenUsage,
    TranslationError,
    dumps_compact,
    optional_number,
    parse_arguments,
    require_list,
    require_mapping,
    require_str,
    stop_list,
)

ANTHROPIC_IMAGE_TYPES: Final = frozenset(
    {"image/jpeg", "image/png", "image/gif", "image/webp"}
)
_TEXT: Final = frozenset({"text"})
_MEDIA_TYPE_ALIASES: Final = MappingProxyType({"image/jpg": "image/jpeg"})

FINISH_REASONS: Final = MappingProxyType(
    {
        "end_turn": "stop",
        "stop_sequence": "stop",
        "pause_turn": "stop",
        "max_tokens": "length",
        "model_context_window_exceeded": "length",
        "tool_use": "tool_calls",
        "refusal": "content_filter",
    }
)
"""Anthropic ``stop_reason`` -> OpenAI ``finish_reason`` (unknown/null -> stop)."""


def _set(value: object) -> bool:
    return value is not None


def _truthy(value: object) -> bool:
    return bool(value)


def _not_one(value: object) -> bool:
    return value not in (None, 1)


def _structured_format(value: object) -> bool:
    return isinstance(value, Mapping) and value.get("type") not in (None, "text")


def _non_text_modality(value: object) -> bool:
    return isinstance(value, list) and any(m != "text" for m in value)


_REJECTED: Final[tuple[tuple[str, Callable[[object], bool], str], ...]] = (
    ("n", _not_one, "only n=1 is supported by Anthropic providers"),
    ("logprobs", _truthy, "log probabilities are not available from Anthropic"),
    ("top_logprobs", _set, "log probabilities are not available from Anthropic"),
    ("logit_bias", _truthy, "logit_bias is not supported by Anthropic"),
    (
        "response_format",
        _structured_format,
        "JSON mode / structured outputs are not supported by Anthropic providers",
    ),
    ("functions", _set, "deprecated 'functions' is not supported; use 'tools'"),
    (
        "function_call",
        _set,
        "deprecated 'function_call' is not supported; use 'tool_choice'",
    ),
    ("audio", _set, "audio output is not supported by Anthropic"),
    ("modalities", _non_text_modality, "only the 'text' modality is supported"),
    ("web_search_options", _set, "web search is not supported on this route"),
)
"""Fields whose silent removal would change what the client gets back."""


def openai_request_to_anthropic(
    body: Mapping[str, Any], *, model: str, default_max_tokens: int
) -> JSONObject:
    """Translate an OpenAI chat completion request into an Anthropic one.

    ``model`` is the provider-side model name (the gateway resolves aliases);
    ``default_max_tokens`` is used when the client sent no token limit, since
    Anthropic requires one. Raises :class:`TranslationError`.
    """
    for key, is_active, reason in _REJECTED:
        if is_active(body.get(key)):
            raise TranslationError(reason, field=key)
    system, messages = _convert_messages(require_list(body.get("messages"), "messages"))
    out: JSONObject = {
        "model": model,
        "max_tokens": _max_tokens(body, default_max_tokens),
        "messages": messages,
    }
    if system:
        out["system"] = system
    out.update(_sampling(body))
    stop = stop_list(body.get("stop"), "stop")
    if stop:
        out["stop_sequences"] = stop
    out.update(_tool_fields(body))
    if body.get("stream"):
        out["stream"] = True
    user = body.get("user") or body.get("safety_identifier")
    if user:
        out["metadata"] = {"user_id": require_str(user, "user")}
    return out


def _max_tokens(body: Mapping[str, Any], default: int) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TranslationError("expected a positive integer", field=key)
        return value
    return default


def _sampling(body: Mapping[str, Any]) -> JSONObject:
    out: JSONObject = {}
    temperature = optional_number(body, "temperature")
    if temperature is not None:
        if not 0 <= temperature <= 1:
            raise TranslationError(
                f"Anthropic accepts temperature in [0, 1], got {temperature}",
                field="temperature",
            )
        out["temperature"] = temperature
    top_p = optional_number(body, "top_p")
    if top_p is not None:
        out["top_p"] = top_p
    return out


# --------------------------------------------------------------------- messages


def _convert_messages(raw: list[Any]) -> tuple[list[JSONObject], list[JSONObject]]:
    """Split into (system text blocks, alternating user/assistant turns)."""
    system: list[JSONObject] = []
    turns: list[JSONObject] = []
    for i, item in enumerate(raw):
        where = f"messages[{i}]"
        message = require_mapping(item, where)
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content"), f"{where}.content"))
            continue
        turn_role, blocks = _convert_turn(role, message, where)
        _append_turn(turns, turn_role, blocks)
    for turn in turns:
        if turn["role"] == "user":  # Anthropic wants tool results first in a turn.
            turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    return system, turns


def _convert_turn(
    role: object, message: Mapping[str, Any], where: str
) -> tuple[str, list[JSONObject]]:
    if role == "user":
        return "user", _user_blocks(message.get("content"), f"{where}.content")
    if role == "assistant":
        return "assistant", _assistant_blocks(message, where)
    if role == "tool":
        return "user", [_tool_result_block(message, where)]
    if role == "function":
        reason = "deprecated 'function' role is not supported; use 'tool' messages"
        raise TranslationError(reason, field=f"{where}.role")
    raise TranslationError(f"unknown role {role!r}", field=f"{where}.role")


def _append_turn(turns: list[JSONObject], role: str, blocks: list[JSONObject]) -> None:
    """Append a turn, merging it into the previous one when the role repeats."""
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _text_blocks(
    content: object, field: str, *, allowed: frozenset[str] = _TEXT
) -> list[JSONObject]:
    """String or text-part content as Anthropic text blocks (empty text dropped)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[JSONObject] = []
    for i, item in enumerate(require_list(content, field)):
        block = _text_part(item, f"{field}[{i}]", allowed)
        if block is not None:
            blocks.append(block)
    return blocks


def _text_part(item: object, field: str, allowed: frozenset[str]) -> JSONObject | None:
    part = require_mapping(item, field)
    kind = part.get("type")
    if kind not in allowed:
        reason = f"content part type {kind!r} is not supported here"
        raise TranslationError(reason, field=f"{field}.type")
    text = part.get(kind)  # "text" parts carry "text", "refusal" parts "refusal"
    if not isinstance(text, str):
        raise TranslationError("expected a string", field=f"{field}.{kind}")
    return {"type": "text", "text": text} if text else None


def _user_blocks(content: object, field: str) -> list[JSONObject]:
    if content is None or isinstance(content, str):
        return _text_blocks(content, field)
    blocks: list[JSONObject] = []
    for i, item in enumerate(require_list(content, field)):
        where = f"{field}[{i}]"
        part = require_mapping(item, where)
        if part.get("type") == "image_url":
            blocks.append(_image_block(part.get("image_url"), f"{where}.image_url"))
        elif (block := _text_part(part, where, _TEXT)) is not None:
            blocks.append(block)
    return blocks


def _image_block(image_url: object, field: str) -> JSONObject:
    url = image_url.get("url") if isinstance(image_url, Mapping) else image_url
    url = require_str(url, f"{field}.url")
    if url[:5].lower() == "data:":
        return {"type": "image", "source": _data_url_source(url, f"{field}.url")}
    if urlsplit(url).scheme.lower() in ("http", "https"):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise TranslationError(
        "image URL must be a data: or http(s) URL", field=f"{field}.url"
    )


def _data_url_source(url: str, field: str) -> JSONObject:
    """``data:image/png;base64,AAAA`` -> Anthropic base64 image source."""
    header, comma, data = url[5:].partition(",")
    params = [p.strip().lower() for p in header.split(";")]
    if not comma or not data or "base64" not in params[1:]:
        raise TranslationError(
            "data URL must be base64-encoded and non-empty", field=field
        )
    media_type = _MEDIA_TYPE_ALIASES.get(params[0], params[0])
    if media_type not in ANTHROPIC_IMAGE_TYPES:
        supported = ", ".join(sorted(ANTHROPIC_IMAGE_TYPES))
        reason = f"image media type {params[0]!r} is not supported (use {supported})"
        raise TranslationError(reason, field=field)
    return {"type": "base64", "media_type": media_type, "data": data}


def _assistant_blocks(message: Mapping[str, Any], where: str) -> list[JSONObject]:
    if message.get("function_call") is not None:
        reason = "deprecated 'function_call' is not supported; use 'tool_calls'"
        raise TranslationError(reason, field=f"{where}.function_call")
    blocks = _text_blocks(
        message.get("content"),
        f"{where}.content",
        allowed=frozenset({"text", "refusal"}),
    )
    calls = message.get("tool_calls") or []
    for i, call in enumerate(require_list(calls, f"{where}.tool_calls")):
        blocks.append(_tool_use_block(call, f"{where}.tool_calls[{i}]"))
    return blocks


def _tool_use_block(item: object, field: str) -> JSONObject:
    call = require_mapping(item, field)
    if call.get("type", "function") != "function":
        reason = f"tool call type {call.get('type')!r} is not supported"
        raise TranslationError(reason, field=f"{field}.type")
    function = require_mapping(call.get("function"), f"{field}.function")
    return {
        "type": "tool_use",
        "id": require_str(call.get("id"), f"{field}.id"),
        "name": require_str(function.get("name"), f"{field}.function.name"),
        "input": parse_arguments(
            function.get("arguments"), field=f"{field}.function.arguments"
        ),
    }


def _tool_result_block(message: Mapping[str, Any], where: str) -> JSONObject:
    block: JSONObject = {
        "type": "tool_result",
        "tool_use_id": require_str(
            message.get("tool_call_id"), f"{where}.tool_call_id"
        ),
    }
    content = message.get("content")
    if isinstance(content, str):
        if content:
            block["content"] = content
    else:
        parts = _text_blocks(content, f"{where}.content")
        if parts:
            block["content"] = parts
    return block


# ------------------------------------------------------------------------ tools


def _tool_fields(body: Mapping[str, Any]) -> JSONObject:
    raw_tools = body.get("tools")
    tools = [
        _convert_tool(tool, f"tools[{i}]")
        for i, tool in enumerate(require_list(raw_tools or [], "tools"))
    ]
    choice = body.get("tool_choice")
    if not tools:
        if choice not in (None, "auto", "none"):
            raise TranslationError("tool_choice requires tools", field="tool_choice")
        return {}
    out: JSONObject = {"tools": tools}
    converted = _convert_tool_choice(choice, body.get("parallel_tool_calls") is False)
    if converted is not None:
        out["tool_choice"] = converted
    return out


def _convert_tool(item: object, field: str) -> JSONObject:
    tool = require_mapping(item, field)
    if tool.get("type") != "function":
        reason = f"tool type {tool.get('type')!r} is not supported"
        raise TranslationError(reason, field=f"{field}.type")
    function = require_mapping(tool.get("function"), f"{field}.function")
    parameters = function.get("parameters")
    schema: JSONObject = {"type": "object", "properties": {}}
    if parameters is not None:
        schema = {
            "type": "object",
            **require_mapping(parameters, f"{field}.parameters"),
        }
    out: JSONObject = {
        "name": require_str(function.get("name"), f"{field}.function.name"),
        "input_schema": schema,
    }
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _convert_tool_choice(choice: object, disable_parallel: bool) -> JSONObject | None:
    match choice:
        case None:
            if not disable_parallel:
                return None
            out: JSONObject = {"type": "auto"}
        case "none":
            return {"type": "none"}
        case "auto":
            out = {"type": "auto"}
        case "required":
            out = {"type": "any"}
        case {"type": "function", "function": {"name": str() as name}}:
            out = {"type": "tool", "name": name}
        case _:
            raise TranslationError(
                "expected 'auto', 'none', 'required' or a named function",
                field="tool_choice",
            )
    if disable_parallel:
        out["disable_parallel_tool_use"] = True
    return out


# --------------------------------------------------------------------- response


def anthropic_response_to_openai(
    resp: Mapping[str, Any], *, model: str, created: int
) -> JSONObject:
    """Translate an Anthropic ``message`` into an OpenAI ``chat.completion``.

    ``model`` is the name the client asked for; ``created`` the Unix timestamp
    to report (the caller reads the clock, this function stays pure).
    """
    blocks = [
        require_mapping(block, f"content[{i}]")
        for i, block in enumerate(require_list(resp.get("content"), "content"))
    ]
    text = "".join(b["text"] for b in blocks if b.get("type") == "text")
    tool_calls = [_tool_call(b) for b in blocks if b.get("type") == "tool_use"]
    message: JSONObject = {
        "role": "assistant",
        "content": text if text or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    usage = resp.get("usage")
    return {
        "id": f"chatcmpl-{require_str(resp.get('id'), 'id')}",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(resp.get("stop_reason")),
            }
        ],
        "usage": TokenUsage.from_anthropic(
            usage if isinstance(usage, Mapping) else {}
        ).to_openai(),
    }


def finish_reason(stop_reason: object) -> str:
    """Anthropic ``stop_reason`` -> OpenAI ``finish_reason``."""
    if isinstance(stop_reason, str):
        return FINISH_REASONS.get(stop_reason, "stop")
    return "stop"


def _tool_call(block: Mapping[str, Any]) -> JSONObject:
    arguments = require_mapping(block.get("input", {}), "content[].input")
    return {
        "id": require_str(block.get("id"), "content[].id"),
        "type": "function",
        "function": {
            "name": require_str(block.get("name"), "content[].name"),
            "arguments": dumps_compact(arguments),
        },
    }
