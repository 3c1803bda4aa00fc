"""Helpers shared by the tests: a real gateway on loopback, backends, clients.

Each gateway under test is the real ASGI app served by a real Uvicorn server on
127.0.0.1 in a background thread, so requests cross real HTTP (chunked bodies,
CORS preflights, proxy headers and all).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import uvicorn

from crp_gateway.app import create_app
from crp_gateway.logging import build_formatter
from crp_gateway.settings import Settings

T = TypeVar("T")

TEST_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("CRP_TEST_REQUIRE_SERVICES", "") not in {"", "0"}

ALLOWED_ORIGIN = "https://app.example.com"


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a fresh event loop (tests are sync)."""
    return asyncio.run(coroutine)


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


@dataclass
class Backend:
    """Where a leg of the suite keeps its state."""

    name: str
    data_dir: str
    database_url: str | None = None
    redis_url: str | None = None
    redis_prefix: str = field(default_factory=lambda: f"crp-test-{uuid.uuid4().hex}")

    @property
    def is_services(self) -> bool:
        return self.database_url is not None

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "secret_key": "test-secret-key-" + "x" * 32,
            "database_url": self.database_url,
            "redis_url": self.redis_url,
            "crp_data_dir": self.data_dir,
            "allowed_origins": ALLOWED_ORIGIN,
            "log_level": "info",
            "_env_file": None,
        }
        values.update(overrides)
        return Settings(**values)


class LogCapture:
    """Everything the gateway logged, rendered exactly as it would be on stderr."""

    def __init__(self, *, json: bool) -> None:
        self.buffer = io.StringIO()
        self.handler = logging.StreamHandler(self.buffer)
        self.handler.setFormatter(build_formatter(json=json))

    def __enter__(self) -> LogCapture:
        logging.getLogger().addHandler(self.handler)
        return self

    def __exit__(self, *_exc: object) -> None:
        logging.getLogger().removeHandler(self.handler)

    @property
    def text(self) -> str:
        self.handler.flush()
        return self.buffer.getvalue()


class GatewayServer:
    """The gateway app under Uvicorn on an ephemeral loopback port."""

    def __init__(self, settings: Settings, *, redis_prefix: str = "crp") -> None:
        self.settings = settings
        app = create_app(settings, redis_prefix=redis_prefix)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            proxy_headers=True,
            forwarded_allow_ips="127.0.0.1",
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self.exit_code: int | str | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except SystemExit as exc:  # Uvicorn exits when the lifespan fails
            self.exit_code = exc.code

    def start(self) -> GatewayServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._socket.close()
                raise RuntimeError(
                    f"gateway did not start (exit {self.exit_code}); see the log"
                )
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def client(self, api_key: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        kwargs.setdefault("timeout", 30)
        return httpx.Client(base_url=self.url, headers=headers, **kwargs)


def random_address() -> str:
    """A client address to present through the trusted proxy header."""
    octets = (secrets.randbelow(256), secrets.randbelow(256), secrets.randbelow(254))
    return f"10.{octets[0]}.{octets[1]}.{octets[2] + 1}"


@dataclass(frozen=True)
class TenantHandle:
    tenant_id: str
    api_key: str
    email: str


def sign_up(server: GatewayServer, name: str = "my-team") -> TenantHandle:
    """A fresh tenant, signed up from a random client address."""
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    with server.client() as client:
        response = client.post(
            "/v1/tenants",
            json={"name": name, "email": email},
            headers={"X-Forwarded-For": random_address()},
        )
    assert response.status_code == 201, response.text
    body = response.json()
    return TenantHandle(body["tenant_id"], body["api_key"], email)


def provider_key(prefix: str = "sk-test-") -> str:
    """A unique provider-key-shaped secret that no log or dump may contain."""
    return prefix + secrets.token_urlsafe(24)


@contextlib.contextmanager
def tcp_proxy(target_host: str, target_port: int) -> Iterator[TcpProxy]:
    proxy = TcpProxy(target_host, target_port)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


class TcpProxy:
    """A loopback TCP forwarder that can be cut, to make a server unreachable."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._open = True
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _accept(self) -> None:
        while self._open:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._open:
                client.close()
                return
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, sink), daemon=True
                ).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        """Close every connection and refuse new ones."""
        self._open = False
        self._listener.close()
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self._connections.clear()

    def stop(self) -> None:
        if self._open:
            self.cut()
        self._thread.join(timeout=5)
