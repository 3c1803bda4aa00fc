"""Audit retention on records made by real calls: erased spans are TRUNCATED
(015§6.4), everything that remains still verifies, and any change is BROKEN."""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crp_gateway.audit.chain import ChainStatus
from crp_gateway.audit.master_keys import TenantKeys
from crp_gateway.audit.retention import RetentionRefused, RetentionReport, erase_before
from crp_gateway.audit.verify import TenantVerification, verify_store
from crp_gateway.runtime import build_vault
from crp_gateway.store.database import create_engine, create_sessionmaker
from crp_gateway.store.models import (
    AuditEvent,
    AuditTenantLink,
    AuditTruncation,
    AuditWindow,
)
from crp_gateway.store.models.base import utcnow
from tests.processes import gateway_cli
from tests.proxy.conftest import WiredTenant
from tests.support import GatewayServer, run

T = TypeVar("T")
HELLO = [{"role": "user", "content": "hello there"}]
Store = tuple[async_sessionmaker[AsyncSession], TenantKeys]


def _chat(
    gateway: GatewayServer, key: str, after: httpx.Response | None = None
) -> httpx.Response:
    """One call; ``after`` continues that answer's session."""
    headers = {}
    if after is not None:
        token = after.headers["crp-set-session"].split(";", 1)[0]
        headers = {
            "CRP-Session-Token": token.removeprefix("token="),
            "CRP-Context-Continuation-Id": after.headers["crp-context-continuation-id"],
        }
    with gateway.client(key) as client:
        response = client.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o", "messages": HELLO},
            headers=headers,
        )
    assert response.status_code == 200, response.text
    return response


def _sid(response: httpx.Response) -> str:
    return response.headers["crp-context-session-id"]


def _cutoff() -> datetime:
    """A moment strictly between the calls before it and those after it."""
    time.sleep(0.01)
    moment = utcnow()
    time.sleep(0.01)
    return moment


def _with_store(gateway: GatewayServer, work: Callable[[Store], Awaitable[T]]) -> T:
    async def scenario() -> T:
        engine = create_engine(gateway.settings.store_url)
        try:
            sessions = create_sessionmaker(engine)
            keys = TenantKeys(sessions, build_vault(gateway.settings))
            return await work((sessions, keys))
        finally:
            await engine.dispose()

    return run(scenario())


def _retain(
    gateway: GatewayServer, tenant_id: str, before: datetime, **kw: Any
) -> RetentionReport:
    # The clock is two hours on, so that the cutoff is old enough (MIN_AGE).
    return _with_store(
        gateway,
        lambda store: erase_before(
            *store,
            tenant_id=tenant_id,
            before=before,
            reason="retention test",
            now=before + timedelta(hours=2),
            **kw,
        ),
    )


def _verify(gateway: GatewayServer, tenant_id: str) -> TenantVerification:
    results = _with_store(
        gateway, lambda store: verify_store(*store, tenant_id=tenant_id)
    )
    assert [r.tenant_id for r in results] == [tenant_id]
    return results[0]


def _statuses(result: TenantVerification) -> dict[str, ChainStatus]:
    return {s.session_id: s.status for s in result.sessions}


def _change(gateway: GatewayServer, statement: Any, *, retention: bool) -> None:
    """Run one statement, as the retention path would (``retention``) or not."""

    async def work(store: Store) -> None:
        async with store[0]() as session, session.begin():
            if retention and session.get_bind().dialect.name == "postgresql":
                await session.execute(text("SET LOCAL crp.audit_retention = 'on'"))
            await session.execute(statement)

    _with_store(gateway, work)


def _rows(gateway: GatewayServer, model: Any, tenant_id: str) -> list[Any]:
    async def work(store: Store) -> list[Any]:
        async with store[0]() as session:
            found = await session.scalars(
                select(model).where(model.tenant_id == tenant_id)
            )
            return list(found)

    return _with_store(gateway, work)


def _sessions_with_windows(gateway: GatewayServer, tenant_id: str) -> set[str]:
    return {w.session_id for w in _rows(gateway, AuditWindow, tenant_id)}


