"""Each tenant's providers (keys opened), policy settings and registered AI
systems, cached for a second.

The data path asks for a tenant's providers on every call; reading and
decrypting them each time would cost a query and an AES-GCM open per request.
Entries live ``ttl`` seconds (one by default), so a rotation or deletion on any
replica is seen everywhere within that time, and at once on the replica that made
it (:meth:`ProviderDirectory.forget`). Plaintext keys exist only in this memory.

:meth:`ProviderDirectory.system_of` gives the system a calling key is bound to
(its EU AI Act class and default policy, 016§5) and logs ``crp.system_unregistered``
once per key and process for a key bound to none (002§12.5).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crp_gateway.auth.authenticator import Principal
from crp_gateway.errors import ProviderMisconfigured
from crp_gateway.governance.eu_ai_act import SystemFacts
from crp_gateway.governance.headers import EuAiActClass
from crp_gateway.logging import get_logger
from crp_gateway.providers.credentials import open_api_key
from crp_gateway.providers.kinds import ProviderKind
from crp_gateway.providers.upstream import Upstream
from crp_gateway.store.models import AiSystem, ProviderCredential
from crp_gateway.store.repositories import ProviderRepository, TenantRepository
from crp_gateway.store.systems import SystemRepository
from crp_gateway.vault import Vault

log = get_logger("crp_gateway.providers")

_MAX_TENANTS = 10_000
_MAX_WARNED_KEYS = 100_000


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


def _facts(row: AiSystem) -> SystemFacts:
    return SystemFacts(
        system_id=row.id,
        eu_ai_act=EuAiActClass(row.eu_ai_act),
        default_safety_policy=row.default_safety_policy,
    )


@dataclass(frozen=True, slots=True)
class TenantContext:
    """What the data path needs of a tenant on every call."""

    upstreams: tuple[Upstream, ...]
    plan: str
    safety_policy: str | None
    systems: Mapping[str, SystemFacts] = field(
        default_factory=lambda: MappingProxyType({})
    )


class ProviderDirectory:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], vault: Vault, *, ttl: float
    ) -> None:
        self._sessions = sessions
        self._vault = vault
        self._ttl = ttl
        self._cache: dict[str, tuple[float, TenantContext]] = {}
        self._warned_unregistered: set[str] = set()

    async def context(self, tenant_id: str) -> TenantContext:
        now = time.monotonic()
        cached = self._cache.get(tenant_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self._sessions() as session:
            rows = await ProviderRepository(session, tenant_id).list()
            tenant = await TenantRepository(session).get(tenant_id)
            systems = await SystemRepository(session, tenant_id).list()
        context = TenantContext(
            upstreams=tuple(_upstream(self._vault, row) for row in rows),
            plan=tenant.plan if tenant else "free",
            safety_policy=tenant.safety_policy if tenant else None,
            systems=MappingProxyType({row.id: _facts(row) for row in systems}),
        )
        if len(self._cache) >= _MAX_TENANTS:
            self._cache.clear()
        self._cache[tenant_id] = (now + self._ttl, context)
        return context

    async def for_tenant(self, tenant_id: str) -> tuple[Upstream, ...]:
        return (await self.context(tenant_id)).upstreams

    def forget(self, tenant_id: str) -> None:
        self._cache.pop(tenant_id, None)

    def system_of(
        self, context: TenantContext, principal: Principal
    ) -> SystemFacts | None:
        """The registered system of the calling key, ``None`` if unregistered."""
        if principal.system_id is not None:
            facts = context.systems.get(principal.system_id)
            if facts is not None:
                return facts
        if principal.key_id not in self._warned_unregistered:
            if len(self._warned_unregistered) >= _MAX_WARNED_KEYS:
                self._warned_unregistered.clear()
            self._warned_unregistered.add(principal.key_id)
            log.warning(
                "crp.system_unregistered",
                tenant_id=principal.tenant_id,
                key_id=principal.key_id,
                eu_ai_act=EuAiActClass.UNKNOWN.value,
                hint="bind the key to an AI system: POST /v1/systems, then "
                "POST /v1/keys with system_id",
            )
        return None
