"""Group commit for audit records: durable before the answer, cheap under load.

A call hands its records to :meth:`AuditWriter.append` and waits. One task
commits everything that arrived while the previous commit ran, in a single
transaction, then wakes every waiter: at concurrency 1 a record costs one commit;
under load, many records share one. A failed commit fails every call of its
batch, so no call is answered as if its record were stored.

The tenant rolling chain (G5) is extended inside that transaction, under a
per-tenant lock, so replicas writing for one tenant at once still produce one
unbroken sequence.

On SQLite the batch runs whole in a worker thread on a synchronous connection:
through the async driver each statement is a thread hop, and a commit cost about
3.5 ms of CPU instead of a fraction of one. On PostgreSQL it runs straight on the
pooled asyncpg connection, in a fixed number of round trips whatever the batch
size (lock, tips, one pipelined insert per table, commit): through SQLAlchemy's
``run_sync`` the same commit cost about 3 ms of CPU, this way under 1 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from crp_gateway.logging import get_logger
from crp_gateway.store.database import sync_sqlite_engine
from crp_gateway.store.models import (
    AuditEvent,
    AuditTenantLink,
    AuditWindow,
    OutboxMessage,
    UsageRecord,
)
from crp_gateway.store.repositories import AuditLog, audit_lock_name

log = get_logger("crp_gateway.audit")

#: Builds a tenant-chain link row from the next sequence number and the tip HMAC.
LinkBuilder = Callable[[int, str], dict[str, Any]]
#: Builds a call's event rows from the session's last event (sequence, HMAC).
EventBuilder = Callable[[int, str], tuple[dict[str, Any], ...]]


class AuditCommitFailed(Exception):
    """The batch holding a record did not commit (the cause is chained)."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One call's records, as row values of the store's tables.

    ``window``/``events``/``link`` are the audit record (absent when audit is
    off); ``usage`` the call's usage row. Events are chained inside the
    transaction, after the session's stored last event when ``continued``
    (fan-out siblings of one session may commit in any order). ``outbox`` rows
    (``outbox_messages``, e.g. a violation report) commit with the record or not
    at all.
    """

    tenant_id: str
    window: dict[str, Any] | None = None
    events: EventBuilder | None = None
    link: LinkBuilder | None = None
    session_id: str = ""
    continued: bool = False
    usage: dict[str, Any] | None = None
    outbox: tuple[dict[str, Any], ...] = ()


class AuditWriter:
    def __init__(
        self, engine: AsyncEngine, *, on_outbox: Callable[[], None] | None = None
    ) -> None:
        """``on_outbox`` is called after a commit that stored outbox rows."""
        self._engine = engine
        self._on_outbox = on_outbox
        self._sqlite = sync_sqlite_engine(engine)
        self._pending: list[tuple[AuditEntry, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.commits = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def append(self, entry: AuditEntry) -> None:
        """Return once ``entry`` is committed; raise if its commit failed."""
        await asyncio.shield(self.submit(entry))

    def submit(self, entry: AuditEntry) -> asyncio.Future[None]:
        """Queue ``entry`` for the next commit without waiting for it (for a
        call whose client is gone: a cancelled task cannot await)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_consume)
        self._pending.append((entry, done))
        self._wake.set()
        return done

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
            failure = AuditCommitFailed(type(error).__name__)
            failure.__cause__ = error
            for _, done in batch:
                if not done.done():
                    done.set_exception(failure)
            return
        for _, done in batch:
            if not done.done():
                done.set_result(None)
        if self._on_outbox is not None and any(entry.outbox for entry, _ in batch):
            self._on_outbox()

    async def _commit(self, entries: Sequence[AuditEntry]) -> None:
        if self._sqlite is not None:
            await asyncio.to_thread(self._commit_in_thread, self._sqlite, entries)
        else:
            async with self._engine.connect() as connection:
                raw = await connection.get_raw_connection()
                await _write_pg(raw.driver_connection, entries)
        self.commits += 1

    @staticmethod
    def _commit_in_thread(engine: Engine, entries: Sequence[AuditEntry]) -> None:
        with engine.begin() as connection:
            _write(connection, entries)

    async def aclose(self) -> None:
        """Commit what is pending, then stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._flush()
        if self._sqlite is not None:
            self._sqlite.dispose()


def _consume(done: asyncio.Future[None]) -> None:
    """Mark an unawaited failure as seen (the commit failure is logged once)."""
    if not done.cancelled():
        done.exception()


@dataclass(slots=True)
class _Rows:
    """A batch's rows by table, chained and ready to insert."""

    windows: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    usage: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)

    def by_table(self) -> tuple[tuple[str, list[dict[str, Any]]], ...]:
        return (
            (AuditWindow.__tablename__, self.windows),
            (AuditEvent.__tablename__, self.events),
            (AuditTenantLink.__tablename__, self.links),
            (UsageRecord.__tablename__, self.usage),
            (OutboxMessage.__tablename__, self.outbox),
        )


def _audited(entries: Sequence[AuditEntry]) -> list[AuditEntry]:
    return sorted(
        (entry for entry in entries if entry.window is not None),
        key=lambda entry: entry.tenant_id,
    )


def _continued(entries: Sequence[AuditEntry]) -> list[tuple[str, str]]:
    """(tenant, session) of every continued session, whose events chain on."""
    return sorted({(e.tenant_id, e.session_id) for e in entries if e.continued})


