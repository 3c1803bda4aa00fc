"""Sign-up (``POST /v1/tenants``) and the caller's tenant profile."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, status
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
)

from crp_gateway.api.deps import AdminDep, ClientAddressDep, PrincipalDep, RuntimeDep
from crp_gateway.governance.policy import PolicyError, parse_policy
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


def _valid_policy(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    try:
        parse_policy(value)
    except PolicyError as error:
        directive = f" (directive {error.directive!r})" if error.directive else ""
        raise ValueError(
            f"not a valid CRP-Safety-Policy{directive}: {error.message}"
        ) from None
    return value.strip()


SafetyPolicyText = Annotated[
    str | None, StringConstraints(max_length=4096), AfterValidator(_valid_policy)
]


class PolicyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    safety_policy: SafetyPolicyText


class PolicyOut(BaseModel):
    safety_policy: str | None


class PeriodUsage(BaseModel):
    period_start: datetime
    requests: int
    prompt_tokens: int
    completion_tokens: int


class TenantProfile(BaseModel):
    tenant_id: str
    name: str
    email: str
    plan: str
    safety_policy: str | None
    created_at: datetime
    usage: PeriodUsage


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
    """The calling key's tenant and its usage this calendar month (UTC)."""
    profile = await tenants.get_profile(runtime, principal.tenant_id)
    tenant = profile.tenant
    return TenantProfile(
        tenant_id=tenant.id,
        name=tenant.name,
        email=tenant.email,
        plan=tenant.plan,
        safety_policy=tenant.safety_policy,
        created_at=tenant.created_at,
        usage=PeriodUsage(
            period_start=profile.period_start,
            requests=profile.usage.requests,
            prompt_tokens=profile.usage.prompt_tokens,
            completion_tokens=profile.usage.completion_tokens,
        ),
    )


@router.put("/me/policy")
async def set_default_policy(
    body: PolicyRequest, admin: AdminDep, runtime: RuntimeDep
) -> PolicyOut:
    """Set (or clear, with null) the tenant's default CRP-Safety-Policy."""
    await tenants.set_default_policy(runtime, admin.tenant_id, body.safety_policy)
    return PolicyOut(safety_policy=body.safety_policy)
