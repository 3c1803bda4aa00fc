"""Gateway-key authentication with a short cache and deferred last-used writes.

A verified key is cached for at most ``cache_seconds`` (one second by default)
under its public id *and* secret hash, so a revocation on any replica takes effect
everywhere within that time without a broadcast, and a wrong secret never hits a
cached entry. Last-used times are kept in memory and written in one batch every
``CRP_LAST_USED_FLUSH_SECONDS`` and at shutdown: no database write per request.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crp_gateway.auth.keys import Role, hash_secret, parse_key, secret_matches
from crp_gateway.errors import AuthenticationFailed
from crp_gateway.store.database import transaction
from crp_gateway.store.repositories import ApiKeyLookup

_CACHE_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the tenant, the key and what the key may do.

    ``system_id`` is the registered AI system the key is bound to, ``None`` for
    an unregistered caller (EU AI Act class UNKNOWN).
    """

    tenant_id: str
    key_id: str
    role: Role
    rpm_limit: int | None
    safety_policy: str | None = None
    system_id: str | None = None


class KeyAuthenticator:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        hash_key: bytes,
        *,
        cache_seconds: float,
    ) -> None:
        self._sessions = sessions
        self._hash_key = hash_key
        self._cache_seconds = cache_seconds
        self._cache: OrderedDict[tuple[str, str], tuple[Principal, float]] = (
            OrderedDict()
        )
        self._last_used: dict[str, datetime] = {}

    @property
    def hash_key(self) -> bytes:
        return self._hash_key

    async def authenticate(self, token: str) -> Principal:
        presented = parse_key(token)
        if presented is None:
            raise AuthenticationFailed("The API key is not a CRP Gateway key.")
        digest = hash_secret(self._hash_key, presented.secret)
        cache_key = (presented.public_id, digest)
        cached = self._cache.get(cache_key)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            principal = cached[0]
        else:
            principal = await self._verify(presented.public_id, presented.secret)
            self._remember(cache_key, principal, now)
        self._last_used[principal.key_id] = datetime.now(UTC)
        return principal

    async def _verify(self, public_id: str, secret: str) -> Principal:
        async with self._sessions() as session:
            row = await ApiKeyLookup(session).active_key(public_id)
        if row is None or not secret_matches(self._hash_key, secret, row.secret_hash):
            raise AuthenticationFailed("The API key is unknown or has been revoked.")
        return Principal(
            tenant_id=row.tenant_id,
            key_id=row.id,
            role=Role(row.role),
            rpm_limit=row.rpm_limit,
            safety_policy=row.safety_policy,
            system_id=row.system_id,
        )

    def _remember(
        self, cache_key: tuple[str, str], principal: Principal, now: float
    ) -> None:
        if self._cache_seconds <= 0:
            return
        self._cache[cache_key] = (principal, now + self._cache_seconds)
        self._cache.move_to_end(cache_key)
        while len(self._cache) > _CACHE_ENTRIES:
            self._cache.popitem(last=False)

    def forget(self, key_id: str) -> None:
        """Drop a revoked key from this replica's cache at once."""
        for cache_key in [k for k in self._cache if k[0] == key_id]:
            del self._cache[cache_key]

    def last_used(self, key_id: str) -> datetime | None:
        """This replica's not-yet-written last use of ``key_id``."""
        return self._last_used.get(key_id)

    async def flush_last_used(self) -> int:
        """Write pending last-used times in one transaction; return how many."""
        pending, self._last_used = self._last_used, {}
        if not pending:
            return 0
        try:
            async with transaction(self._sessions) as session:
                await ApiKeyLookup(session).record_last_used(pending.items())
        except BaseException:
            for key_id, at in pending.items():  # keep them for the next flush
                self._last_used.setdefault(key_id, at)
            raise
        return len(pending)
