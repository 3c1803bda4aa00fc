"""A session continues on either of two gateway processes (``crp-gateway serve``
twice, one database): with Redis they share the continuation points, so the
token of one process's answer continues on the other; without Redis each keeps
its own, as documented, and the other refuses the token (409)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.processes import (
    GatewayProcess,
    free_port,
    gateway_cli,
    gateway_environment,
    sign_up_and_wire,
)
from tests.support import Backend

HELLO = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture
def pair(fresh_backend: Backend, tmp_path: Path) -> Iterator[list[GatewayProcess]]:
    database_url = fresh_backend.database_url or f"sqlite:///{tmp_path / 'gw.db'}"
    processes: list[GatewayProcess] = []
    try:
        for n in range(2):
            port = free_port()
            env = gateway_environment(
                database_url,
                tmp_path / "data",
                port,
                redis_url=fresh_backend.redis_url,
                redis_prefix=fresh_backend.redis_prefix,
            )
            if n == 0:
                migrated = gateway_cli(env, "migrate")
                assert migrated.returncode == 0, migrated.stderr
            processes.append(GatewayProcess(env, port, tmp_path / f"gw{n}.log"))
        for process in processes:
            process.wait_until_ready()
        yield processes
    finally:
        for process in processes:
            process.close()


def _chat(
    gateway: GatewayProcess, key: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        return client.post(
            "/v1/chat/completions",
            json={"model": "llama3.1", "messages": HELLO},
            headers={"Authorization": f"Bearer {key}", **(headers or {})},
        )


def _continue(response: httpx.Response) -> dict[str, str]:
    token = response.headers["crp-set-session"].split(";", 1)[0]
    return {
        "CRP-Session-Token": token.removeprefix("token="),
        "CRP-Context-Continuation-Id": response.headers["crp-context-continuation-id"],
    }


def test_a_session_continues_on_the_other_process(
    pair: list[GatewayProcess], fake: FakeUpstream, fresh_backend: Backend
) -> None:
    first_process, second_process = pair
    _tenant, key = sign_up_and_wire(first_process, fake)
    first = _chat(first_process, key)
    assert first.status_code == 200, first.text
    second = _chat(second_process, key, _continue(first))
    if fresh_backend.redis_url is None:
        # Without REDIS_URL the points live in each process (README, DESIGN).
        assert second.status_code == 409, second.text
        assert second.json()["error"]["code"] == "stale_chain_tip"
        return
    assert second.status_code == 200, second.text
    session_id = first.headers["crp-context-session-id"]
    assert second.headers["crp-context-session-id"] == session_id
    assert second.headers["crp-context-window"] == "2/3"
    assert second.headers["crp-provenance-chain-integrity"] == "VALID"
    # the tip moved on the second process: the first token is stale on both
    for process in pair:
        assert _chat(process, key, _continue(first)).status_code == 409
    third = _chat(first_process, key, _continue(second))
    assert third.headers["crp-context-window"] == "3/3"
    with httpx.Client(base_url=second_process.url, timeout=30) as client:
        verified = client.get(
            "/v1/audit/verify",
            params={"session_id": session_id},
            headers={"Authorization": f"Bearer {key}"},
        ).json()
    assert verified["status"] == "VALID"
    assert verified["windows"]["checked"] == 3
