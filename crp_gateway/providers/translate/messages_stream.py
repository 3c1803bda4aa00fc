"""OpenAI ``chat.completion.chunk`` objects -> Anthropic Messages SSE events.

The caller parses each ``data:`` line of the provider's stream into a dict and
feeds it to :meth:`OpenAIToAnthropicStream.process`; on ``data: [DONE]`` (or
EOF) it calls :meth:`OpenAIToAnthropicStream.finish`. Every returned event is
framed with :func:`encode_anthropic_event`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._common import (
    JSONObject,
    TokenUsage,
    TranslationError,
    dumps_compact,
    require_list,
    require_mapping,
    require_str,
)
from .messages import stop_reason


def encode_anthropic_event(event: Mapping[str, Any]) -> bytes:
    """Frame one Anthropic event as SSE: ``event: <type>\\ndata: <json>\\n\\n``."""
    kind = require_str(event.get("type"), "type")
    return f"event: {kind}\ndata: {dumps_compact(event)}\n\n".encode()


@dataclass(frozen=True, slots=True)
class _OpenBlock:
    index: int  # Anthropic content block index
    tool_call: int | None  # OpenAI tool-call index, None for a text block


class OpenAIToAnthropicStream:
    """Stateful translator for one streamed response (one instance per request).

    Output: ``message_start`` (usage placeholder: input tokens are unknown
    until the usage chunk, unless the first chunk already carries usage), then
    for each text run or tool call a ``content_block_start``, its deltas
    (``text_delta`` / ``input_json_delta``) and a ``content_block_stop``; then
    from :meth:`finish` a ``message_delta`` with ``stop_reason`` and the final
    usage (input and output tokens) and ``message_stop``.

    Chunks without choices (the ``include_usage`` chunk) only update usage.
    A tool call that resumes after another block has started cannot be
    represented (Anthropic blocks do not interleave) and raises
    :class:`TranslationError`.
    """

    def __init__(self, *, model: str) -> None:
        self._model = model
        self._message_id: str | None = None
        self._open: _OpenBlock | None = None
        self._next_index = 0
        self._seen_calls: set[int] = set()
        self._finish_reason: str | None = None
        self._usage = TokenUsage()
        self._finished = False

    @property
    def usage(self) -> TokenUsage:
        """Usage reported by the provider so far (final after :meth:`finish`)."""
        return self._usage

    @property
    def stop_reason(self) -> str | None:
        """Anthropic stop_reason, known once :meth:`finish` has run."""
        if not self._finished:
            return None
        return stop_reason(self._finish_reason, has_tools=bool(self._seen_calls))

    def process(self, chunk: Mapping[str, Any]) -> list[JSONObject]:
        """Translate one OpenAI chunk into zero or more Anthropic events."""
        if self._finished:
            raise TranslationError("chunk received after the stream was finished")
        usage = chunk.get("usage")
        if isinstance(usage, Mapping):
            self._usage = TokenUsage.from_openai(usage)
        events: list[JSONObject] = []
        if self._message_id is None:
            events.append(self._message_start(chunk))
        for i, item in enumerate(require_list(chunk.get("choices") or [], "choices")):
            events.extend(self._on_choice(require_mapping(item, f"choices[{i}]")))
        return events

    def finish(self) -> list[JSONObject]:
        """Close the open block and end the message. Call once, at end of stream."""
        if self._message_id is None:
            raise TranslationError("the provider stream ended without any chunk")
        if self._finished:
            return []
        events = self._close_block()
        self._finished = True
        events.append(
            {
                "type": "message_delta",
                "delta": {"stop_reason": self.stop_reason, "stop_sequence": None},
                "usage": self._usage.to_anthropic(),
            }
        )
        events.append({"type": "message_stop"})
        return events

    def _message_start(self, chunk: Mapping[str, Any]) -> JSONObject:
        chunk_id = chunk.get("id")
        suffix = chunk_id if isinstance(chunk_id, str) and chunk_id else "unknown"
        self._message_id = f"msg_{suffix}"
        usage = self._usage.to_anthropic()
        usage["output_tokens"] = 0
        return {
            "type": "message_start",
            "message": {
                "id": self._message_id,
                "type": "message",
                "role": "assistant",
                "model": self._model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": usage,
            },
        }

    def _on_choice(self, choice: Mapping[str, Any]) -> list[JSONObject]:
        if choice.get("index", 0) != 0:
            raise TranslationError("only a single choice can be streamed", field="n")
        delta = choice.get("delta")
        delta = delta if isinstance(delta, Mapping) else {}
        events: list[JSONObject] = []
        for key in ("content", "refusal"):
            text = delta.get(key)
            if isinstance(text, str) and text:
                events.extend(self._text(text))
        for i, call in enumerate(
            require_list(delta.get("tool_calls") or [], "tool_calls")
        ):
            events.extend(self._tool_call(require_mapping(call, f"tool_calls[{i}]")))
        if choice.get("finish_reason"):
            self._finish_reason = str(choice["finish_reason"])
        return events

    def _text(self, text: str) -> list[JSONObject]:
        events: list[JSONObject] = []
        if self._open is None or self._open.tool_call is not None:
            events.extend(self._close_block())
            events.append(self._start_block({"type": "text", "text": ""}, None))
        events.append(self._delta({"type": "text_delta", "text": text}))
        return events

    def _tool_call(self, call: Mapping[str, Any]) -> list[JSONObject]:
        index = call.get("index")
        if isinstance(index, bool) or not isinstance(index, int):
            raise TranslationError("expected an integer", field="tool_calls[].index")
        function = call.get("function")
        function = function if isinstance(function, Mapping) else {}
        events: list[JSONObject] = []
        if index not in self._seen_calls:
            self._seen_calls.add(index)
            events.extend(self._close_block())
            block: JSONObject = {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{self._message_id}_{index}",
                "name": require_str(function.get("name"), "tool_calls[].function.name"),
                "input": {},
            }
            events.append(self._start_block(block, index))
        elif self._open is None or self._open.tool_call != index:
            reason = f"tool call {index} resumed after another content block"
            raise TranslationError(reason, field="tool_calls")
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            events.append(
                self._delta({"type": "input_json_delta", "partial_json": arguments})
            )
        return events

    def _start_block(self, block: JSONObject, tool_call: int | None) -> JSONObject:
        self._open = _OpenBlock(self._next_index, tool_call)
        self._next_index += 1
        return {
            "type": "content_block_start",
            "index": self._open.index,
            "content_block": block,
        }

    def _delta(self, delta: JSONObject) -> JSONObject:
        # Callers open a block first, and the open block is the latest started.
        index = self._next_index - 1
        return {"type": "content_block_delta", "index": index, "delta": delta}

    def _close_block(self) -> list[JSONObject]:
        if self._open is None:
            return []
        event: JSONObject = {"type": "content_block_stop", "index": self._open.index}
        self._open = None
        return [event]
