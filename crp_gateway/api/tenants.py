"""Sign-up (``POST /v1/tenants``) and the caller's tenant profile."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from crp_gateway.api.deps import ClientAddressDep, PrincipalDep, RuntimeDep
from crp_gateway.services import tenants

router = APIRouter(prefix="/v1/tenants", tags=["tenants"])

TenantName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
]


class SignUpRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: TenantName
    email: EmailStr


class SignUpResponse(BaseModel):
    tenant_id: str
    api_key: str = Field(description="Admin gateway key; shown only this once.")
    plan: str


class TenantProfile(BaseModel):
    tenant_id: str
    name: str
    email: str
    plan: str
    created_at: datetime


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_tenant(
    body: SignUpRequest, runtime: RuntimeDep, client: ClientAddressDep
) -> SignUpResponse:
    """Create a tenant and return its first admin key."""
    result = await tenants.sign_up(
        runtime, name=body.name, email=str(body.email), client_address=client
    )
    return SignUpResponse(
        tenant_id=result.tenant.id, api_key=result.key.token, plan=result.tenant.plan
    )


@router.get("/me")
async def me(principal: PrincipalDep, runtime: RuntimeDep) -> TenantProfile:
    """The calling key's tenant."""
    tenant = await tenants.get_tenant(runtime, principal.tenant_id)
    return TenantProfile(
        tenant_id=tenant.id,
        name=tenant.name,
        email=tenant.email,
        plan=tenant.plan,
        created_at=tenant.created_at,
    )
