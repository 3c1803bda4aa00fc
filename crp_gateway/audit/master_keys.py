"""Each tenant's audit master keys (§5.4): random, sealed by the vault, by version.

The HKDF keys of §5.4 (session HMAC, token signing, tenant chain) all come from
one of these (``audit.keys``). They are never shown or exported.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crp_gateway.audit.keys import tenant_chain_key
from crp_gateway.audit.session_token import KeyRing
from crp_gateway.store.database import transaction
from crp_gateway.store.models import TenantKey
from crp_gateway.store.repositories import TenantKeyRepository
from crp_gateway.vault import Context, Envelope, Vault

AUDIT_MASTER = "audit-master"
_CACHED_TENANTS = 10_000
#: Seconds a replica keeps a tenant's key ring before looking for a rotation.
RING_TTL = 60.0


def master_context(tenant_id: str, version: int) -> Context:
    return Context(owner=tenant_id, name=AUDIT_MASTER, version=version)


class TenantKeys:
    """Each tenant's audit master keys by version (§5.4), cached opened.

    Version 1 is created on first use. :meth:`rotate` adds the next version:
    new sessions and new tenant-chain links use it from then on, while every
    older version stays, since the records and tokens made under it are
    verified with it (each audit row names its ``key_version``). A replica
    learns of a rotation within :data:`RING_TTL` seconds, or at once when it
    meets a version it does not know.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], vault: Vault):
        self._sessions = sessions
        self._vault = vault
        self._cache: OrderedDict[str, tuple[float, KeyRing]] = OrderedDict()
        self._chain_keys: dict[tuple[str, int], bytes] = {}

    async def ring(self, tenant_id: str, *, version: int | None = None) -> KeyRing:
        """The tenant's keys; reloaded when stale or when ``version`` is unknown."""
        cached = self._cache.get(tenant_id)
        if cached is not None:
            loaded_at, ring = cached
            fresh = time.monotonic() - loaded_at < RING_TTL
            known = version is None or bool(ring.candidates(version))
            if fresh and known:
                return ring
        ring = await self._load(tenant_id)
        self._cache[tenant_id] = (time.monotonic(), ring)
        self._cache.move_to_end(tenant_id)
        if len(self._cache) > _CACHED_TENANTS:
            self._cache.popitem(last=False)
        return ring

    async def master(self, tenant_id: str, version: int | None = None) -> bytes:
        """The key of ``version`` (default: the current one)."""
        ring = await self.ring(tenant_id, version=version)
        keys = ring.candidates(ring.current if version is None else version)
        if not keys:
            raise LookupError(f"the tenant has no audit key version {version}")
        return keys[0]

    async def chain_key(self, tenant_id: str, version: int) -> bytes:
        """The tenant-chain key of ``version`` (derived once, then cached)."""
        cached = self._chain_keys.get((tenant_id, version))
        if cached is None:
            master = await self.master(tenant_id, version)
            cached = tenant_chain_key(master, tenant_id)
            if len(self._chain_keys) >= _CACHED_TENANTS:
                self._chain_keys.clear()
            self._chain_keys[tenant_id, version] = cached
        return cached

    async def rotate(self, tenant_id: str) -> int:
        """Add the next key version and make it current; return its number."""
        ring = await self._load(tenant_id)
        version = max(v for v, _ in ring.keys) + 1
        if not await self._create(tenant_id, version):
            raise RuntimeError("another rotation of this tenant's key ran at once")
        self._cache.pop(tenant_id, None)
        return version

    async def _load(self, tenant_id: str) -> KeyRing:
        rows = await self._rows(tenant_id)
        if not rows:
            await self._create(tenant_id, 1)  # False: another replica made it
            rows = await self._rows(tenant_id)
        if not rows:
            raise RuntimeError("the tenant's audit key vanished after creation")
        keys = tuple(
            (
                row.version,
                self._vault.open(
                    Envelope(row.ciphertext, row.wrapped_key, row.kek_id),
                    master_context(tenant_id, row.version),
                ),
            )
            for row in rows
        )
        return KeyRing(keys, max(version for version, _ in keys))

    async def _rows(self, tenant_id: str) -> Sequence[TenantKey]:
        async with self._sessions() as session:
            return await TenantKeyRepository(session, tenant_id).versions(AUDIT_MASTER)

    async def _create(self, tenant_id: str, version: int) -> bool:
        envelope = self._vault.seal(
            secrets.token_bytes(32), master_context(tenant_id, version)
        )
        try:
            async with transaction(self._sessions) as session:
                TenantKeyRepository(session, tenant_id).add(
                    TenantKey(
                        tenant_id=tenant_id,
                        purpose=AUDIT_MASTER,
                        version=version,
                        ciphertext=envelope.ciphertext,
                        wrapped_key=envelope.wrapped_key,
                        kek_id=envelope.kek_id,
                    )
                )
        except IntegrityError:
            return False  # another replica created this version first
        return True
