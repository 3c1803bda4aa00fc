"""Anthropic Messages SSE events -> OpenAI ``chat.completion.chunk`` objects.

The caller parses each ``data:`` line of the provider's stream into a dict,
feeds it to :meth:`AnthropicToOpenAIStream.process` and frames every returned
chunk as ``data: <json>\\n\\n`` (followed by ``data: [DONE]\\n\\n`` at the end).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._common import (
    JSONObject,
    ProviderStreamError,
    TokenUsage,
    TranslationError,
    dumps_compact,
    require_mapping,
    require_str,
)
from .chat_completions import finish_reason


class AnthropicToOpenAIStream:
    """Stateful translator for one streamed response (one instance per request).

    Output sequence: a role chunk (on ``message_start``), content and tool-call
    delta chunks, one chunk carrying ``finish_reason`` (on ``message_delta``)
    and, when ``include_usage`` is set, a final chunk with empty ``choices``
    and the usage (on ``message_stop``). Every chunk of an ``include_usage``
    stream carries ``"usage": null`` until then, like OpenAI's.

    ``ping``, ``content_block_stop``, thinking blocks and unknown event types
    produce nothing. An ``error`` event raises :class:`ProviderStreamError`.
    """

    def __init__(
        self, *, model: str, created: int, include_usage: bool = False
    ) -> None:
        self._model = model
        self._created = created
        self._include_usage = include_usage
        self._id: str | None = None
        self._tool_index: dict[int, int] = {}  # Anthropic block index -> call index
        self._text_blocks: set[int] = set()
        self._start_usage: Mapping[str, Any] = {}
        self._usage = TokenUsage()
        self._finish_reason: str | None = None
        self._done = False

    @property
    def usage(self) -> TokenUsage:
        """Usage so far; final once :attr:`done` is true. For billing."""
        return self._usage

    @property
    def finish_reason(self) -> str | None:
        return self._finish_reason

    @property
    def done(self) -> bool:
        """True once ``message_stop`` has been processed."""
        return self._done

    def process(self, event: Mapping[str, Any]) -> list[JSONObject]:
        """Translate one Anthropic event into zero or more OpenAI chunks."""
        kind = event.get("type")
        if kind == "error":
            raise _stream_error(event)
        if kind == "message_start":
            return self._on_message_start(event)
        if kind == "ping":
            return []
        if self._id is None:
            raise TranslationError(
                f"stream event {kind!r} arrived before message_start"
            )
        match kind:
            case "content_block_start":
                return self._on_block_start(event)
            case "content_block_delta":
                return self._on_block_delta(event)
            case "message_delta":
                return self._on_message_delta(event)
            case "message_stop":
                return self._on_message_stop()
            case _:
                return []

    def _chunk(self, delta: JSONObject, finish: str | None = None) -> JSONObject:
        chunk: JSONObject = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            ],
        }
        if self._include_usage:
            chunk["usage"] = None
        return chunk

    def _on_message_start(self, event: Mapping[str, Any]) -> list[JSONObject]:
        if self._id is not None:
            raise TranslationError("duplicate message_start event")
        message = require_mapping(event.get("message"), "message_start.message")
        self._id = f"chatcmpl-{require_str(message.get('id'), 'message_start.id')}"
        usage = message.get("usage")
        self._start_usage = usage if isinstance(usage, Mapping) else {}
        self._usage = TokenUsage.from_anthropic(self._start_usage)
        return [self._chunk({"role": "assistant", "content": ""})]

    def _on_block_start(self, event: Mapping[str, Any]) -> list[JSONObject]:
        index = event.get("index")
        block = require_mapping(event.get("content_block"), "content_block")
        if not isinstance(index, int):
            raise TranslationError(
                "expected an integer", field="content_block_start.index"
            )
        if block.get("type") == "text":
            self._text_blocks.add(index)
            text = block.get("text")
            return [self._chunk({"content": text})] if text else []
        if block.get("type") != "tool_use":
            return []  # thinking, redacted_thinking, server tool blocks
        call_index = len(self._tool_index)
        self._tool_index[index] = call_index
        initial = block.get("input")
        call = {
            "index": call_index,
            "id": require_str(block.get("id"), "content_block.id"),
            "type": "function",
            "function": {
                "name": require_str(block.get("name"), "content_block.name"),
                "arguments": dumps_compact(initial) if initial else "",
            },
        }
        return [self._chunk({"tool_calls": [call]})]

    def _on_block_delta(self, event: Mapping[str, Any]) -> list[JSONObject]:
        index = event.get("index")
        delta = require_mapping(event.get("delta"), "content_block_delta.delta")
        kind = delta.get("type")
        if kind == "text_delta" and index in self._text_blocks:
            text = delta.get("text")
            return [self._chunk({"content": text})] if text else []
        if kind == "input_json_delta" and isinstance(index, int):
            call_index = self._tool_index.get(index)
            fragment = delta.get("partial_json")
            if call_index is None or not fragment:
                return []
            call = {"index": call_index, "function": {"arguments": fragment}}
            return [self._chunk({"tool_calls": [call]})]
        return []  # thinking_delta, signature_delta, citations_delta

    def _on_message_delta(self, event: Mapping[str, Any]) -> list[JSONObject]:
        delta = event.get("delta")
        stop_reason = delta.get("stop_reason") if isinstance(delta, Mapping) else None
        usage = event.get("usage")
        if isinstance(usage, Mapping):
            # message_delta counts are cumulative; input counts appear only on
            # some API versions, so fall back to those of message_start.
            known = {k: v for k, v in usage.items() if v is not None}
            self._usage = TokenUsage.from_anthropic({**self._start_usage, **known})
        if self._finish_reason is not None:
            return []
        self._finish_reason = finish_reason(stop_reason)
        return [self._chunk({}, self._finish_reason)]

    def _on_message_stop(self) -> list[JSONObject]:
        if self._done:
            return []
        self._done = True
        chunks: list[JSONObject] = []
        if self._finish_reason is None:
            self._finish_reason = "stop"
            chunks.append(self._chunk({}, self._finish_reason))
        if self._include_usage:
            chunks.append(
                {
                    "id": self._id,
                    "object": "chat.completion.chunk",
                    "created": self._created,
                    "model": self._model,
                    "choices": [],
                    "usage": self._usage.to_openai(),
                }
            )
        return chunks


def _stream_error(event: Mapping[str, Any]) -> ProviderStreamError:
    error = event.get("error")
    if not isinstance(error, Mapping):
        return ProviderStreamError("api_error", "provider sent a malformed error event")
    return ProviderStreamError(
        str(error.get("type") or "api_error"), str(error.get("message") or "")
    )
