"""Each tenant's providers with their keys opened, cached for a second.

The data path asks for a tenant's providers on every call; reading and
decrypting them each time would cost a query and an AES-GCM open per request.
Entries live ``ttl`` seconds (one by default), so a rotation or deletion on any
replica is seen everywhere within that time, and at once on the replica that made
it (:meth:`ProviderDirectory.forget`). Plaintext keys exist only in this memory.
"""

from __future__ import annotations

import time

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crp_gateway.errors import ProviderMisconfigured
from crp_gateway.providers.kinds import ProviderKind
from crp_gateway.providers.upstream import Upstream
from crp_gateway.services.providers import open_api_key
from crp_gateway.store.models import ProviderCredential
from crp_gateway.store.repositories import ProviderRepository
from crp_gateway.vault import Vault

_MAX_TENANTS = 10_000


def _upstream(vault: Vault, row: ProviderCredential) -> Upstream:
    try:
        api_key: str | None = open_api_key(vault, row)
    except ProviderMisconfigured:
        api_key = None
    return Upstream(
        kind=ProviderKind(row.kind),
        name=row.name,
        base_url=row.base_url,
        default_model=row.default_model,
        organization=row.organization,
        key_version=row.key_version,
        api_key=api_key,
    )


class ProviderDirectory:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], vault: Vault, *, ttl: float
    ) -> None:
        self._sessions = sessions
        self._vault = vault
        self._ttl = ttl
        self._cache: dict[str, tuple[float, tuple[Upstream, ...]]] = {}

    async def for_tenant(self, tenant_id: str) -> tuple[Upstream, ...]:
        now = time.monotonic()
        cached = self._cache.get(tenant_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self._sessions() as session:
            rows = await ProviderRepository(session, tenant_id).list()
        upstreams = tuple(_upstream(self._vault, row) for row in rows)
        if len(self._cache) >= _MAX_TENANTS:
            self._cache.clear()
        self._cache[tenant_id] = (now + self._ttl, upstreams)
        return upstreams

    def forget(self, tenant_id: str) -> None:
        self._cache.pop(tenant_id, None)
