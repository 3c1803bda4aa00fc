"""Re-wrapping every sealed row under the current ``SECRET_KEY``."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crp_gateway.providers.credentials import credential_context
from crp_gateway.services.system_keys import system_context
from crp_gateway.store.database import transaction
from crp_gateway.store.models import ProviderCredential, SystemKey, TenantKey
from crp_gateway.store.repositories import VaultRows
from crp_gateway.vault import Context, Envelope, Vault, VaultError


@dataclass
class RotationReport:
    rewrapped: int = 0
    already_current: int = 0
    unreadable: list[str] = field(default_factory=list)


def tenant_key_context(row: TenantKey) -> Context:
    """The seal context of every tenant key: its tenant, purpose and version
    (``audit-master``, ``report-signing``, ...)."""
    return Context(owner=row.tenant_id, name=row.purpose, version=row.version)


def _rewrap_row(
    vault: Vault,
    row: ProviderCredential | SystemKey | TenantKey,
    context: Context,
    report: RotationReport,
    label: str,
) -> None:
    if row.kek_id == vault.current_kek_id:
        report.already_current += 1
        return
    try:
        envelope = vault.rewrap(
            Envelope(row.ciphertext, row.wrapped_key, row.kek_id), context
        )
    except VaultError:
        report.unreadable.append(label)
        return
    row.wrapped_key = envelope.wrapped_key
    row.kek_id = envelope.kek_id
    report.rewrapped += 1


async def rotate_secret(
    sessions: async_sessionmaker[AsyncSession], vault: Vault
) -> RotationReport:
    """Move every data key to the current KEK in one transaction.

    Rows that open under neither the current nor the previous secret are left as
    they are and named in the report (by id, never by content).
    """
    report = RotationReport()
    async with transaction(sessions) as session:
        rows = VaultRows(session)
        for key in await rows.system_keys():
            _rewrap_row(
                vault, key, system_context(key.purpose), report, f"system:{key.purpose}"
            )
        for tenant_key in await rows.tenant_keys():
            _rewrap_row(
                vault,
                tenant_key,
                tenant_key_context(tenant_key),
                report,
                f"tenant-key:{tenant_key.tenant_id}:{tenant_key.purpose}",
            )
        for cred in await rows.provider_credentials():
            context = credential_context(cred)
            _rewrap_row(vault, cred, context, report, f"provider:{cred.id}")
    return report
