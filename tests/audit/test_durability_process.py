"""A process killed right after its 2xx loses no audit record (Axiom 7, 001§6).

The gateway runs as a real ``crp-gateway serve`` process on the leg's database
(a SQLite file on the embedded leg, the run's PostgreSQL database on the
services leg). Thirty chat completions race through it, a third answered whole,
a third as relayed streams, a third as buffered streams; the moment the first
2xx answer is complete the process gets SIGKILL, with no shutdown of any kind.
Every answer the client had received complete must then be in the database:
its window, its two events and its link of the tenant chain, and
``crp-gateway audit verify`` must find every chain intact.

"Complete" is when the gateway has said the record exists: the body of a JSON
answer, ``data: [DONE]`` of a buffered stream (its CRP headers came before the
first byte), and the ``event: crp-headers`` verdict of a relayed stream, which
``proxy.governed.with_verdict`` sends only after the audit commit (its
``[DONE]`` comes before the record and proves nothing).
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crp_gateway.settings import normalise_database_url
from crp_gateway.store.database import create_engine
from crp_gateway.store.models import AuditEvent, AuditTenantLink, AuditWindow
from tests.fakes.upstream import FakeUpstream
from tests.processes import (
    GatewayProcess,
    free_port,
    gateway_cli,
    gateway_environment,
    sign_up_and_wire,
)
from tests.support import Backend, run

CALLS = 30
#: Arrivals at the fake after this many wait until the fake stops: they are
#: certainly in flight when the gateway dies, so the kill always cuts a call.
ANSWERED_BY_THE_FAKE = 20
HELLO = [{"role": "user", "content": "hello there, how are you today"}]

Kind = Literal["json", "relayed", "buffered"]
KINDS: tuple[Kind, ...] = ("json", "relayed", "buffered")


@dataclass(frozen=True)
class Completed:
    """A call whose 2xx answer the client received whole."""

    kind: Kind
    status: int
    trail_id: str
    session_id: str
    provenance_hmac: str


@pytest.fixture
def database_url(fresh_backend: Backend, tmp_path: Path) -> str:
    if fresh_backend.database_url is not None:
        return fresh_backend.database_url
    return f"sqlite:///{tmp_path / 'gateway.db'}"


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


def _script_arrivals(fake: FakeUpstream) -> None:
    """A burst of answers for the first arrivals (so that many calls are between
    their answer and their record when the kill comes), then ones that never
    come."""
    for arrival in range(CALLS):
        if arrival < ANSWERED_BY_THE_FAKE:
            fake.script(delay=0.05 + arrival % 4 * 0.001, chunk_delay=0.001)
        else:
            fake.script(delay=600)  # cut short when the fake stops


def _request(kind: Kind) -> tuple[dict[str, Any], dict[str, str]]:
    body = {"model": "llama3.1", "messages": HELLO, "stream": kind != "json"}
    # A policy that can halt makes the gateway buffer the stream (G24).
    headers = {"CRP-Safety-Policy": "halt-on CRITICAL"} if kind == "buffered" else {}
    return body, headers


def _verdict(line: str) -> dict[str, str]:
    verdict: dict[str, str] = json.loads(line.removeprefix("data: "))
    return verdict


async def _one_call(
    client: httpx.AsyncClient, kind: Kind, kill: Callable[[], None]
) -> Completed | None:
    """Run one call; ``None`` if the kill cut it before it was complete. The first
    call to complete kills the gateway at once."""
    body, headers = _request(kind)
    try:
        if kind == "json":
            response = await client.post(
                "/v1/chat/completions", json=body, headers=headers
            )
            response.json()  # the whole body arrived and parses
            values: dict[str, str] = dict(response.headers)
        else:
            async with client.stream(
                "POST", "/v1/chat/completions", json=body, headers=headers
            ) as response:
                values = await _read_stream(response, kind)
    except (httpx.HTTPError, httpx.StreamError, json.JSONDecodeError):
        return None
    if not values:
        return None  # the stream ended early, without its end marker
    kill()
    lowered = {name.lower(): value for name, value in values.items()}
    return Completed(
        kind=kind,
        status=response.status_code,
        trail_id=lowered.get("crp-compliance-audit-trail-id", ""),
        session_id=lowered.get("crp-context-session-id", ""),
        provenance_hmac=lowered.get("crp-provenance-hmac", ""),
    )


async def _read_stream(response: httpx.Response, kind: Kind) -> dict[str, str]:
    """The CRP values of a stream read to its end marker, else ``{}``."""
    lines = response.aiter_lines()
    async for line in lines:
        if kind == "buffered" and line == "data: [DONE]":
            return dict(response.headers)
        if kind == "relayed" and line == "event: crp-headers":
            data = await anext(lines, "")
            return _verdict(data) if data.startswith("data: ") else {}
    return {}


async def _race(
    url: str, api_key: str, kill: Callable[[], None]
) -> list[Completed | None]:
    """Fire every call at once; the first complete one SIGKILLs the gateway."""
    limits = httpx.Limits(max_connections=CALLS, max_keepalive_connections=CALLS)
    async with httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=60,
        limits=limits,
    ) as client:
        calls = [_one_call(client, KINDS[index % 3], kill) for index in range(CALLS)]
        return list(await asyncio.gather(*calls))


@dataclass(frozen=True)
class Stored:
    windows: dict[str, AuditWindow]
    events: dict[str, list[AuditEvent]]
    links: dict[str, AuditTenantLink]


async def _read_store(url: str, trail_ids: list[str]) -> Stored:
    engine = create_engine(normalise_database_url(url))
    try:
        async with AsyncSession(engine) as session:
            windows = {
                row.trail_id: row
                for row in await session.scalars(
                    select(AuditWindow).where(AuditWindow.trail_id.in_(trail_ids))
                )
            }
            sessions = [window.session_id for window in windows.values()]
            events: dict[str, list[AuditEvent]] = {}
            for event in await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.session_id.in_(sessions))
                .order_by(AuditEvent.session_id, AuditEvent.seq)
            ):
                events.setdefault(event.session_id, []).append(event)
            window_ids = [window.window_id for window in windows.values()]
            links = {
                link.window_id: link
                for link in await session.scalars(
                    select(AuditTenantLink).where(
                        AuditTenantLink.window_id.in_(window_ids)
                    )
                )
            }
    finally:
        await engine.dispose()
    return Stored(windows, events, links)


def _assert_recorded(call: Completed, tenant_id: str, stored: Stored) -> None:
    window = stored.windows.get(call.trail_id)
    assert window is not None, f"no audit window for {call}"
    assert window.tenant_id == tenant_id
    assert window.session_id == call.session_id
    assert window.hmac == call.provenance_hmac
    assert window.status == call.status
    events = stored.events.get(window.session_id, [])
    assert [event.event_type for event in events] == [
        "SESSION_CREATED",
        "DISPATCH_COMPLETED",
    ], call
    assert {event.window_id for event in events} == {window.window_id}
    assert {event.tenant_id for event in events} == {tenant_id}
    link = stored.links.get(window.window_id)
    assert link is not None, f"no tenant-chain link for {call}"
    assert link.tenant_id == tenant_id
    assert link.window_hmac == window.hmac


def test_a_killed_process_loses_no_record_of_an_answered_call(
    database_url: str, fake: FakeUpstream, tmp_path: Path
) -> None:
    port = free_port()
    env = gateway_environment(database_url, tmp_path / "data", port)
    migrated = gateway_cli(env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    gateway = GatewayProcess(env, port, tmp_path / "gateway.log")
    try:
        gateway.wait_until_ready()
        tenant_id, api_key = sign_up_and_wire(gateway, fake)
        _script_arrivals(fake)
        outcomes = run(_race(gateway.url, api_key, gateway.kill))
        gateway.process.wait(timeout=30)
        assert gateway.process.returncode == -signal.SIGKILL
    finally:
        gateway.close()

    completed = [outcome for outcome in outcomes if outcome is not None]
    assert completed, gateway.output()
    assert len(completed) < CALLS, "the kill came after every call had finished"
    assert {call.status for call in completed} == {200}
    assert len({call.trail_id for call in completed}) == len(completed)

    stored = run(_read_store(database_url, [call.trail_id for call in completed]))
    for call in completed:
        _assert_recorded(call, tenant_id, stored)

    verified = gateway_cli(env, "audit", "verify", "--tenant", tenant_id)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    summary = verified.stdout.strip().splitlines()[-1]
    sessions, _, broken = summary.partition(" sessions verified, ")
    assert int(sessions) >= len(completed), verified.stdout
    assert broken == "0 broken", verified.stdout
