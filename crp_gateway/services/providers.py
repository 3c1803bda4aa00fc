"""Tenants' provider credentials: register (or rotate), list, show, delete, open.

The API key is sealed by the vault the moment it arrives and is only opened to
call the provider; responses carry a hint (``sk-…abcd``), never the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from crp_gateway.errors import NotFound, ProviderMisconfigured
from crp_gateway.ids import new_id
from crp_gateway.logging import get_logger
from crp_gateway.providers.credentials import credential_context, open_api_key
from crp_gateway.providers.kinds import ProviderKind
from crp_gateway.store.models import ProviderCredential
from crp_gateway.store.models.base import utcnow
from crp_gateway.store.repositories import ProviderRepository
from crp_gateway.vault import Vault

if TYPE_CHECKING:  # the runtime holds the provider directory, which uses this module
    from crp_gateway.runtime import Runtime

log = get_logger("crp_gateway.providers")

_HINT_MIN_KEY_LENGTH = 12


class CredentialStatus(StrEnum):
    OK = "ok"
    MISCONFIGURED = "misconfigured"


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """What a tenant registers; ``api_key`` is plaintext only until sealed."""

    kind: ProviderKind
    name: str
    api_key: str
    default_model: str
    base_url: str
    organization: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderView:
    id: str
    kind: ProviderKind
    name: str
    base_url: str
    default_model: str
    organization: str | None
    key_hint: str
    status: CredentialStatus
    created_at: datetime
    updated_at: datetime


def key_hint(api_key: str) -> str:
    """``sk-…abcd``: a short leading segment and the last four characters.

    Keys shorter than twelve characters (``unused`` for a local Ollama) show no
    characters at all, since four of six would reveal most of the key.
    """
    if len(api_key) < _HINT_MIN_KEY_LENGTH:
        return "…"
    dash = api_key.find("-")
    prefix = api_key[: dash + 1] if 0 < dash < 8 else ""
    return f"{prefix}…{api_key[-4:]}"


def _status(vault: Vault, row: ProviderCredential) -> CredentialStatus:
    try:
        open_api_key(vault, row)
    except ProviderMisconfigured:
        return CredentialStatus.MISCONFIGURED
    return CredentialStatus.OK


def _view(vault: Vault, row: ProviderCredential) -> ProviderView:
    return ProviderView(
        id=row.id,
        kind=ProviderKind(row.kind),
        name=row.name,
        base_url=row.base_url,
        default_model=row.default_model,
        organization=row.organization,
        key_hint=row.key_hint,
        status=_status(vault, row),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _seal_into(vault: Vault, row: ProviderCredential, api_key: str) -> None:
    envelope = vault.seal(api_key.encode(), credential_context(row))
    row.ciphertext = envelope.ciphertext
    row.wrapped_key = envelope.wrapped_key
    row.kek_id = envelope.kek_id
    row.key_hint = key_hint(api_key)


async def register(
    runtime: Runtime, session: AsyncSession, tenant_id: str, spec: ProviderSpec
) -> tuple[ProviderView, bool]:
    """Store ``spec``; posting again for the same name rotates the key.

    Returns the stored provider and whether it was created (not rotated).
    """
    providers = ProviderRepository(session, tenant_id)
    row = await providers.get(spec.name)
    now = utcnow()
    created = row is None
    if row is None:
        row = ProviderCredential(
            id=new_id("prv"),
            tenant_id=tenant_id,
            name=spec.name,
            key_version=0,
            created_at=now,
        )
        providers.add(row)
    row.kind = spec.kind.value
    row.base_url = spec.base_url
    row.default_model = spec.default_model
    row.organization = spec.organization
    row.key_version += 1
    row.updated_at = now
    _seal_into(runtime.vault, row, spec.api_key)
    await session.flush()
    runtime.providers.forget(tenant_id)
    log.info(
        "provider.registered" if created else "provider.rotated",
        tenant_id=tenant_id,
        provider=spec.name,
        kind=spec.kind.value,
        key_version=row.key_version,
    )
    return _view(runtime.vault, row), created


async def list_providers(
    runtime: Runtime, session: AsyncSession, tenant_id: str
) -> Sequence[ProviderView]:
    rows = await ProviderRepository(session, tenant_id).list()
    return [_view(runtime.vault, row) for row in rows]


def _not_found() -> NotFound:
    return NotFound("No provider with this name.", code="provider_not_found")


async def get_provider(
    runtime: Runtime, session: AsyncSession, tenant_id: str, name: str
) -> ProviderView:
    row = await ProviderRepository(session, tenant_id).get(name)
    if row is None:
        raise _not_found()
    return _view(runtime.vault, row)


async def delete_provider(
    runtime: Runtime, session: AsyncSession, tenant_id: str, name: str
) -> None:
    if not await ProviderRepository(session, tenant_id).delete(name):
        raise _not_found()
    runtime.providers.forget(tenant_id)
    log.info("provider.deleted", tenant_id=tenant_id, provider=name)
