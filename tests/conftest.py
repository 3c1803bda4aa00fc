"""Fixtures: every gateway test runs on two legs.

* ``embedded``: SQLite in a temporary folder and in-process state, always.
* ``services``: PostgreSQL at ``TEST_DATABASE_URL`` (a fresh database per run) and
  Redis at ``TEST_REDIS_URL`` (a fresh key prefix per run). When either does not
  answer the leg is skipped with one line saying why, unless
  ``CRP_TEST_REQUIRE_SERVICES=1`` (as ``.ci/run`` sets), which makes it an error.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from tests.support import (
    REQUIRE_SERVICES,
    TEST_DATABASE_URL,
    TEST_REDIS_URL,
    Backend,
    GatewayServer,
    run,
    with_database,
)


def _plain_postgres_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _create_database(name: str) -> None:
    connection = await asyncpg.connect(
        _plain_postgres_url(TEST_DATABASE_URL), timeout=3
    )
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _drop_database(name: str) -> None:
    connection = await asyncpg.connect(
        _plain_postgres_url(TEST_DATABASE_URL), timeout=3
    )
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def _redis_answers() -> None:
    client = Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=3)
    try:
        await client.ping()
    finally:
        await client.aclose()


async def _delete_redis_prefix(prefix: str) -> None:
    client = Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=3)
    try:
        async for key in client.scan_iter(match=f"{prefix}:*", count=500):
            await client.delete(key)
    finally:
        await client.aclose()


def _services_unavailable() -> str | None:
    """Why the services leg cannot run, or ``None`` when both answer."""
    probe = f"crp_probe_{uuid.uuid4().hex[:12]}"
    try:
        run(_create_database(probe))
        run(_drop_database(probe))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"PostgreSQL at TEST_DATABASE_URL did not answer ({type(exc).__name__})"
    try:
        run(_redis_answers())
    except (OSError, ConnectionError, TimeoutError) as exc:
        return f"Redis at TEST_REDIS_URL did not answer ({type(exc).__name__})"
    return None


@pytest.fixture(scope="session")
def services_reason() -> str | None:
    return _services_unavailable()


def _require_services(reason: str | None) -> None:
    if reason is None:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"CRP_TEST_REQUIRE_SERVICES is set but {reason}")
    pytest.skip(f"services leg skipped: {reason}")


@contextmanager
def _make_backend(leg: str, tmp: Any, services_reason: str | None) -> Iterator[Backend]:
    if leg == "embedded":
        yield Backend(name=leg, data_dir=str(tmp))
        return
    _require_services(services_reason)
    database = f"crp_test_{uuid.uuid4().hex[:16]}"
    run(_create_database(database))
    backend = Backend(
        name=leg,
        data_dir=str(tmp),
        database_url=with_database(TEST_DATABASE_URL, database),
        redis_url=TEST_REDIS_URL,
    )
    try:
        yield backend
    finally:
        run(_drop_database(database))
        run(_delete_redis_prefix(backend.redis_prefix))


@pytest.fixture(scope="session", params=["embedded", "services"])
def backend(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    services_reason: str | None,
) -> Iterator[Backend]:
    """The leg's long-lived backend, shared by the leg's gateway."""
    tmp = tmp_path_factory.mktemp(f"leg-{request.param}")
    with _make_backend(request.param, tmp, services_reason) as made:
        yield made


@pytest.fixture
def fresh_backend(
    backend: Backend, tmp_path: Any, services_reason: str | None
) -> Iterator[Backend]:
    """An empty backend of the same leg, for tests that need a virgin schema."""
    with _make_backend(backend.name, tmp_path, services_reason) as made:
        yield made


@pytest.fixture(scope="session")
def gateway(backend: Backend) -> Iterator[GatewayServer]:
    """The leg's gateway, shared by every test that only needs a running one."""
    with GatewayServer(backend.settings(), redis_prefix=backend.redis_prefix) as server:
        yield server


StartGateway = Callable[..., AbstractContextManager[GatewayServer]]


@pytest.fixture
def start_gateway(backend: Backend) -> StartGateway:
    """Start another gateway on the leg's backend (a second replica, or one with
    different settings); use it as a context manager."""

    def start(
        target: Backend | None = None, **overrides: Any
    ) -> AbstractContextManager[GatewayServer]:
        chosen = target or backend
        return GatewayServer(
            chosen.settings(**overrides), redis_prefix=chosen.redis_prefix
        )

    return start
