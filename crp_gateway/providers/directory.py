"""Each tenant's providers (keys opened) and policy settings, cached for a second.

The data path asks for a tenant's providers on every call; reading and
decrypting them each time would cost a query and an AES-GCM open per request.
Entries live ``ttl`` seconds (one by default), so a rotation or deletion on any
replica is seen everywhere within that time, and at once on the replica that made
it (:meth:`ProviderDirectory.forget`). Plaintext keys exist only in this memory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crp_gateway.errors import ProviderMisconfigured
from crp_gateway.providers.credentials import open_api_key
from crp_gateway.providers.kinds import ProviderKind
from crp_gateway.providers.upstream import Upstream
from crp_gateway.store.models import ProviderCredential
from crp_gateway.store.repositories import ProviderRepository, TenantRepository
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


@dataclass(frozen=True, slots=True)
class TenantContext:
    """What the data path needs of a tenant on every call."""

    upstreams: tuple[Upstream, ...]
    plan: str
    safety_policy: str | None


class ProviderDirectory:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], vault: Vault, *, ttl: float
    ) -> None:
        self._sessions = sessions
        self._vault = vault
        self._ttl = ttl
        self._cache: dict[str, tuple[float, TenantContext]] = {}

    async def context(self, tenant_id: str) -> TenantContext:
        now = time.monotonic()
        cached = self._cache.get(tenant_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self._sessions() as session:
            rows = await ProviderRepository(session, tenant_id).list()
            tenant = await TenantRepository(session).get(tenant_id)
        context = TenantContext(
            upstreams=tuple(_upstream(self._vault, row) for row in rows),
            plan=tenant.plan if tenant else "free",
            safety_policy=tenant.safety_policy if tenant else None,
        )
        if len(self._cache) >= _MAX_TENANTS:
            self._cache.clear()
        self._cache[tenant_id] = (now + self._ttl, context)
        return context

    async def for_tenant(self, tenant_id: str) -> tuple[Upstream, ...]:
        return (await self.context(tenant_id)).upstreams

    def forget(self, tenant_id: str) -> None:
        self._cache.pop(tenant_id, None)
