"""Fixtures for the data path: a fake provider on loopback and tenants wired to it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.support import GatewayServer, TenantHandle, provider_key, sign_up


@pytest.fixture(autouse=True)
def _close_sdk_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """SDK clients made during a test are closed at its end, so that no socket is
    left for the garbage collector to find (a ResourceWarning, an error here)."""
    made: list[openai.OpenAI | anthropic.Anthropic] = []
    for cls in (openai.OpenAI, anthropic.Anthropic):
        original = cls.__init__

        def init(self: Any, *args: Any, __original: Any = original, **kw: Any) -> None:
            __original(self, *args, **kw)
            made.append(self)

        monkeypatch.setattr(cls, "__init__", init)
    yield
    for client in made:
        client.close()


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def upstream(fake_upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    fake_upstream.reset()
    yield fake_upstream
    fake_upstream.reset()


@dataclass(frozen=True)
class WiredTenant:
    """A tenant with all three kinds of provider pointing at the fake."""

    tenant: TenantHandle
    openai_key: str
    anthropic_key: str
    custom_key: str

    @property
    def api_key(self) -> str:
        return self.tenant.api_key


def register(
    gateway: GatewayServer, api_key: str, path: str, body: dict[str, str]
) -> None:
    with gateway.client(api_key) as client:
        response = client.post(f"/v1/providers/{path}", json=body)
    assert response.status_code in {200, 201}, response.text


@pytest.fixture
def wired(gateway: GatewayServer, upstream: FakeUpstream) -> WiredTenant:
    tenant = sign_up(gateway)
    keys = {kind: provider_key(f"sk-{kind}-") for kind in ("openai", "ant", "local")}
    register(
        gateway,
        tenant.api_key,
        "openai",
        {
            "api_key": keys["openai"],
            "default_model": "gpt-4o",
            "base_url": upstream.openai_base_url,
        },
    )
    register(
        gateway,
        tenant.api_key,
        "anthropic",
        {
            "api_key": keys["ant"],
            "default_model": "claude-sonnet-4-5",
            "base_url": upstream.anthropic_base_url,
        },
    )
    register(
        gateway,
        tenant.api_key,
        "custom",
        {
            "name": "local",
            "api_key": keys["local"],
            "default_model": "llama3.1",
            "base_url": upstream.openai_base_url,
        },
    )
    return WiredTenant(tenant, keys["openai"], keys["ant"], keys["local"])