def test_retention_erases_old_sessions_and_extends_the_erased_prefix(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    tenant_id, key = wired.tenant.tenant_id, wired.api_key
    # Group 1: K starts (and continues in group 2), A has two windows, B one.
    k1 = _chat(gateway, key)
    a1 = _chat(gateway, key)
    _chat(gateway, key, after=a1)
    b1 = _chat(gateway, key)
    first_cutoff = _cutoff()
    _chat(gateway, key, after=k1)
    c1 = _chat(gateway, key)
    second_cutoff = _cutoff()
    e1 = _chat(gateway, key)
    third_cutoff = _cutoff()
    f1 = _chat(gateway, key)
    k, a, b, c, e, f = map(_sid, (k1, a1, b1, c1, e1, f1))

    # Run 1: A and B end before the cutoff; K's link (seq 1) is first in the
    # tenant chain and K is kept, so no prefix of the chain can go yet.
    report = _retain(gateway, tenant_id, first_cutoff)
    [erasure] = report.tenants
    assert set(erasure.sessions) == {a, b}
    assert (erasure.windows, erasure.events, erasure.links) == (3, 6, 0)
    assert erasure.markers == 4  # a window and an event marker per session
    assert _sessions_with_windows(gateway, tenant_id) == {k, c, e, f}
    result = _verify(gateway, tenant_id)
    assert result.chain.status is ChainStatus.VALID
    assert _statuses(result) == {
        a: ChainStatus.TRUNCATED,
        b: ChainStatus.TRUNCATED,
        k: ChainStatus.VALID,
        c: ChainStatus.VALID,
        e: ChainStatus.VALID,
        f: ChainStatus.VALID,
    }
    [erased_a] = [s for s in result.sessions if s.session_id == a]
    assert erased_a.windows.truncated == ((1, 2),)
    assert erased_a.events.truncated == ((1, 4),)

    # Run 2: K and C end before it; links 1..6 now all name erased sessions.
    report = _retain(gateway, tenant_id, second_cutoff)
    assert set(report.tenants[0].sessions) == {k, c}
    assert (report.windows, report.links, report.markers) == (3, 6, 5)
    result = _verify(gateway, tenant_id)
    assert result.chain.status is ChainStatus.TRUNCATED
    assert result.chain.truncated == ((1, 6),)
    statuses = _statuses(result)
    assert statuses[e] is statuses[f] is ChainStatus.VALID
    assert {statuses[s] for s in (a, b, k, c)} == {ChainStatus.TRUNCATED}
    with gateway.client(key) as client:
        api = client.get("/v1/audit/verify", params={"session_id": e}).json()
    assert api["status"] == "VALID"
    assert api["tenant_chain"]["status"] == "TRUNCATED"

    # Run 3: E goes too; the new marker covers 1..7 and supersedes 1..6.
    report = _retain(gateway, tenant_id, third_cutoff)
    assert (report.sessions, report.links) == (1, 1)
    result = _verify(gateway, tenant_id)
    assert result.chain.status is ChainStatus.TRUNCATED
    assert result.chain.truncated == ((1, 7),)
    assert _statuses(result)[f] is ChainStatus.VALID
    assert result.status is ChainStatus.TRUNCATED
    tenant_markers = [
        (m.first, m.last, m.prev_hmac)
        for m in _rows(gateway, AuditTruncation, tenant_id)
        if m.chain == "tenant"
    ]
    assert sorted(tenant_markers) == [(1, 6, ""), (1, 7, "")]
    assert [link.seq for link in _rows(gateway, AuditTenantLink, tenant_id)] == [8]

    # Deleting the newest tenant marker leaves the chain after it unanchored.
    newest = (
        delete(AuditTruncation)
        .where(AuditTruncation.tenant_id == tenant_id)
        .where(AuditTruncation.chain == "tenant", AuditTruncation.last == 7)
    )
    _change(gateway, newest, retention=True)
    assert _verify(gateway, tenant_id).chain.status is ChainStatus.BROKEN


def _two_groups(gateway: GatewayServer, wired: WiredTenant) -> tuple[str, str]:
    """An old session, then a kept one; retention erases the old one."""
    old = _sid(_chat(gateway, wired.api_key))
    cutoff = _cutoff()
    kept = _sid(_chat(gateway, wired.api_key))
    _chat(gateway, wired.api_key)  # the chain's newest link is never erased
    report = _retain(gateway, wired.tenant.tenant_id, cutoff)
    assert report.tenants[0].sessions == (old,)
    assert report.links == 1
    return old, kept


def test_a_changed_kept_window_is_still_broken(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    tenant_id = wired.tenant.tenant_id
    old, kept = _two_groups(gateway, wired)
    tamper = (
        update(AuditWindow)
        .where(AuditWindow.session_id == kept)
        .values(content_hash="sha256:" + "0" * 64)
    )
    _change(gateway, tamper, retention=True)
    result = _verify(gateway, tenant_id)
    [kept_result] = [s for s in result.sessions if s.session_id == kept]
    assert kept_result.status is ChainStatus.BROKEN
    assert (kept_result.windows.status, kept_result.windows.index) == (
        ChainStatus.BROKEN,
        0,
    )
    assert _statuses(result)[old] is ChainStatus.TRUNCATED


@pytest.mark.parametrize(
    ("chain", "values"),
    [
        ("windows", {"reason": "quietly rewritten"}),
        ("events", {"last": 1}),
        ("tenant", {"erased_at": "2030-01-01T00:00:00Z"}),
    ],
)
def test_a_changed_marker_is_broken(
    gateway: GatewayServer, wired: WiredTenant, chain: str, values: dict[str, Any]
) -> None:
    tenant_id = wired.tenant.tenant_id
    old, _ = _two_groups(gateway, wired)
    assert _verify(gateway, tenant_id).status is ChainStatus.TRUNCATED
    tamper = (
        update(AuditTruncation)
        .where(AuditTruncation.tenant_id == tenant_id, AuditTruncation.chain == chain)
        .values(**values)
    )
    _change(gateway, tamper, retention=True)
    result = _verify(gateway, tenant_id)
    assert result.status is ChainStatus.BROKEN
    [erased] = [s for s in result.sessions if s.session_id == old]
    part = {"windows": erased.windows, "events": erased.events}.get(chain)
    broken = part if part is not None else result.chain
    assert broken.status is ChainStatus.BROKEN
    assert "truncation marker" in broken.reason


def test_a_broken_session_is_refused_and_nothing_is_erased(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    tenant_id = wired.tenant.tenant_id
    old = _sid(_chat(gateway, wired.api_key))
    cutoff = _cutoff()
    kept = _sid(_chat(gateway, wired.api_key))
    tamper = (
        update(AuditEvent)
        .where(AuditEvent.session_id == old, AuditEvent.seq == 2)
        .values(data_hash="sha256:" + "1" * 64)
    )
    _change(gateway, tamper, retention=True)
    with pytest.raises(RetentionRefused, match="event chain is BROKEN"):
        _retain(gateway, tenant_id, cutoff)
    assert _sessions_with_windows(gateway, tenant_id) == {old, kept}
    assert _rows(gateway, AuditTruncation, tenant_id) == []


def test_a_dry_run_erases_nothing_and_a_recent_cutoff_is_refused(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    tenant_id = wired.tenant.tenant_id
    old = _sid(_chat(gateway, wired.api_key))
    cutoff = _cutoff()
    kept = _sid(_chat(gateway, wired.api_key))
    report = _retain(gateway, tenant_id, cutoff, dry_run=True)
    assert report.dry_run
    assert (report.sessions, report.windows, report.events) == (1, 1, 2)
    assert _sessions_with_windows(gateway, tenant_id) == {old, kept}
    assert _rows(gateway, AuditTruncation, tenant_id) == []
    with pytest.raises(RetentionRefused, match="session-token lifetime"):
        _with_store(
            gateway,
            lambda store: erase_before(
                *store, tenant_id=tenant_id, before=utcnow(), reason="too soon"
            ),
        )


def test_postgres_refuses_changing_markers_outside_retention(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    if not gateway.settings.database_url:
        pytest.skip("the append-only trigger is PostgreSQL's")
    tenant_id = wired.tenant.tenant_id
    _two_groups(gateway, wired)
    before = _rows(gateway, AuditTruncation, tenant_id)
    assert len(before) == 3
    mine = AuditTruncation.tenant_id == tenant_id
    for statement in (
        update(AuditTruncation).where(mine).values(reason="rewritten"),
        delete(AuditTruncation).where(mine),
        delete(AuditWindow).where(AuditWindow.tenant_id == tenant_id),
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            _change(gateway, statement, retention=False)
    after = _rows(gateway, AuditTruncation, tenant_id)
    assert [(m.id, m.reason) for m in after] == [(m.id, m.reason) for m in before]


def _cli_env(gateway: GatewayServer) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CRP_", "DATABASE"))
    }
    env.update(
        SECRET_KEY=gateway.settings.secret_key_value(),
        CRP_DATA_DIR=str(gateway.settings.crp_data_dir),
    )
    if gateway.settings.database_url:
        env["DATABASE_URL"] = gateway.settings.database_url
    return env


def _count_windows(gateway: GatewayServer, session_id: str) -> int:
    async def work(store: Store) -> int:
        async with store[0]() as session:
            statement = select(func.count()).where(AuditWindow.session_id == session_id)
            return int((await session.execute(statement)).scalar_one())

    return _with_store(gateway, work)


def test_the_retain_and_verify_commands(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    tenant_id = wired.tenant.tenant_id
    old = _sid(_chat(gateway, wired.api_key))
    kept = _sid(_chat(gateway, wired.api_key))
    # Age the old session's window by two days (created_at is not chained).
    aged = (
        update(AuditWindow)
        .where(AuditWindow.session_id == old)
        .values(created_at=utcnow() - timedelta(days=2))
    )
    _change(gateway, aged, retention=True)
    env = _cli_env(gateway)
    retain = ("audit", "retain", "--before", "1d", "--tenant", tenant_id)

    dry = gateway_cli(env, *retain)
    assert dry.returncode == 0, dry.stderr
    assert f"{tenant_id}: 1 sessions, 1 windows, 2 events" in dry.stdout
    assert "add --yes to erase" in dry.stdout
    assert _count_windows(gateway, old) == 1

    done = gateway_cli(env, *retain, "--reason", "policy 30d", "--yes")
    assert done.returncode == 0, done.stderr
    assert "3 TRUNCATED markers written" in done.stdout
    assert _count_windows(gateway, old) == 0
    assert {m.reason for m in _rows(gateway, AuditTruncation, tenant_id)} == {
        "policy 30d"
    }

    verify = ("audit", "verify", "--tenant", tenant_id)
    verified = gateway_cli(env, *verify)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"{tenant_id} {old} TRUNCATED (erased windows 1..1, events 1..2)" in (
        verified.stdout
    )
    assert f"{tenant_id} tenant-chain TRUNCATED (erased links 1..1)" in (
        verified.stdout
    )
    assert f"{tenant_id} {kept} VALID" in verified.stdout
    assert "1 sessions TRUNCATED" in verified.stdout

    tamper = (
        update(AuditTruncation)
        .where(AuditTruncation.tenant_id == tenant_id)
        .values(last_hmac="sha256:" + "2" * 64)
    )
    _change(gateway, tamper, retention=True)
    broken = gateway_cli(env, *verify)
    assert broken.returncode == 1
    assert f"{tenant_id} {old} BROKEN (windows at index 0" in broken.stdout

    refused = gateway_cli(env, "audit", "retain", "--before", "0d", "--yes")
    assert refused.returncode == 1
    assert "session-token lifetime" in refused.stderr
    bad = gateway_cli(env, "audit", "retain", "--before", "yesterday")
    assert bad.returncode == 2
    assert "RFC 3339" in bad.stderr
