"""Serve Anthropic ``/v1/messages`` from an OpenAI-compatible provider.

Request: Anthropic Messages body -> OpenAI chat completion body.
Response: OpenAI ``chat.completion`` -> Anthropic ``message`` object.
The field-by-field decisions are tabulated in the package docstring.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final, Literal

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

STOP_REASONS: Final = MappingProxyType(
    {
        "stop": "end_turn",
        "length": "max_tokens",
        "tool_calls": "tool_use",
        "function_call": "tool_use",
        "content_filter": "refusal",
    }
)
"""OpenAI ``finish_reason`` -> Anthropic ``stop_reason`` (unknown/null -> end_turn)."""

MaxTokensField = Literal["max_tokens", "max_completion_tokens"]

_DROPPED_BLOCKS: Final = frozenset({"thinking", "redacted_thinking"})


def anthropic_request_to_openai(
    body: Mapping[str, Any],
    *,
    model: str,
    max_tokens_field: MaxTokensField = "max_completion_tokens",
) -> JSONObject:
    """Translate an Anthropic Messages request into an OpenAI chat completion one.

    ``model`` is the provider-side model name. ``max_tokens_field`` picks the
    OpenAI parameter for Anthropic's ``max_tokens``: OpenAI's reasoning models
    only accept ``max_completion_tokens``; some older compatible servers only
    ``max_tokens``. Raises :class:`TranslationError`.
    """
    _reject_unsupported(body)
    messages = _system_messages(body.get("system"))
    for i, item in enumerate(require_list(body.get("messages"), "messages")):
        messages.extend(_convert_message(item, f"messages[{i}]"))
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise TranslationError("expected an integer", field="max_tokens")
    out: JSONObject = {
        "model": model,
        "messages": messages,
        max_tokens_field: max_tokens,
    }
    for key in ("temperature", "top_p"):
        value = optional_number(body, key)
        if value is not None:
            out[key] = value
    stop = stop_list(body.get("stop_sequences"), "stop_sequences")
    if stop:
        out["stop"] = stop
    out.update(_tool_fields(body))
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    metadata = body.get("metadata")
    if isinstance(metadata, Mapping) and metadata.get("user_id"):
        out["user"] = require_str(metadata["user_id"], "metadata.user_id")
    return out


def _reject_unsupported(body: Mapping[str, Any]) -> None:
    for key in ("container", "mcp_servers"):
        if body.get(key):
            reason = f"{key!r} is not supported by OpenAI-compatible providers"
            raise TranslationError(reason, field=key)
    output_config = body.get("output_config")
    if isinstance(output_config, Mapping) and output_config.get("format"):
        reason = "structured output formats are not supported on this route"
        raise TranslationError(reason, field="output_config.format")


def _system_messages(system: object) -> list[JSONObject]:
    if system is None or system == "":
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    texts = [
        _block_text(block, f"system[{i}]")
        for i, block in enumerate(require_list(system, "system"))
    ]
    joined = "\n\n".join(text for text in texts if text)
    return [{"role": "system", "content": joined}] if joined else []


def _block_text(item: object, field: str) -> str:
    block = require_mapping(item, field)
    if block.get("type") != "text":
        raise TranslationError("expected a text block", field=f"{field}.type")
    text = block.get("text")
    if not isinstance(text, str):
        raise TranslationError("expected a string", field=f"{field}.text")
    return text


def _content_blocks(message: Mapping[str, Any], where: str) -> list[Mapping[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    field = f"{where}.content"
    return [
        require_mapping(block, f"{field}[{i}]")
        for i, block in enumerate(require_list(content, field))
    ]


def _convert_message(item: object, where: str) -> list[JSONObject]:
    message = require_mapping(item, where)
    blocks = _content_blocks(message, where)
    role = message.get("role")
    if role == "user":
        return _user_messages(blocks, where)
    if role == "assistant":
        converted = _assistant_message(blocks, where)
        return [converted] if converted else []
    raise TranslationError(f"unknown role {role!r}", field=f"{where}.role")


def _user_messages(blocks: list[Mapping[str, Any]], where: str) -> list[JSONObject]:
    """Tool results become ``tool`` messages (first), the rest one user message."""
    tool_messages: list[JSONObject] = []
    parts: list[JSONObject] = []
    for i, block in enumerate(blocks):
        field = f"{where}.content[{i}]"
        kind = block.get("type")
        if kind == "tool_result":
            tool_messages.append(_tool_message(block, field))
        elif kind == "text":
            text = _block_text(block, field)
            if text:
                parts.append({"type": "text", "text": text})
        elif kind == "image":
            parts.append(_image_part(block, field))
        else:
            reason = f"content block type {kind!r} is not supported"
            raise TranslationError(reason, field=f"{field}.type")
    if not parts:
        return tool_messages
    if len(parts) == 1 and parts[0]["type"] == "text":
        return [*tool_messages, {"role": "user", "content": parts[0]["text"]}]
    return [*tool_messages, {"role": "user", "content": parts}]


def _image_part(block: Mapping[str, Any], field: str) -> JSONObject:
    source = require_mapping(block.get("source"), f"{field}.source")
    kind = source.get("type")
    if kind == "base64":
        media_type = require_str(source.get("media_type"), f"{field}.source.media_type")
        data = require_str(source.get("data"), f"{field}.source.data")
        url = f"data:{media_type};base64,{data}"
    elif kind == "url":
        url = require_str(source.get("url"), f"{field}.source.url")
    else:
        reason = f"image source type {kind!r} is not supported"
        raise TranslationError(reason, field=f"{field}.source.type")
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_message(block: Mapping[str, Any], field: str) -> JSONObject:
    content = block.get("content")
    if content is None or isinstance(content, str):
        text = content or ""
    else:
        texts = []
        for i, item in enumerate(require_list(content, f"{field}.content")):
            part = require_mapping(item, f"{field}.content[{i}]")
            if part.get("type") != "text":
                reason = "OpenAI tool messages accept text only"
                raise TranslationError(reason, field=f"{field}.content[{i}].type")
            texts.append(_block_text(part, f"{field}.content[{i}]"))
        text = "\n".join(texts)
    return {
        "role": "tool",
        "tool_call_id": require_str(block.get("tool_use_id"), f"{field}.tool_use_id"),
        "content": text,
    }


def _assistant_message(
    blocks: list[Mapping[str, Any]], where: str
) -> JSONObject | None:
    texts: list[str] = []
    calls: list[JSONObject] = []
    for i, block in enumerate(blocks):
        field = f"{where}.content[{i}]"
        kind = block.get("type")
        if kind == "text":
            texts.append(_block_text(block, field))
        elif kind == "tool_use":
            calls.append(_tool_call(block, field))
        elif kind not in _DROPPED_BLOCKS:
            reason = f"content block type {kind!r} is not supported"
            raise TranslationError(reason, field=f"{field}.type")
    text = "".join(texts)
    if not text and not calls:
        return None
    message: JSONObject = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_call(block: Mapping[str, Any], field: str) -> JSONObject:
    arguments = require_mapping(block.get("input", {}), f"{field}.input")
    return {
        "id": require_str(block.get("id"), f"{field}.id"),
        "type": "function",
        "function": {
            "name": require_str(block.get("name"), f"{field}.name"),
            "arguments": dumps_compact(arguments),
        },
    }


# ------------------------------------------------------------------------ tools


def _tool_fields(body: Mapping[str, Any]) -> JSONObject:
    tools = [
        _convert_tool(tool, f"tools[{i}]")
        for i, tool in enumerate(require_list(body.get("tools") or [], "tools"))
    ]
    choice = body.get("tool_choice")
    if not tools:
        if isinstance(choice, Mapping) and choice.get("type") in ("any", "tool"):
            raise TranslationError("tool_choice requires tools", field="tool_choice")
        return {}
    out: JSONObject = {"tools": tools}
    if choice is not None:
        choice = require_mapping(choice, "tool_choice")
        out["tool_choice"] = _convert_tool_choice(choice)
        if choice.get("disable_parallel_tool_use") is True:
            out["parallel_tool_calls"] = False
    return out


def _convert_tool(item: object, field: str) -> JSONObject:
    tool = require_mapping(item, field)
    if tool.get("type") not in (None, "custom"):
        reason = f"server tool {tool.get('type')!r} is not supported"
        raise TranslationError(reason, field=f"{field}.type")
    function: JSONObject = {
        "name": require_str(tool.get("name"), f"{field}.name"),
        "parameters": dict(
            require_mapping(tool.get("input_schema"), f"{field}.input_schema")
        ),
    }
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _convert_tool_choice(choice: Mapping[str, Any]) -> str | JSONObject:
    match choice.get("type"):
        case "auto":
            return "auto"
        case "any":
            return "required"
        case "none":
            return "none"
        case "tool":
            name = require_str(choice.get("name"), "tool_choice.name")
            return {"type": "function", "function": {"name": name}}
        case other:
            reason = f"unknown tool_choice type {other!r}"
            raise TranslationError(reason, field="tool_choice.type")


# --------------------------------------------------------------------- response


def openai_response_to_anthropic(resp: Mapping[str, Any], *, model: str) -> JSONObject:
    """Translate an OpenAI ``chat.completion`` into an Anthropic ``message``.

    ``model`` is the name the client asked for. Only the first choice is used
    (the translated request never asks for more).
    """
    choices = require_list(resp.get("choices"), "choices")
    if not choices:
        raise TranslationError("the response has no choices", field="choices")
    choice = require_mapping(choices[0], "choices[0]")
    message = require_mapping(choice.get("message"), "choices[0].message")
    content = _response_blocks(message)
    has_tools = any(block["type"] == "tool_use" for block in content)
    usage = resp.get("usage")
    return {
        "id": f"msg_{require_str(resp.get('id'), 'id')}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason"), has_tools=has_tools),
        "stop_sequence": None,
        "usage": TokenUsage.from_openai(
            usage if isinstance(usage, Mapping) else {}
        ).to_anthropic(),
    }


def stop_reason(finish_reason: object, *, has_tools: bool) -> str:
    """OpenAI ``finish_reason`` -> Anthropic ``stop_reason``.

    Some compatible servers report ``stop`` after emitting tool calls; the
    presence of tool calls wins so Anthropic clients run their tool loop.
    """
    if has_tools and finish_reason in (None, "stop"):
        return "tool_use"
    if isinstance(finish_reason, str):
        return STOP_REASONS.get(finish_reason, "end_turn")
    return "end_turn"


def _response_blocks(message: Mapping[str, Any]) -> list[JSONObject]:
    blocks: list[JSONObject] = []
    for key in ("content", "refusal"):
        text = message.get(key)
        if isinstance(text, str) and text:
            blocks.append({"type": "text", "text": text})
    calls = message.get("tool_calls") or []
    for i, item in enumerate(require_list(calls, "choices[0].message.tool_calls")):
        field = f"choices[0].message.tool_calls[{i}]"
        call = require_mapping(item, field)
        function = require_mapping(call.get("function"), f"{field}.function")
        blocks.append(
            {
                "type": "tool_use",
                "id": require_str(call.get("id"), f"{field}.id"),
                "name": require_str(function.get("name"), f"{field}.function.name"),
                "input": parse_arguments(
                    function.get("arguments"), field=f"{field}.function.arguments"
                ),
            }
        )
    return blocks
