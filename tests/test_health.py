"""The health contract of the deployment guide: /health and /ready."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.conftest import StartGateway
from tests.support import Backend, GatewayServer, tcp_proxy


def test_health_checks_nothing(gateway: GatewayServer) -> None:
    with gateway.client() as client:
        response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_when_store_answers_and_schema_is_current(gateway: GatewayServer) -> None:
    with gateway.client() as client:
        response = client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    expected = {"store", "migrations"} | (
        {"redis"} if gateway.settings.redis_url else set()
    )
    assert set(body["checks"]) == expected


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(
        (
            parts.scheme,
            f"{netloc[0]}@{host}" if len(netloc) == 2 else host,
            parts.path,
            parts.query,
            "",
        )
    )


def test_ready_is_503_naming_the_store_when_the_database_is_unreachable(
    backend: Backend, start_gateway: StartGateway
) -> None:
    if not backend.is_services:
        pytest.skip("an embedded SQLite file cannot become unreachable")
    assert backend.database_url is not None
    target = urlsplit(backend.database_url)
    with tcp_proxy(target.hostname or "127.0.0.1", target.port or 5432) as proxy:
        proxied = Backend(
            name="proxied",
            data_dir=backend.data_dir,
            database_url=_through(backend.database_url, proxy.port),
            redis_url=backend.redis_url,
            redis_prefix=backend.redis_prefix,
        )
        with start_gateway(proxied) as server, server.client() as client:
            assert client.get("/ready").status_code == 200
            proxy.cut()
            response = client.get("/ready")
            health = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert "store" in body["failing"]
    assert body["checks"]["store"].startswith("error")
    assert body["checks"]["redis"] == "ok"
    assert health.status_code == 200


def test_ready_is_503_naming_redis_when_it_is_unreachable(
    backend: Backend, start_gateway: StartGateway
) -> None:
    if not backend.is_services:
        pytest.skip("the embedded default has no Redis")
    assert backend.redis_url is not None
    target = urlsplit(backend.redis_url)
    with tcp_proxy(target.hostname or "127.0.0.1", target.port or 6379) as proxy:
        with start_gateway(redis_url=f"redis://127.0.0.1:{proxy.port}/0") as server:
            with server.client() as client:
                assert client.get("/ready").status_code == 200
                proxy.cut()
                response = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["failing"] == ["redis"]
