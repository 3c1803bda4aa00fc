"""Rotating a tenant's audit master key (§5.3-5.4, 007§6): new sessions and
tenant-chain links use the new version; sessions begun before it, their tokens
and every stored record keep verifying with the old one."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from crp_gateway.store.database import create_engine
from crp_gateway.store.models import AuditEvent, AuditTenantLink, AuditWindow
from tests.conftest import StartGateway
from tests.proxy.conftest import WiredTenant
from tests.support import Backend, GatewayServer, run

HELLO = [{"role": "user", "content": "hello there"}]


def _chat(
    gateway: GatewayServer, key: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    with gateway.client(key) as client:
        return client.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o", "messages": HELLO},
            headers=headers or {},
        )


def _continue(response: httpx.Response) -> dict[str, str]:
    token = response.headers["crp-set-session"].split(";", 1)[0]
    return {
        "CRP-Session-Token": token.removeprefix("token="),
        "CRP-Context-Continuation-Id": response.headers["crp-context-continuation-id"],
    }


def _kv(response: httpx.Response) -> int:
    part = _continue(response)["CRP-Session-Token"].split(".", 1)[0]
    payload: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    )
    return int(payload["kv"])


async def _versions(gateway: GatewayServer, session_id: str) -> dict[str, set[int]]:
    engine = create_engine(gateway.settings.store_url)
    try:
        async with engine.connect() as connection:
            found: dict[str, set[int]] = {}
            for name, model in (
                ("windows", AuditWindow),
                ("events", AuditEvent),
                ("links", AuditTenantLink),
            ):
                rows = await connection.execute(
                    select(model.key_version).where(model.session_id == session_id)
                )
                found[name] = {row[0] for row in rows}
            return found
    finally:
        await engine.dispose()


def _verify(gateway: GatewayServer, key: str, session_id: str) -> dict[str, Any]:
    with gateway.client(key) as client:
        response = client.get("/v1/audit/verify", params={"session_id": session_id})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_rotation_keeps_old_sessions_verifiable(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    before = _chat(gateway, wired.api_key)
    assert _kv(before) == 1
    with gateway.client(wired.api_key) as client:
        rotated = client.post("/v1/audit/keys/rotate")
    assert rotated.status_code == 200, rotated.text
    assert rotated.json() == {"object": "audit_key", "key_version": 2}

    # a session begun under version 1 continues under version 1
    continued = _chat(gateway, wired.api_key, _continue(before))
    assert continued.status_code == 200, continued.text
    assert continued.headers["crp-context-window"] == "2/3"
    assert _kv(continued) == 1
    # a new session uses version 2
    after = _chat(gateway, wired.api_key)
    assert _kv(after) == 2

    old_session = before.headers["crp-context-session-id"]
    new_session = after.headers["crp-context-session-id"]
    old = run(_versions(gateway, old_session))
    new = run(_versions(gateway, new_session))
    assert old["windows"] == old["events"] == {1}
    assert old["links"] == {1, 2}  # window 2's link came after the rotation
    assert new == {"windows": {2}, "events": {2}, "links": {2}}
    for session_id in (old_session, new_session):
        verified = _verify(gateway, wired.api_key, session_id)
        assert verified["status"] == "VALID", verified
        assert verified["tenant_chain"]["status"] == "VALID"


def test_only_admins_rotate(gateway: GatewayServer, wired: WiredTenant) -> None:
    with gateway.client(wired.api_key) as client:
        inference = client.post(
            "/v1/keys", json={"name": "app", "role": "inference"}
        ).json()["api_key"]
    with gateway.client(inference) as client:
        refused = client.post("/v1/audit/keys/rotate")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insufficient_role"


def test_a_replica_that_has_not_seen_the_rotation_accepts_the_new_tokens(
    gateway: GatewayServer,
    wired: WiredTenant,
    backend: Backend,
    start_gateway: StartGateway,
) -> None:
    if not backend.is_services:
        pytest.skip("sessions are per replica without REDIS_URL (documented)")
    with start_gateway() as replica:
        assert _chat(replica, wired.api_key).status_code == 200  # caches version 1
        with gateway.client(wired.api_key) as client:
            assert client.post("/v1/audit/keys/rotate").status_code == 200
        fresh = _chat(gateway, wired.api_key)
        assert _kv(fresh) == 2
        continued = _chat(replica, wired.api_key, _continue(fresh))
    assert continued.status_code == 200, continued.text
    assert _kv(continued) == 2


def test_the_cli_rotates_a_tenants_key(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    env = {
        **os.environ,
        "SECRET_KEY": gateway.settings.secret_key_value(),
        "CRP_DATA_DIR": str(gateway.settings.crp_data_dir),
    }
    if gateway.settings.database_url:
        env["DATABASE_URL"] = gateway.settings.database_url
    argv = [sys.executable, "-m", "crp_gateway", "audit", "rotate-key", "--tenant"]
    done = subprocess.run(
        [*argv, wired.tenant.tenant_id], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("is current")
    unknown = subprocess.run(
        [*argv, "tnt_" + "z" * 26], env=env, capture_output=True, text=True
    )
    assert unknown.returncode == 1
