"""Violation reports: the signing secret and recent deliveries, for tenant admins.

``GET /v1/reports/signing-secret`` shows the secret that signs the tenant's
reports (``X-CRP-Signature``; created on first read), ``POST
/v1/reports/signing-secret/rotate`` replaces it, and ``GET
/v1/reports/deliveries`` lists the latest outbox messages with their status and
the target's host only (a path or query string may carry the receiver's token).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from crp_gateway.api.deps import AdminDep, RuntimeDep, SessionDep
from crp_gateway.outbox.dispatcher import target_host
from crp_gateway.outbox.signing import SIGNATURE_HEADER, SigningSecret
from crp_gateway.store.models import OutboxMessage
from crp_gateway.store.outbox import OutboxRepository

router = APIRouter(prefix="/v1/reports", tags=["reports"])


class SigningSecretOut(BaseModel):
    object: Literal["report_signing_secret"] = "report_signing_secret"
    secret: str = Field(
        description="HMAC-SHA256 key (its UTF-8 bytes) of X-CRP-Signature."
    )
    version: int
    created_at: datetime
    header: str = SIGNATURE_HEADER
    signed_payload: str = "<t>.<raw body>"

    @classmethod
    def of(cls, secret: SigningSecret) -> SigningSecretOut:
        return cls(
            secret=secret.value, version=secret.version, created_at=secret.created_at
        )


class DeliveryOut(BaseModel):
    id: str
    object: Literal["report_delivery"] = "report_delivery"
    kind: str
    status: str
    attempts: int
    last_error: str | None
    target_host: str
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, row: OutboxMessage) -> DeliveryOut:
        return cls(
            id=row.id,
            kind=row.kind,
            status=row.status,
            attempts=row.attempts,
            last_error=row.last_error,
            target_host=target_host(row.target_url),
            created_at=row.created_at,
            next_attempt_at=row.next_attempt_at,
            delivered_at=row.delivered_at,
        )


class DeliveryList(BaseModel):
    object: Literal["list"] = "list"
    data: list[DeliveryOut]


def _no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"


@router.get("/signing-secret")
async def read_signing_secret(
    admin: AdminDep, runtime: RuntimeDep, response: Response
) -> SigningSecretOut:
    """The secret that signs this tenant's violation reports."""
    _no_store(response)
    return SigningSecretOut.of(await runtime.outbox.secrets.current(admin.tenant_id))


@router.post("/signing-secret/rotate")
async def rotate_signing_secret(
    admin: AdminDep, runtime: RuntimeDep, response: Response
) -> SigningSecretOut:
    """Replace the signing secret; every later delivery is signed with the new one."""
    _no_store(response)
    return SigningSecretOut.of(await runtime.outbox.secrets.rotate(admin.tenant_id))


@router.get("/deliveries")
async def list_deliveries(admin: AdminDep, session: SessionDep) -> DeliveryList:
    """The tenant's 100 latest report deliveries, newest first."""
    rows = await OutboxRepository(session, admin.tenant_id).recent(limit=100)
    return DeliveryList(data=[DeliveryOut.of(row) for row in rows])
