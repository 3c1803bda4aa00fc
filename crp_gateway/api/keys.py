"""Gateway keys: ``POST /v1/keys``, ``GET /v1/keys``, ``DELETE /v1/keys/{key_id}``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from crp_gateway.api.deps import AdminDep, RuntimeDep, SessionDep
from crp_gateway.api.tenants import SafetyPolicyText
from crp_gateway.auth.keys import Role
from crp_gateway.services import keys
from crp_gateway.services.keys import KeyView

router = APIRouter(prefix="/v1/keys", tags=["keys"])

KeyName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
]


class CreateKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: KeyName
    role: Role = Role.INFERENCE
    rpm_limit: int | None = Field(default=None, ge=1, le=1_000_000)
    safety_policy: SafetyPolicyText = None
    system_id: str | None = Field(
        default=None,
        max_length=40,
        description="Bind the key to one of the tenant's AI systems (/v1/systems).",
    )


class KeyOut(BaseModel):
    id: str
    object: Literal["gateway_key"] = "gateway_key"
    name: str
    role: Role
    hint: str
    rpm_limit: int | None
    safety_policy: str | None
    system_id: str | None
    created_at: datetime
    last_used_at: datetime | None

    @classmethod
    def of(cls, view: KeyView) -> KeyOut:
        return cls(
            id=view.id,
            name=view.name,
            role=view.role,
            hint=view.hint,
            rpm_limit=view.rpm_limit,
            safety_policy=view.safety_policy,
            system_id=view.system_id,
            created_at=view.created_at,
            last_used_at=view.last_used_at,
        )


class CreatedKeyOut(KeyOut):
    api_key: str = Field(description="The key itself; shown only this once.")


class KeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[KeyOut]


class DeletedKey(BaseModel):
    id: str
    object: Literal["gateway_key"] = "gateway_key"
    deleted: bool = True


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_key(
    body: CreateKeyRequest, admin: AdminDep, runtime: RuntimeDep, session: SessionDep
) -> CreatedKeyOut:
    """Create a gateway key; the response is the only time its secret is shown."""
    view, issued = await keys.create_key(
        runtime,
        session,
        admin,
        name=body.name,
        role=body.role,
        rpm_limit=body.rpm_limit,
        safety_policy=body.safety_policy,
        system_id=body.system_id,
    )
    return CreatedKeyOut(**KeyOut.of(view).model_dump(), api_key=issued.token)


@router.get("")
async def list_keys(
    admin: AdminDep, runtime: RuntimeDep, session: SessionDep
) -> KeyList:
    """The tenant's active keys (hints only)."""
    views = await keys.list_keys(runtime, session, admin)
    return KeyList(data=[KeyOut.of(view) for view in views])


@router.delete("/{key_id}")
async def revoke_key(
    key_id: str, admin: AdminDep, runtime: RuntimeDep, session: SessionDep
) -> DeletedKey:
    """Revoke a key; every replica refuses it within a second."""
    await keys.revoke_key(runtime, session, admin, key_id)
    return DeletedKey(id=key_id)
