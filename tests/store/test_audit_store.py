"""The audit store: group commit, the tenant rolling chain, append-only tables."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import uuid
from typing import Any

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from crp_gateway.audit.writer import AuditEntry, AuditWriter
from crp_gateway.store import migrate
from crp_gateway.store.database import create_engine, create_sessionmaker
from crp_gateway.store.models import AuditTenantLink, AuditWindow, Tenant
from crp_gateway.store.models.base import utcnow
from crp_gateway.store.repositories import AuditRepository
from tests.support import Backend, run


def _hash(text_: str) -> str:
    return "sha256:" + hashlib.sha256(text_.encode()).hexdigest()


def _entry(tenant_id: str, n: int) -> AuditEntry:
    session_id = f"crp_sess_{uuid.uuid4().hex}"
    window_id = f"crp_win_{uuid.uuid4().hex}"
    window = {
        "tenant_id": tenant_id,
        "session_id": session_id,
        "window_id": window_id,
        "window_number": 1,
        "timestamp": "2026-12-03T10:00:00Z",
        "content_hash": _hash(f"content {n}"),
        "dpe_report_hash": _hash("{}"),
        "prev_hmac": "",
        "hmac": _hash(f"window {n}"),
        "trail_id": f"crp_trail_{uuid.uuid4().hex}",
        "request_id": f"req_{n}",
        "key_id": "k",
        "endpoint": "chat",
        "provider": "openai",
        "model": "m",
        "outcome": "PASS",
        "status": 200,
        "created_at": utcnow(),
    }
    event = {
        "tenant_id": tenant_id,
        "session_id": session_id,
        "seq": 1,
        "event_type": "SESSION_CREATED",
        "severity": "INFO",
        "timestamp": "2026-12-03T10:00:00Z",
        "window_id": window_id,
        "data": "{}",
        "data_hash": _hash("{}"),
        "prev_hmac": "",
        "hmac": _hash(f"event {n}"),
        "created_at": utcnow(),
    }

    def link(seq: int, prev: str) -> dict[str, Any]:
        return {
            "tenant_id": tenant_id,
            "seq": seq,
            "timestamp": "2026-12-03T10:00:00Z",
            "session_id": session_id,
            "window_id": window_id,
            "window_number": 1,
            "window_hmac": window["hmac"],
            "prev_hmac": prev,
            "hmac": _hash(prev + window_id),
            "created_at": utcnow(),
        }

    def events(last_seq: int, last_hmac: str) -> tuple[dict[str, Any], ...]:
        assert (last_seq, last_hmac) == (0, "")  # a new session starts its chain
        return (event,)

    return AuditEntry(
        tenant_id=tenant_id,
        window=window,
        events=events,
        link=link,
        session_id=session_id,
    )


async def _tenant(url: str) -> str:
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        tenant_id = f"tnt_{uuid.uuid4().hex[:26]}"
        async with create_sessionmaker(engine)() as session, session.begin():
            session.add(
                Tenant(id=tenant_id, name="t", email=f"{tenant_id}@example.com")
            )
        return tenant_id
    finally:
        await engine.dispose()


async def _write(url: str, tenant_id: str, first: int, count: int) -> int:
    engine = create_engine(url)
    writer = AuditWriter(engine)
    writer.start()
    try:
        await asyncio.gather(
            *(writer.append(_entry(tenant_id, n)) for n in range(first, first + count))
        )
        return writer.commits
    finally:
        await writer.aclose()
        await engine.dispose()


async def _links(url: str, tenant_id: str) -> list[AuditTenantLink]:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            return list(await AuditRepository(session, tenant_id).tenant_links())
    finally:
        await engine.dispose()


def test_appends_are_durable_when_they_return_and_share_commits(
    fresh_backend: Backend,
) -> None:
    url = fresh_backend.settings().store_url
    tenant_id = run(_tenant(url))
    commits = run(_write(url, tenant_id, 0, 40))
    links = run(_links(url, tenant_id))
    assert len(links) == 40  # read by another engine after append returned
    assert commits < 40  # group commit: appends waiting together share one


def test_the_tenant_chain_stays_one_sequence_across_two_writers(
    fresh_backend: Backend,
) -> None:
    url = fresh_backend.settings().store_url
    tenant_id = run(_tenant(url))

    async def both() -> None:
        await asyncio.gather(
            _write(url, tenant_id, 0, 25), _write(url, tenant_id, 100, 25)
        )

    run(both())
    links = run(_links(url, tenant_id))
    assert [link.seq for link in links] == list(range(1, 51))
    for previous, link in itertools.pairwise(links):
        assert link.prev_hmac == previous.hmac
    assert links[0].prev_hmac == ""


def test_a_failed_commit_fails_every_call_of_its_batch(fresh_backend: Backend) -> None:
    url = fresh_backend.settings().store_url
    tenant_id = run(_tenant(url))

    async def scenario() -> list[BaseException | None]:
        engine = create_engine(url)
        writer = AuditWriter(engine)  # not started: one flush
        good, twin = _entry(tenant_id, 1), _entry(tenant_id, 2)
        twin.window["window_id"] = good.window["window_id"]  # a unique violation
        try:
            tasks = [asyncio.create_task(writer.append(e)) for e in (good, twin)]
            await asyncio.sleep(0)
            await writer._flush()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            return [r if isinstance(r, BaseException) else None for r in results]
        finally:
            await engine.dispose()

    outcomes = run(scenario())
    assert all(isinstance(outcome, Exception) for outcome in outcomes)
    assert run(_links(url, tenant_id)) == []  # nothing of the batch was stored


async def _try_change(url: str, *, retention: bool) -> tuple[bool, bool]:
    engine = create_engine(url)
    results = []
    try:
        for statement in (
            update(AuditWindow).values(model="tampered"),
            delete(AuditWindow),
        ):
            try:
                async with engine.begin() as connection:
                    if retention:
                        await connection.execute(
                            text("SET LOCAL crp.audit_retention = 'on'")
                        )
                    await connection.execute(statement)
                results.append(True)
            except DBAPIError:
                results.append(False)
        return results[0], results[1]
    finally:
        await engine.dispose()


def test_postgres_refuses_updates_and_deletes_outside_retention(
    fresh_backend: Backend,
) -> None:
    if not fresh_backend.is_services:
        pytest.skip("the append-only trigger is PostgreSQL's")
    url = fresh_backend.settings().store_url
    tenant_id = run(_tenant(url))
    run(_write(url, tenant_id, 0, 3))
    assert run(_try_change(url, retention=False)) == (False, False)

    async def count() -> int:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return int(
                    (
                        await connection.execute(
                            select(func.count()).select_from(AuditWindow)
                        )
                    ).scalar_one()
                )
        finally:
            await engine.dispose()

    assert run(count()) == 3
    assert run(_try_change(url, retention=True)) == (True, True)
    assert run(count()) == 0
