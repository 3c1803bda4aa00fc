"""The text a call carries, as the scanners read it.

Input: every message's text (string content, text parts, tool results, the
Anthropic ``system``) or an embeddings ``input``, so personal data or an
injection anywhere in the prompt is seen. Output: the text the model produced
(content, and tool-call arguments, which can carry personal data too). Images
and other non-text parts are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


def _content_texts(content: Any) -> Iterator[str]:
    if isinstance(content, str):
        yield content
        return
    if not isinstance(content, list):
        return
    for part in content:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str):
            yield part["text"]
        elif part.get("type") == "tool_result":
            yield from _content_texts(part.get("content"))
        elif part.get("type") == "tool_use" and part.get("input") is not None:
            yield json.dumps(part["input"])


def request_texts(body: dict[str, Any]) -> list[str]:
    """Texts of an OpenAI chat, Anthropic messages or embeddings request."""
    texts = list(_content_texts(body.get("system")))
    embedding_input = body.get("input")
    if isinstance(embedding_input, str):
        texts.append(embedding_input)
    elif isinstance(embedding_input, list):
        texts.extend(item for item in embedding_input if isinstance(item, str))
    for message in body.get("messages") or ():
        if not isinstance(message, dict):
            continue
        texts.extend(_content_texts(message.get("content")))
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(
                function.get("arguments"), str
            ):
                texts.append(function["arguments"])
    return [text for text in texts if text]


def openai_output_text(completion: dict[str, Any]) -> str:
    """The text of every choice of a ``chat.completion``."""
    parts: list[str] = []
    for choice in completion.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        if isinstance(message.get("content"), str):
            parts.append(message["content"])
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(
                function.get("arguments"), str
            ):
                parts.append(function["arguments"])
    return "\n".join(parts)


def anthropic_output_text(message: dict[str, Any]) -> str:
    """The text (and tool inputs) of an Anthropic ``message``."""
    return "\n".join(_content_texts(message.get("content")))


def openai_chunk_text(chunk: dict[str, Any]) -> str:
    """The text one ``chat.completion.chunk`` adds."""
    parts: list[str] = []
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            continue
        if isinstance(delta.get("content"), str):
            parts.append(delta["content"])
        for call in delta.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(
                function.get("arguments"), str
            ):
                parts.append(function["arguments"])
    return "".join(parts)


def anthropic_event_text(event: dict[str, Any]) -> str:
    """The text one Anthropic stream event adds."""
    if event.get("type") != "content_block_delta":
        return ""
    delta = event.get("delta")
    if not isinstance(delta, dict):
        return ""
    text = delta.get("text", delta.get("partial_json", ""))
    return text if isinstance(text, str) else ""
