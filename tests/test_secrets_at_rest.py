"""What is stored: no plaintext key in a database dump, contexts bound, rotation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, update

from crp_gateway.store.database import create_engine
from crp_gateway.store.models import ProviderCredential
from tests.conftest import StartGateway
from tests.support import (
    Backend,
    GatewayServer,
    LogCapture,
    provider_key,
    run,
    sign_up,
)


def _database_dump(backend: Backend) -> bytes:
    if backend.database_url is None:
        data = Path(backend.data_dir)
        return b"".join(path.read_bytes() for path in sorted(data.glob("gateway.db*")))
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        pytest.skip("pg_dump is not installed")
    plain = backend.database_url.replace("postgresql+asyncpg://", "postgresql://")
    return subprocess.run(
        [pg_dump, "--data-only", "--inserts", plain],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout


def test_a_database_dump_holds_no_key_plaintext(
    backend: Backend, gateway: GatewayServer
) -> None:
    tenant = sign_up(gateway)
    secrets = [provider_key(), provider_key("sk-ant-"), provider_key("local-")]
    with gateway.client(tenant.api_key) as client:
        client.post(
            "/v1/providers/openai", json={"api_key": secrets[0], "default_model": "m"}
        )
        client.post(
            "/v1/providers/anthropic",
            json={"api_key": secrets[1], "default_model": "m"},
        )
        client.post(
            "/v1/providers/custom",
            json={
                "name": "vllm",
                "base_url": "http://h/v1",
                "api_key": secrets[2],
                "default_model": "m",
            },
        )
        created = client.post("/v1/keys", json={"name": "dump"}).json()["api_key"]
    dump = _database_dump(backend)
    assert tenant.tenant_id.encode() in dump  # the dump is real and has our rows
    for secret in secrets:
        assert secret.encode() not in dump
        assert secret[8:-4].encode() not in dump  # not even the middle of it
    for gateway_key in (tenant.api_key, created):
        assert gateway_key.encode() not in dump
        assert gateway_key.rsplit("_", 1)[1].encode() not in dump  # the secret part
    assert gateway.settings.secret_key_value().encode() not in dump


async def _copy_sealed_key(url: str, source_tenant: str, target_tenant: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            source = (
                await connection.execute(
                    select(
                        ProviderCredential.ciphertext,
                        ProviderCredential.wrapped_key,
                        ProviderCredential.kek_id,
                    ).where(
                        ProviderCredential.tenant_id == source_tenant,
                        ProviderCredential.name == "openai",
                    )
                )
            ).one()
            await connection.execute(
                update(ProviderCredential)
                .where(
                    ProviderCredential.tenant_id == target_tenant,
                    ProviderCredential.name == "openai",
                )
                .values(
                    ciphertext=source.ciphertext,
                    wrapped_key=source.wrapped_key,
                    kek_id=source.kek_id,
                )
            )
    finally:
        await engine.dispose()


def test_a_ciphertext_copied_to_another_tenant_is_misconfigured_not_a_500(
    gateway: GatewayServer,
) -> None:
    owner, thief = sign_up(gateway), sign_up(gateway)
    for tenant in (owner, thief):
        with gateway.client(tenant.api_key) as client:
            client.post(
                "/v1/providers/openai",
                json={"api_key": provider_key(), "default_model": "m"},
            )
    run(_copy_sealed_key(gateway.settings.store_url, owner.tenant_id, thief.tenant_id))
    with gateway.client(thief.api_key) as client:
        shown = client.get("/v1/providers/openai")
        listed = client.get("/v1/providers")
    with gateway.client(owner.api_key) as client:
        untouched = client.get("/v1/providers/openai")
    assert shown.status_code == 200
    assert shown.json()["status"] == "misconfigured"
    assert listed.json()["data"][0]["status"] == "misconfigured"
    assert untouched.json()["status"] == "ok"


def _cli(backend: Backend, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "SECRET_KEY_PREVIOUS", "DATABASE_URL"}
    }
    environment.update(CRP_DATA_DIR=backend.data_dir, **env)
    if backend.database_url:
        environment["DATABASE_URL"] = backend.database_url
    return subprocess.run(
        [sys.executable, "-m", "crp_gateway", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def test_rotate_secret_keeps_every_key_readable_under_the_new_secret(
    fresh_backend: Backend, start_gateway: StartGateway
) -> None:
    old, new = "old-secret-" + "o" * 32, "new-secret-" + "n" * 32
    secret = provider_key()
    with start_gateway(fresh_backend, secret_key=old) as server:
        tenant = sign_up(server)
        with server.client(tenant.api_key) as client:
            client.post(
                "/v1/providers/openai", json={"api_key": secret, "default_model": "m"}
            )
            client.post(
                "/v1/providers/custom",
                json={
                    "name": "ollama",
                    "base_url": "http://h/v1",
                    "api_key": "unused",
                    "default_model": "m",
                },
            )
            halted = client.post(  # audited: creates the tenant's audit master key
                "/v1/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
                headers={"CRP-Safety-Policy": "default-src 'none'"},
            )
    assert halted.status_code == 451

    refused = _cli(fresh_backend, "rotate-secret", SECRET_KEY=new)
    assert refused.returncode == 2
    assert "SECRET_KEY_PREVIOUS" in refused.stderr

    rotated = _cli(
        fresh_backend, "rotate-secret", SECRET_KEY=new, SECRET_KEY_PREVIOUS=old
    )
    assert rotated.returncode == 0, rotated.stderr
    # the system key, the tenant's audit key and two provider keys
    assert "re-wrapped 4, already current 0, unreadable 0" in rotated.stdout
    again = _cli(
        fresh_backend, "rotate-secret", SECRET_KEY=new, SECRET_KEY_PREVIOUS=old
    )
    assert "re-wrapped 0, already current 4" in again.stdout
    for output in (rotated.stdout + rotated.stderr, again.stdout + again.stderr):
        assert old not in output
        assert new not in output
        assert secret not in output

    with start_gateway(fresh_backend, secret_key=new) as server:
        with server.client(tenant.api_key) as client:  # the gateway key survives too
            providers = client.get("/v1/providers")
            audited = client.post(  # and the audit key opens: a 451, not a 500
                "/v1/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
                headers={"CRP-Safety-Policy": "default-src 'none'"},
            )
    assert audited.status_code == 451
    assert providers.status_code == 200
    assert {p["status"] for p in providers.json()["data"]} == {"ok"}


def test_a_changed_secret_without_rotation_stops_start_up_clearly(
    fresh_backend: Backend, start_gateway: StartGateway
) -> None:
    with start_gateway(fresh_backend, secret_key="first-secret-" + "f" * 32):
        pass
    with LogCapture(json=False) as logs, pytest.raises(RuntimeError, match="did not"):
        start_gateway(fresh_backend, secret_key="other-secret-" + "z" * 32).start()
    assert "set SECRET_KEY_PREVIOUS to the old value" in logs.text