def _chain(
    entries: Sequence[AuditEntry],
    tenant_tips: Mapping[str, tuple[int, str]],
    event_tips: Mapping[tuple[str, str], tuple[int, str]],
) -> _Rows:
    """Chain a batch from the stored tips (read under the tenants' locks): each
    tenant's links in order, each session's events after its last event."""
    rows = _Rows(usage=[e.usage for e in entries if e.usage is not None])
    rows.outbox = _outbox_rows(entries)
    events_after: dict[tuple[str, str], tuple[int, str]] = dict(event_tips)
    for tenant_id, group in groupby(_audited(entries), key=lambda e: e.tenant_id):
        seq, tip = tenant_tips.get(tenant_id, (0, ""))
        for entry in group:
            assert entry.window is not None
            assert entry.events is not None
            assert entry.link is not None
            seq += 1
            link = entry.link(seq, tip)
            tip = link["hmac"]
            rows.links.append(link)
            rows.windows.append(entry.window)
            session = (tenant_id, entry.session_id)
            made = entry.events(*events_after.get(session, (0, "")))
            if made:
                events_after[session] = (made[-1]["seq"], made[-1]["hmac"])
            rows.events.extend(made)
    return rows


def _write(connection: Connection, entries: Sequence[AuditEntry]) -> None:
    """One batch in one SQLite transaction (SQLite's single writer is the lock)."""
    audit = AuditLog(connection)
    tenants = sorted({entry.tenant_id for entry in _audited(entries)})
    if tenants:
        audit.lock()
    rows = _chain(
        entries,
        {tenant_id: audit.tenant_tip(tenant_id) for tenant_id in tenants},
        {key: audit.event_tip(*key) for key in _continued(entries)},
    )
    driver = connection.connection.driver_connection  # sqlite3
    assert driver is not None
    cursor = driver.cursor()
    try:
        for name, table_rows in rows.by_table():
            if table_rows:
                columns = list(table_rows[0])
                cursor.executemany(
                    _sqlite_insert(name, columns),
                    [
                        tuple(_sqlite_value(row[c]) for c in columns)
                        for row in table_rows
                    ],
                )
    finally:
        cursor.close()


def _sqlite_insert(table: str, columns: Sequence[str]) -> str:
    placeholders = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"  # noqa: S608 - our names


def _sqlite_value(value: Any) -> Any:
    """A value as SQLAlchemy stores it in SQLite (``UTCDateTime``: naive UTC text
    with microseconds; booleans as integers): straight on the sqlite3 cursor,
    a batch costs a fraction of the Core statements' CPU."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return value


_PG_LOCK = (
    "SELECT pg_advisory_xact_lock(hashtextextended(t, 0)) "
    "FROM unnest($1::text[]) AS t ORDER BY t"
)
_PG_TENANT_TIPS = (
    "SELECT t, l.seq, l.hmac FROM unnest($1::text[]) AS t "
    "JOIN LATERAL (SELECT seq, hmac FROM audit_tenant_links "
    "WHERE tenant_id = t ORDER BY seq DESC LIMIT 1) AS l ON true"
)
_PG_EVENT_TIPS = (
    "SELECT k.t, k.s, e.seq, e.hmac FROM unnest($1::text[], $2::text[]) AS k(t, s) "
    "JOIN LATERAL (SELECT seq, hmac FROM audit_events "
    "WHERE tenant_id = k.t AND session_id = k.s ORDER BY seq DESC LIMIT 1) AS e "
    "ON true"
)


def _pg_insert(table: str, columns: Sequence[str]) -> str:
    names = ", ".join(columns)
    values = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
    return f"INSERT INTO {table} ({names}) VALUES ({values})"  # noqa: S608 - our names


async def _write_pg(pg: Any, entries: Sequence[AuditEntry]) -> None:
    """One batch in one PostgreSQL transaction, straight on the asyncpg
    connection: the tenants' advisory locks in one statement (in order, so two
    replicas cannot deadlock), their tips in one, continued sessions' event tips
    in one, then one pipelined ``executemany`` per table."""
    tenants = sorted({entry.tenant_id for entry in _audited(entries)})
    continued = _continued(entries)
    async with pg.transaction():
        tenant_tips: dict[str, tuple[int, str]] = {}
        if tenants:
            await pg.execute(_PG_LOCK, [audit_lock_name(t) for t in tenants])
            for tenant_id, seq, hmac in await pg.fetch(_PG_TENANT_TIPS, tenants):
                tenant_tips[tenant_id] = (int(seq), str(hmac))
        event_tips: dict[tuple[str, str], tuple[int, str]] = {}
        if continued:
            found = await pg.fetch(
                _PG_EVENT_TIPS, [t for t, _ in continued], [s for _, s in continued]
            )
            for tenant_id, session_id, seq, hmac in found:
                event_tips[tenant_id, session_id] = (int(seq), str(hmac))
        rows = _chain(entries, tenant_tips, event_tips)
        for name, table_rows in rows.by_table():
            if table_rows:
                columns = list(table_rows[0])
                await pg.executemany(
                    _pg_insert(name, columns),
                    [tuple(row[c] for c in columns) for row in table_rows],
                )


def _outbox_rows(entries: Sequence[AuditEntry]) -> list[dict[str, Any]]:
    rows = [row for entry in entries for row in entry.outbox]
    for entry in entries:
        if any(row["tenant_id"] != entry.tenant_id for row in entry.outbox):
            raise ValueError("an outbox row belongs to another tenant")
    return rows
