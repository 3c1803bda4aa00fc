"""The gateway's own random keys, created once and sealed in the vault."""

from __future__ import annotations

import secrets

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crp_gateway.store.database import transaction
from crp_gateway.store.models import SystemKey
from crp_gateway.store.repositories import SystemKeyRepository
from crp_gateway.vault import Context, Envelope, Vault

GATEWAY_KEY_HASH = "gateway-key-hash"
SYSTEM_OWNER = "system"


def system_context(purpose: str) -> Context:
    return Context(owner=SYSTEM_OWNER, name=purpose, version=1)


def _open(vault: Vault, row: SystemKey) -> bytes:
    envelope = Envelope(row.ciphertext, row.wrapped_key, row.kek_id)
    return vault.open(envelope, system_context(row.purpose))


async def load_or_create(
    sessions: async_sessionmaker[AsyncSession], vault: Vault, purpose: str
) -> bytes:
    """The key for ``purpose``; the first replica to ask creates it."""
    async with sessions() as session:
        row = await SystemKeyRepository(session).get(purpose)
    if row is not None:
        return _open(vault, row)
    envelope = vault.seal(secrets.token_bytes(32), system_context(purpose))
    try:
        async with transaction(sessions) as session:
            SystemKeyRepository(session).add(
                SystemKey(
                    purpose=purpose,
                    ciphertext=envelope.ciphertext,
                    wrapped_key=envelope.wrapped_key,
                    kek_id=envelope.kek_id,
                )
            )
    except IntegrityError:
        pass  # another replica created it first; read theirs
    async with sessions() as session:
        row = await SystemKeyRepository(session).get(purpose)
    if row is None:
        raise RuntimeError(f"system key {purpose} vanished after creation")
    return _open(vault, row)
