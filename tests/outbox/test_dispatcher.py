"""The dispatcher: signed delivery, retries, dead letters, no double delivery,
and outbox rows that commit with their audit record or not at all."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections import Counter
from typing import Any

import pytest

from crp_gateway.audit.writer import AuditCommitFailed, AuditEntry, AuditWriter
from crp_gateway.logging import configure_logging
from crp_gateway.outbox.dispatcher import OutboxDispatcher, retry_delay
from crp_gateway.outbox.sender import ReportSender
from crp_gateway.outbox.signing import SigningSecrets
from crp_gateway.services.rotation import rotate_secret
from crp_gateway.store.models.base import utcnow
from crp_gateway.store.repositories import AuditRepository
from crp_gateway.vault import Vault
from tests.outbox.receiver import Receiver
from tests.outbox.support import (
    Store,
    enqueue,
    messages,
    new_tenant,
    open_store,
    report,
    signature_valid,
)
from tests.support import Backend, LogCapture, run


def _dispatcher(
    store: Store,
    *,
    allow_private: bool = True,
    max_attempts: int = 3,
    batch_size: int = 20,
    poll_seconds: float = 3600.0,
) -> OutboxDispatcher:
    sender = ReportSender(require_https=False, allow_private=allow_private, timeout=5)
    return OutboxDispatcher(
        store.sessions,
        sender,
        SigningSecrets(store.sessions, store.vault),
        poll_seconds=poll_seconds,
        max_attempts=max_attempts,
        retry_base=0.0,  # a retry is due at once: no test waits on a clock
        batch_size=batch_size,
    )


def test_a_report_is_delivered_once_and_signed_with_the_tenant_secret(
    fresh_backend: Backend,
) -> None:
    with Receiver() as receiver:

        async def scenario() -> tuple[dict[str, Any], int, int, str, Any]:
            async with open_store(fresh_backend.settings()) as store:
                tenant = await new_tenant(store)
                row = report(tenant, receiver.url())
                await enqueue(store, [row])
                dispatcher = _dispatcher(store)
                first, second = await dispatcher.run_once(), await dispatcher.run_once()
                secret = await SigningSecrets(store.sessions, store.vault).current(
                    tenant
                )
                stored = (await messages(store, tenant))[row["id"]]
                return row, first, second, secret.value, stored

        row, first, second, secret, stored = run(scenario())
        (request,) = receiver.requests
    assert (first, second) == (1, 0)
    assert request.body == row["body"].encode()
    assert json.loads(request.body)["violation_type"] == "WARN_ON_RISK"
    assert request.headers["X-CRP-Idempotency-Key"] == row["idempotency_key"]
    assert signature_valid(secret, request.headers, request.body)
    assert not signature_valid(secret + "x", request.headers, request.body)
    assert not signature_valid(secret, request.headers, request.body + b" ")
    assert stored.status == "delivered"
    assert stored.attempts == 1
    assert stored.delivered_at is not None
    assert stored.last_error is None


def test_a_failed_delivery_is_retried_then_delivered(fresh_backend: Backend) -> None:
    with Receiver() as receiver:
        receiver.reply(500)

        async def scenario() -> tuple[Any, Any]:
            async with open_store(fresh_backend.settings()) as store:
                tenant = await new_tenant(store)
                row = report(tenant, receiver.url())
                await enqueue(store, [row])
                dispatcher = _dispatcher(store)
                assert await dispatcher.run_once() == 1
                after_failure = (await messages(store, tenant))[row["id"]]
                assert await dispatcher.run_once() == 1
                return after_failure, (await messages(store, tenant))[row["id"]]

        after_failure, delivered = run(scenario())
        requests = receiver.requests
    assert after_failure.status == "pending"
    assert after_failure.attempts == 1
    assert after_failure.last_error == "http 500"
    assert delivered.status == "delivered"
    assert delivered.attempts == 2
    assert len(requests) == 2
    assert len({r.headers["X-CRP-Idempotency-Key"] for r in requests}) == 1


def test_a_message_is_dead_after_its_last_attempt(fresh_backend: Backend) -> None:
    configure_logging(level="info", json=True)
    with Receiver() as receiver, LogCapture(json=True) as logs:
        receiver.reply(503, times=10)

        async def scenario() -> tuple[list[int], Any]:
            async with open_store(fresh_backend.settings()) as store:
                tenant = await new_tenant(store)
                row = report(tenant, receiver.url("/r?token=do-not-log"))
                await enqueue(store, [row])
                dispatcher = _dispatcher(store, max_attempts=3)
                rounds = [await dispatcher.run_once() for _ in range(4)]
                return rounds, (await messages(store, tenant))[row["id"]]

        rounds, dead = run(scenario())
        requests = receiver.requests
    assert rounds == [1, 1, 1, 0]
    assert len(requests) == 3
    assert dead.status == "dead"
    assert dead.attempts == 3
    assert dead.last_error == "http 503"
    lines = [json.loads(line) for line in logs.text.splitlines() if line.strip()]
    (event,) = [line for line in lines if line["event"] == "outbox.dead"]
    assert event["tenant_id"] == dead.tenant_id
    assert event["host"] == "127.0.0.1"
    assert "do-not-log" not in logs.text


def test_a_refused_target_is_dead_at_once(fresh_backend: Backend) -> None:
    with Receiver() as receiver:

        async def scenario() -> Any:
            async with open_store(fresh_backend.settings()) as store:
                tenant = await new_tenant(store)
                row = report(tenant, receiver.url())
                await enqueue(store, [row])
                await _dispatcher(store, allow_private=False).run_once()
                return (await messages(store, tenant))[row["id"]]

        refused = run(scenario())
        assert receiver.requests == []
    assert refused.status == "dead"
    assert refused.attempts == 1
    assert refused.last_error == "refused: address not public"


def test_two_dispatchers_never_deliver_one_message_twice(
    fresh_backend: Backend,
) -> None:
    if not fresh_backend.is_services:
        pytest.skip("claims with SKIP LOCKED are PostgreSQL's; SQLite is one process")
    settings = fresh_backend.settings()
    with Receiver() as receiver:

        async def drain(dispatcher: OutboxDispatcher) -> int:
            total = 0
            while handled := await dispatcher.run_once():
                total += handled
            return total

        async def scenario() -> tuple[list[str], list[int]]:
            async with open_store(settings) as one, open_store(settings) as two:
                tenant = await new_tenant(one)
                rows = [report(tenant, receiver.url()) for _ in range(60)]
                await enqueue(one, rows)
                totals = await asyncio.gather(
                    drain(_dispatcher(one, batch_size=4)),
                    drain(_dispatcher(two, batch_size=4)),
                )
                stored = await messages(one, tenant)
                assert {row.status for row in stored.values()} == {"delivered"}
                return [row["idempotency_key"] for row in rows], totals

        keys, totals = run(scenario())
        received = Counter(
            r.headers["X-CRP-Idempotency-Key"] for r in receiver.requests
        )
    assert sum(totals) == 60
    assert received == Counter(keys)  # every message exactly once


def test_the_writer_wakes_the_dispatcher_after_committing_outbox_rows(
    fresh_backend: Backend,
) -> None:
    with Receiver() as receiver:

        async def scenario() -> bool:
            async with open_store(fresh_backend.settings()) as store:
                tenant = await new_tenant(store)
                dispatcher = _dispatcher(store, poll_seconds=3600)
                writer = AuditWriter(store.engine, on_outbox=dispatcher.wake)
                dispatcher.start()
                writer.start()
                try:
                    for n in (1, 2):  # the second can only be sent on a wake-up
                        row = report(tenant, receiver.url())
                        await writer.append(AuditEntry(tenant_id=tenant, outbox=(row,)))
                        if not await asyncio.to_thread(receiver.wait_for, n):
                            return False
                    return True
                finally:
                    await writer.aclose()
                    await dispatcher.aclose()

        assert run(scenario())
        assert len(receiver.requests) == 2


def _hash(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def _audited(tenant_id: str, outbox: dict[str, Any], window_id: str) -> AuditEntry:
    """A complete audit record (window, event, tenant link) with one outbox row."""
    session_id = f"crp_sess_{uuid.uuid4().hex}"
    now = utcnow()
    window = {
        "tenant_id": tenant_id,
        "session_id": session_id,
        "window_id": window_id,
        "window_number": 1,
        "timestamp": "2026-12-03T10:00:00Z",
        "content_hash": _hash("content"),
        "dpe_report_hash": _hash("{}"),
        "prev_hmac": "",
        "hmac": _hash(window_id),
        "trail_id": f"crp_trail_{uuid.uuid4().hex}",
        "request_id": "req_1",
        "key_id": "k",
        "endpoint": "chat",
        "provider": "openai",
        "model": "m",
        "outcome": "WARN",
        "status": 200,
        "created_at": now,
    }

    def events(_seq: int, _prev: str) -> tuple[dict[str, Any], ...]:
        return (
            {
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
                "hmac": _hash("event" + window_id),
                "created_at": now,
            },
        )

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
            "created_at": now,
        }

    return AuditEntry(
        tenant_id=tenant_id,
        window=window,
        events=events,
        link=link,
        session_id=session_id,
        outbox=(outbox,),
    )


def test_outbox_rows_commit_with_their_audit_record_or_not_at_all(
    fresh_backend: Backend,
) -> None:
    async def scenario() -> dict[str, Any]:
        async with open_store(fresh_backend.settings()) as store:
            tenant = await new_tenant(store)
            writer = AuditWriter(store.engine)
            writer.start()
            kept = _audited(tenant, report(tenant, "https://r.example/"), "crp_win_a")
            # The outbox insert fails (a reused idempotency key): no audit row.
            reused = report(tenant, "https://r.example/")
            reused["idempotency_key"] = kept.outbox[0]["idempotency_key"]
            no_outbox = _audited(tenant, reused, "crp_win_b")
            # The audit insert fails (a reused window id): no outbox row.
            no_audit = _audited(
                tenant, report(tenant, "https://r.example/"), "crp_win_a"
            )
            try:
                await writer.append(kept)
                failures = []
                for entry in (no_outbox, no_audit):
                    with pytest.raises(AuditCommitFailed):
                        await writer.append(entry)
                    failures.append(entry)
            finally:
                await writer.aclose()
            stored = await messages(store, tenant)
            async with store.sessions() as session:
                audit = AuditRepository(session, tenant)
                trails = {
                    name: await audit.window_by_trail(entry.window["trail_id"])
                    for name, entry in (
                        ("kept", kept),
                        ("no_outbox", no_outbox),
                        ("no_audit", no_audit),
                    )
                    if entry.window is not None
                }
            return {
                "outbox": set(stored),
                "ids": {
                    "kept": kept.outbox[0]["id"],
                    "no_outbox": no_outbox.outbox[0]["id"],
                    "no_audit": no_audit.outbox[0]["id"],
                },
                "windows": {name: row is not None for name, row in trails.items()},
                "failures": len(failures),
            }

    result = run(scenario())
    assert result["failures"] == 2
    assert result["outbox"] == {result["ids"]["kept"]}
    assert result["windows"] == {"kept": True, "no_outbox": False, "no_audit": False}


def test_rotating_secret_key_rewraps_report_signing_secrets(
    fresh_backend: Backend,
) -> None:
    old = "old-secret-key-" + "y" * 32
    new = "new-secret-key-" + "z" * 32

    async def scenario() -> tuple[str, str, list[str]]:
        async with open_store(fresh_backend.settings()) as store:
            tenant = await new_tenant(store)
            before = await SigningSecrets(store.sessions, Vault(old)).current(tenant)
            rotation = await rotate_secret(store.sessions, Vault(new, old))
            after = await SigningSecrets(store.sessions, Vault(new)).current(tenant)
            return before.value, after.value, rotation.unreadable

    before, after, unreadable = run(scenario())
    assert unreadable == []
    assert after == before


def test_retry_delays_grow_and_are_capped() -> None:
    delays = [retry_delay(n, base=1.0, cap=60.0) for n in range(1, 8)]
    assert 0.5 <= delays[0] <= 1.0
    assert 2.0 <= delays[1] <= 4.0
    assert 8.0 <= delays[2] <= 16.0
    assert all(30.0 <= delay <= 60.0 for delay in delays[4:])
