"""Server-sent events: split a byte stream into events as soon as each completes.

No event is held back once its terminating blank line has arrived, so chunks reach
the client as fast as the provider sends them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

DONE = b"[DONE]"


@dataclass(frozen=True, slots=True)
class Event:
    raw: bytes  # the event as received, without its terminating blank line
    name: bytes | None
    data: bytes

    def json(self) -> Any:
        return json.loads(self.data)


def parse_event(raw: bytes) -> Event:
    name: bytes | None = None
    data: list[bytes] = []
    for line in raw.split(b"\n"):
        if line.startswith(b"data:"):
            data.append(line[5:].removeprefix(b" "))
        elif line.startswith(b"event:"):
            name = line[6:].strip()
    return Event(raw=raw, name=name, data=b"\n".join(data))


async def events(chunks: AsyncIterator[bytes]) -> AsyncIterator[Event]:
    """Every complete event of ``chunks``; comments and empty events are skipped."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        if b"\r" in buffer:  # CRLF framing; a CR split from its LF waits a chunk
            buffer = buffer.replace(b"\r\n", b"\n")
        while (end := buffer.find(b"\n\n")) >= 0:
            raw, buffer = buffer[:end], buffer[end + 2 :]
            if raw and not raw.startswith(b":"):
                yield parse_event(raw)
    if buffer.strip() and not buffer.startswith(b":"):
        yield parse_event(buffer.strip(b"\n"))


def encode_data(payload: Any) -> bytes:
    """``data: <compact json>`` plus the blank line: one OpenAI stream event."""
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"
