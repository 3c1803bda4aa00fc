"""A tenant's provider as the data path sees it, and the HTTP clients to reach it."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from crp_gateway import __version__
from crp_gateway.providers.kinds import ProviderKind

USER_AGENT = f"crp-gateway/{__version__}"


@dataclass(frozen=True, slots=True)
class Upstream:
    """One registered provider with its opened key (``None`` if unreadable).

    ``repr`` never shows the key.
    """

    kind: ProviderKind
    name: str
    base_url: str
    default_model: str
    organization: str | None
    key_version: int
    api_key: str | None

    def __repr__(self) -> str:
        return f"Upstream(kind={self.kind.value!r}, name={self.name!r})"

    @property
    def speaks_openai(self) -> bool:
        return self.kind is not ProviderKind.ANTHROPIC


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float
    read: float
    stream_idle: float

    def for_request(self, *, stream: bool) -> httpx.Timeout:
        read = self.stream_idle if stream else self.read
        return httpx.Timeout(connect=self.connect, read=read, write=30.0, pool=10.0)


class UpstreamClients:
    """One pooled ``httpx.AsyncClient`` per upstream origin, reused by every call.

    The transport retries a failed *connect* once (nothing was sent yet); it never
    retries a request that reached the provider.
    """

    def __init__(self, timeouts: Timeouts, *, max_origins: int = 512) -> None:
        self.timeouts = timeouts
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._max_origins = max_origins

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(
                retries=1,
                limits=httpx.Limits(
                    max_connections=256,
                    max_keepalive_connections=64,
                    keepalive_expiry=30,
                ),
            ),
            timeout=self.timeouts.for_request(stream=False),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
        )

    def for_url(self, url: str) -> httpx.AsyncClient:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        client = self._clients.get(origin)
        if client is None:
            if len(self._clients) >= self._max_origins:
                origin = "*"  # beyond the cap, the rest share one pool
                client = self._clients.get(origin)
            if client is None:
                client = self._clients[origin] = self._new_client()
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
