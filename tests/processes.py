"""Gateways in child processes (``crp-gateway serve``), for tests that need a
real process: killed mid-flight, or two replicas side by side."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.fakes.upstream import FakeUpstream
from tests.support import random_address

SECRET_KEY = "process-test-secret-" + "k" * 32


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def gateway_environment(
    database_url: str,
    data_dir: Path,
    port: int,
    *,
    redis_url: str | None = None,
    redis_prefix: str | None = None,
) -> dict[str, str]:
    """A child gateway's environment: the leg's database (and Redis, when
    given, under the leg's key prefix), a fixed secret, quiet logs."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SECRET_KEY", "DATABASE_URL", "CRP_", "REDIS_URL"))
    }
    env = inherited | {
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": database_url,
        "CRP_DATA_DIR": str(data_dir),
        "CRP_GATEWAY_URL": f"http://127.0.0.1:{port}",
        "CRP_MIGRATE_ON_START": "false",
        "LOG_LEVEL": "warning",
    }
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
        env["CRP_REDIS_PREFIX"] = redis_prefix or "crp"
    return env


def gateway_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crp_gateway", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


class GatewayProcess:
    """``crp-gateway serve`` in a child process, on loopback."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "crp_gateway", "serve"),
                *("--host", "127.0.0.1", "--port", str(port)),
            ],
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"the gateway did not start:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL: no lifespan shutdown, no flush, no atexit."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)

    def output(self) -> str:
        self._log_file.flush()
        return self.log.read_text(errors="replace")

    def close(self) -> None:
        self.kill()
        self.process.wait(timeout=30)
        self._log_file.close()


def sign_up_and_wire(gateway: GatewayProcess, fake: FakeUpstream) -> tuple[str, str]:
    """A tenant whose custom provider is the fake: (tenant id, api key)."""
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        signed_up = client.post(
            "/v1/tenants",
            json={"name": "durable", "email": "durable@example.com"},
            headers={"X-Forwarded-For": random_address()},
        )
        assert signed_up.status_code == 201, signed_up.text
        tenant = signed_up.json()
        provider = client.post(
            "/v1/providers/custom",
            json={
                "name": "local",
                "api_key": "sk-local-durability",
                "default_model": "llama3.1",
                "base_url": fake.openai_base_url,
            },
            headers={"Authorization": f"Bearer {tenant['api_key']}"},
        )
        assert provider.status_code in {200, 201}, provider.text
    return tenant["tenant_id"], tenant["api_key"]
