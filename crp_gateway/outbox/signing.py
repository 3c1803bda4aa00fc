"""Each tenant's report signing secret, and the signature it makes.

A report carries ``X-CRP-Signature: t=<unix seconds>,v1=<hex>`` where ``hex`` is
HMAC-SHA256, keyed with the secret string's UTF-8 bytes, over ``<t>.`` followed
by the raw body (digest §6: the Stripe-style header the vendor uses). A receiver
recomputes it, compares in constant time, and refuses a ``t`` more than five
minutes away from its clock.

The secret is ``crp_whsec_`` + 256 random bits, one per tenant, created on first
use and kept in ``tenant_keys`` (purpose ``report-signing``) sealed by the
vault, its version bound into the seal. Tenant admins read it through
``GET /v1/reports/signing-secret`` and replace it through ``POST
/v1/reports/signing-secret/rotate``; there is no overlap: a delivery after the
rotation is signed with the new secret. It is never cached, so a rotation takes
effect on every replica at once.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crp_gateway.ids import random_token
from crp_gateway.store.database import transaction
from crp_gateway.store.models import TenantKey
from crp_gateway.store.models.base import utcnow
from crp_gateway.store.repositories import TenantKeyRepository
from crp_gateway.vault import Context, Envelope, Vault

REPORT_SIGNING = "report-signing"
SECRET_PREFIX = "crp_whsec_"  # noqa: S105 - a public prefix, not a secret
SIGNATURE_HEADER = "X-CRP-Signature"
_ROTATION_TRIES = 3


def signing_context(tenant_id: str, version: int) -> Context:
    return Context(owner=tenant_id, name=REPORT_SIGNING, version=version)


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-CRP-Signature`` value for ``body`` sent at ``timestamp``."""
    message = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass(frozen=True, slots=True)
class SigningSecret:
    value: str
    version: int
    created_at: datetime

    def __repr__(self) -> str:
        return f"SigningSecret(version={self.version})"


def _new_secret() -> str:
    return SECRET_PREFIX + random_token(32)


class SigningSecrets:
    """Tenants' report signing secrets, read from the store on every use."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], vault: Vault
    ) -> None:
        self._sessions = sessions
        self._vault = vault

    async def current(self, tenant_id: str) -> SigningSecret:
        """The tenant's secret; the first caller creates it."""
        row = await self._load(tenant_id)
        if row is None:
            await self._create(tenant_id)
            row = await self._load(tenant_id)
        if row is None:
            raise RuntimeError("the tenant's report signing secret vanished")
        return self._open(row)

    async def rotate(self, tenant_id: str) -> SigningSecret:
        """Replace the tenant's secret with a fresh one and return it."""
        for _ in range(_ROTATION_TRIES):
            row = await self._load(tenant_id)
            if row is None:
                return await self.current(tenant_id)
            secret = _new_secret()
            envelope = self._vault.seal(
                secret.encode(), signing_context(tenant_id, row.version + 1)
            )
            now = utcnow()
            async with transaction(self._sessions) as session:
                replaced = await TenantKeyRepository(session, tenant_id).replace(
                    REPORT_SIGNING,
                    row.version,
                    ciphertext=envelope.ciphertext,
                    wrapped_key=envelope.wrapped_key,
                    kek_id=envelope.kek_id,
                    at=now,
                )
            if replaced:
                return SigningSecret(secret, row.version + 1, now)
        raise RuntimeError("the report signing secret kept changing during rotation")

    def _open(self, row: TenantKey) -> SigningSecret:
        envelope = Envelope(row.ciphertext, row.wrapped_key, row.kek_id)
        plain = self._vault.open(envelope, signing_context(row.tenant_id, row.version))
        return SigningSecret(plain.decode(), row.version, row.created_at)

    async def _load(self, tenant_id: str) -> TenantKey | None:
        async with self._sessions() as session:
            return await TenantKeyRepository(session, tenant_id).get(REPORT_SIGNING)

    async def _create(self, tenant_id: str) -> None:
        envelope = self._vault.seal(
            _new_secret().encode(), signing_context(tenant_id, 1)
        )
        try:
            async with transaction(self._sessions) as session:
                TenantKeyRepository(session, tenant_id).add(
                    TenantKey(
                        tenant_id=tenant_id,
                        purpose=REPORT_SIGNING,
                        version=1,
                        ciphertext=envelope.ciphertext,
                        wrapped_key=envelope.wrapped_key,
                        kek_id=envelope.kek_id,
                        created_at=utcnow(),
                    )
                )
        except IntegrityError:
            pass  # another replica created it first
