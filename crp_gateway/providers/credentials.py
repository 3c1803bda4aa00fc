"""Opening a stored provider credential: its vault context and envelope.

Below both the management services and the data path's provider directory, so
neither has to import the other.
"""

from __future__ import annotations

from crp_gateway.errors import ProviderMisconfigured
from crp_gateway.logging import get_logger
from crp_gateway.store.models import ProviderCredential
from crp_gateway.vault import Context, Envelope, Vault, VaultError

log = get_logger("crp_gateway.providers")


def credential_context(row: ProviderCredential) -> Context:
    return Context(owner=row.tenant_id, name=row.name, version=row.key_version)


def _envelope(row: ProviderCredential) -> Envelope:
    return Envelope(row.ciphertext, row.wrapped_key, row.kek_id)


def unreadable(name: str, kind: str) -> ProviderMisconfigured:
    """The error for a stored key this gateway cannot decrypt (424)."""
    return ProviderMisconfigured(
        f"The stored API key of provider {name!r} cannot be decrypted by this "
        f"gateway. Register it again with POST /v1/providers/{kind}."
    )


def open_api_key(vault: Vault, row: ProviderCredential) -> str:
    """The plaintext key, for the provider call only; never log or return it."""
    try:
        return vault.open(_envelope(row), credential_context(row)).decode()
    except VaultError:
        log.warning(
            "provider.credential_unreadable",
            tenant_id=row.tenant_id,
            provider=row.name,
            kek_id=row.kek_id,
        )
        raise unreadable(row.name, row.kind) from None
