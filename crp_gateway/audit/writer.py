"""Group commit for audit records: durable before the answer, cheap under load.

A call hands its records to :meth:`AuditWriter.append` and waits. One task
commits everything that arrived while the previous commit ran, in a single
transaction, then wakes every waiter: at concurrency 1 a record costs one commit;
under load, many records share one. A failed commit fails every call of its
batch, so no call is answered as if its record were stored.

The tenant rolling chain (G5) is extended inside that transaction, under a
per-tenant lock, so replicas writing for one tenant at once still produce one
unbroken sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crp_gateway.logging import get_logger
from crp_gateway.store.database import transaction
from crp_gateway.store.repositories import AuditLog

log = get_logger("crp_gateway.audit")

#: Builds a tenant-chain link row from the next sequence number and the tip HMAC.
LinkBuilder = Callable[[int, str], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One call's records, as row values of the audit tables."""

    tenant_id: str
    window: dict[str, Any]
    events: tuple[dict[str, Any], ...]
    link: LinkBuilder


class AuditWriter:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._pending: list[tuple[AuditEntry, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.commits = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def append(self, entry: AuditEntry) -> None:
        """Return once ``entry`` is committed; raise if its commit failed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((entry, done))
        self._wake.set()
        await asyncio.shield(done)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            await self._commit([entry for entry, _ in batch])
        except Exception as error:
            log.exception("audit.commit_failed", records=len(batch))
            for _, done in batch:
                if not done.done():
                    done.set_exception(error)
            return
        for _, done in batch:
            if not done.done():
                done.set_result(None)

    async def _commit(self, entries: Sequence[AuditEntry]) -> None:
        windows: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        links: list[dict[str, Any]] = []
        async with transaction(self._sessions) as session:
            audit = AuditLog(session)
            ordered = sorted(entries, key=lambda entry: entry.tenant_id)
            for tenant_id, group in groupby(ordered, key=lambda e: e.tenant_id):
                await audit.lock_tenant(tenant_id)
                seq, tip = await audit.tenant_tip(tenant_id)
                for entry in group:
                    seq += 1
                    link = entry.link(seq, tip)
                    tip = link["hmac"]
                    links.append(link)
                    windows.append(entry.window)
                    events.extend(entry.events)
            await audit.insert(windows, events, links)
        self.commits += 1

    async def aclose(self) -> None:
        """Commit what is pending, then stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._flush()
