"""Recording the tokens of every call, written in batches off the request path.

Calls append a :class:`Usage` in memory; a background task inserts them in one
statement every ``flush_seconds`` (or as soon as ``max_batch`` are waiting), and
shutdown flushes the rest. A failed write keeps its rows for the next attempt.

TODO(#5): a crash loses at most one batch interval of usage rows; they become
durable before the response once the audit record's group commit lands, and this
queue can go.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crp_gateway.logging import get_logger
from crp_gateway.store.database import transaction
from crp_gateway.store.models.base import utcnow
from crp_gateway.store.repositories import UsageLog

log = get_logger("crp_gateway.usage")


@dataclass(slots=True)
class Usage:
    """One call's usage; the data path fills in tokens as the provider reports them."""

    tenant_id: str
    key_id: str
    request_id: str
    endpoint: str
    provider: str
    model: str
    stream: bool
    status: int = 200
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    created_at: datetime = field(default_factory=utcnow)


class UsageRecorder:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        flush_seconds: float = 0.25,
        max_batch: int = 500,
    ) -> None:
        self._sessions = sessions
        self._flush_seconds = flush_seconds
        self._max_batch = max_batch
        self._pending: list[Usage] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def record(self, usage: Usage) -> None:
        self._pending.append(usage)
        if len(self._pending) >= self._max_batch:
            self._wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_seconds)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("usage.flush_failed", pending=len(self._pending))

    async def flush(self) -> int:
        batch, self._pending = self._pending, []
        if not batch:
            return 0
        try:
            async with transaction(self._sessions) as session:
                await UsageLog(session).insert_many([asdict(u) for u in batch])
        except BaseException:
            self._pending[:0] = batch
            raise
        return len(batch)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
