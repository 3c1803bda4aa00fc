"""Every call leaves a chained audit record, halted calls included (G19)."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import update

from crp_gateway.audit.chain import (
    ChainStatus,
    EventRecord,
    WindowRecord,
    verify_events,
    verify_windows,
)
from crp_gateway.audit.keys import session_hmac_key
from crp_gateway.audit.master_keys import TenantKeys
from crp_gateway.runtime import build_vault
from crp_gateway.store.database import create_engine, create_sessionmaker
from crp_gateway.store.models import AuditWindow
from crp_gateway.store.repositories import AuditRepository
from tests.fakes.upstream import FakeUpstream
from tests.proxy.conftest import WiredTenant
from tests.support import GatewayServer, run

HELLO = [{"role": "user", "content": "hello there"}]
SESSION = re.compile(r"crp_sess_[A-Za-z0-9]{16,32}")
HMAC = re.compile(r"sha256:[0-9a-f]{64}")
TRAIL = re.compile(r"crp_trail_[A-Za-z0-9]{16,32}")


def _chat(gateway: GatewayServer, key: str, **headers: str) -> Any:
    with gateway.client(key) as client:
        return client.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o", "messages": HELLO},
            headers=headers,
        )


async def _verify(
    gateway: GatewayServer, tenant_id: str, session_id: str
) -> tuple[Any, Any]:
    engine = create_engine(gateway.settings.store_url)
    try:
        sessions = create_sessionmaker(engine)
        master = await TenantKeys(sessions, build_vault(gateway.settings)).master(
            tenant_id
        )
        async with sessions() as session:
            audit = AuditRepository(session, tenant_id)
            windows = [
                WindowRecord(
                    **{f: getattr(w, f) for f in WindowRecord.__dataclass_fields__}
                )
                for w in await audit.windows(session_id)
            ]
            events = [
                EventRecord(
                    **{f: getattr(e, f) for f in EventRecord.__dataclass_fields__}
                )
                for e in await audit.events(session_id)
            ]
        key = session_hmac_key(master, session_id)
        return verify_windows(windows, key), verify_events(events, key)
    finally:
        await engine.dispose()


async def _tamper(gateway: GatewayServer, session_id: str) -> None:
    engine = create_engine(gateway.settings.store_url)
    try:
        async with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                from sqlalchemy import text

                await connection.execute(text("SET LOCAL crp.audit_retention = 'on'"))
            await connection.execute(
                update(AuditWindow)
                .where(AuditWindow.session_id == session_id)
                .values(content_hash="sha256:" + "0" * 64)
            )
    finally:
        await engine.dispose()


def test_an_answer_names_its_session_chain_and_trail(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    first, second = _chat(gateway, wired.api_key), _chat(gateway, wired.api_key)
    for response in (first, second):
        assert response.status_code == 200
        assert SESSION.fullmatch(response.headers["crp-context-session-id"])
        assert HMAC.fullmatch(response.headers["crp-provenance-hmac"])
        assert HMAC.fullmatch(response.headers["crp-provenance-window-hmac"])
        assert response.headers["crp-provenance-chain-integrity"] == "UNVERIFIED"
        assert response.headers["crp-context-window"] == "1/3"  # free plan: depth 3
        assert TRAIL.fullmatch(response.headers["crp-compliance-audit-trail-id"])
    for name in ("crp-provenance-hmac", "crp-compliance-audit-trail-id"):
        assert first.headers[name] != second.headers[name]


def test_the_trail_uri_serves_the_chained_record_and_it_verifies(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    response = _chat(gateway, wired.api_key)
    uri = response.headers["crp-compliance-audit-trail-uri"]
    path = uri.split("://", 1)[1].split("/", 1)[1]
    with gateway.client(wired.api_key) as client:
        trail = client.get(f"/{path}").json()
    assert trail["window"]["hmac"] == response.headers["crp-provenance-hmac"]
    assert [e["event_type"] for e in trail["events"]] == [
        "SESSION_CREATED",
        "DISPATCH_COMPLETED",
    ]
    session_id = response.headers["crp-context-session-id"]
    windows, events = run(_verify(gateway, wired.tenant.tenant_id, session_id))
    assert windows.status is ChainStatus.VALID
    assert events.status is ChainStatus.VALID
    run(_tamper(gateway, session_id))
    windows, _ = run(_verify(gateway, wired.tenant.tenant_id, session_id))
    assert windows.status is ChainStatus.BROKEN
    assert windows.index == 0


def test_a_halt_is_audited_and_names_its_trail(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    response = _chat(
        gateway, wired.api_key, **{"CRP-Safety-Policy": "default-src 'none'"}
    )
    assert response.status_code == 451
    body = response.json()
    assert body["session_id"] == response.headers["crp-context-session-id"]
    assert body["audit_trail_uri"] == response.headers["crp-compliance-audit-trail-uri"]
    assert HMAC.fullmatch(response.headers["crp-provenance-hmac"])
    path = body["audit_trail_uri"].split("://", 1)[1].split("/", 1)[1]
    with gateway.client(wired.api_key) as client:
        trail = client.get(f"/{path}").json()
    assert trail["events"][-1]["event_type"] == "SAFETY_HALT"
    assert (
        json.loads(trail["events"][-1]["data"])["crp_halt_reason"]
        == body["crp_halt_reason"]
    )
    assert upstream.requests == []


def test_trails_are_invisible_to_other_tenants(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    from tests.support import sign_up

    other = sign_up(gateway)
    trail_id = _chat(gateway, wired.api_key).headers["crp-compliance-audit-trail-id"]
    with gateway.client(other.api_key) as client:
        assert client.get(f"/crp/v3/trail/{trail_id}").status_code == 404


def _verify_api(gateway: GatewayServer, key: str, session_id: str) -> Any:
    with gateway.client(key) as client:
        return client.get("/v1/audit/verify", params={"session_id": session_id})


async def _delete_window(gateway: GatewayServer, session_id: str) -> None:
    from sqlalchemy import delete, text

    engine = create_engine(gateway.settings.store_url)
    try:
        async with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                await connection.execute(text("SET LOCAL crp.audit_retention = 'on'"))
            await connection.execute(
                delete(AuditWindow).where(AuditWindow.session_id == session_id)
            )
    finally:
        await engine.dispose()


def test_verify_reports_valid_then_broken_at_the_changed_window(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    session_id = _chat(gateway, wired.api_key).headers["crp-context-session-id"]
    valid = _verify_api(gateway, wired.api_key, session_id)
    assert valid.status_code == 200
    assert valid.json()["status"] == "VALID"
    run(_tamper(gateway, session_id))
    broken = _verify_api(gateway, wired.api_key, session_id).json()
    assert broken["status"] == "BROKEN"
    assert broken["windows"]["status"] == "BROKEN"
    assert broken["windows"]["index"] == 0


def test_deleting_the_last_window_is_caught_by_the_rolling_chain(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    _chat(gateway, wired.api_key)
    last = _chat(gateway, wired.api_key).headers["crp-context-session-id"]
    run(_delete_window(gateway, last))
    result = _verify_api(gateway, wired.api_key, last).json()
    assert result["status"] == "BROKEN"
    assert result["coverage"]["status"] == "BROKEN"


def test_verify_is_tenant_scoped(gateway: GatewayServer, wired: WiredTenant) -> None:
    from tests.support import sign_up

    session_id = _chat(gateway, wired.api_key).headers["crp-context-session-id"]
    other = sign_up(gateway)
    assert _verify_api(gateway, other.api_key, session_id).status_code == 404


def test_the_audit_verify_command_reads_the_database(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    import os
    import subprocess
    import sys

    session_id = _chat(gateway, wired.api_key).headers["crp-context-session-id"]
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CRP_", "DATABASE"))
    }
    env.update(
        SECRET_KEY=gateway.settings.secret_key_value(),
        CRP_DATA_DIR=str(gateway.settings.crp_data_dir),
    )
    if gateway.settings.database_url:
        env["DATABASE_URL"] = gateway.settings.database_url

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "crp_gateway",
                "audit",
                "verify",
                "--tenant",
                wired.tenant.tenant_id,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    valid = verify()
    assert valid.returncode == 0, valid.stderr
    assert f"{session_id} VALID" in valid.stdout
    run(_tamper(gateway, session_id))
    broken = verify()
    assert broken.returncode == 1
    assert f"{session_id} BROKEN (windows at index 0" in broken.stdout
