"""Gateway keys of a tenant: create (secret shown once), list, revoke."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from crp_gateway.auth.authenticator import Principal
from crp_gateway.auth.keys import IssuedKey, Role, hash_secret, issue_key
from crp_gateway.errors import Conflict, NotFound
from crp_gateway.logging import get_logger
from crp_gateway.runtime import Runtime
from crp_gateway.services import systems
from crp_gateway.store.models import ApiKey
from crp_gateway.store.models.base import utcnow
from crp_gateway.store.repositories import ApiKeyRepository

log = get_logger("crp_gateway.keys")


@dataclass(frozen=True, slots=True)
class KeyView:
    """A key as the API shows it: never the secret."""

    id: str
    name: str
    role: Role
    hint: str
    rpm_limit: int | None
    safety_policy: str | None
    system_id: str | None
    created_at: datetime
    last_used_at: datetime | None


def _view(row: ApiKey) -> KeyView:
    return KeyView(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        hint=row.hint,
        rpm_limit=row.rpm_limit,
        safety_policy=row.safety_policy,
        system_id=row.system_id,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )


def new_key_row(
    runtime: Runtime,
    tenant_id: str,
    *,
    name: str,
    role: Role,
    rpm_limit: int | None,
    safety_policy: str | None = None,
    system_id: str | None = None,
) -> tuple[ApiKey, IssuedKey]:
    issued = issue_key()
    row = ApiKey(
        id=issued.public_id,
        tenant_id=tenant_id,
        name=name,
        role=role.value,
        secret_hash=hash_secret(runtime.keys.hash_key, issued.secret),
        hint=issued.hint,
        rpm_limit=rpm_limit,
        safety_policy=safety_policy,
        system_id=system_id,
        created_at=utcnow(),
    )
    return row, issued


async def create_key(
    runtime: Runtime,
    session: AsyncSession,
    principal: Principal,
    *,
    name: str,
    role: Role,
    rpm_limit: int | None,
    safety_policy: str | None = None,
    system_id: str | None = None,
) -> tuple[KeyView, IssuedKey]:
    """A new key; ``system_id`` must name one of the tenant's AI systems."""
    if system_id is not None:
        await systems.require_system(session, principal, system_id)
    row, issued = new_key_row(
        runtime,
        principal.tenant_id,
        name=name,
        role=role,
        rpm_limit=rpm_limit,
        safety_policy=safety_policy,
        system_id=system_id,
    )
    ApiKeyRepository(session, principal.tenant_id).add(row)
    log.info(
        "key.created",
        tenant_id=principal.tenant_id,
        key_id=row.id,
        role=role.value,
        system_id=system_id,
    )
    return _view(row), issued


async def list_keys(
    runtime: Runtime, session: AsyncSession, principal: Principal
) -> Sequence[KeyView]:
    rows = await ApiKeyRepository(session, principal.tenant_id).list_active()
    views = []
    for row in rows:
        view = _view(row)
        pending = runtime.keys.last_used(row.id)
        if pending is not None and (
            view.last_used_at is None or pending > view.last_used_at
        ):
            view = replace(view, last_used_at=pending)
        views.append(view)
    return views


async def revoke_key(
    runtime: Runtime, session: AsyncSession, principal: Principal, key_id: str
) -> None:
    """Revoke ``key_id``; refuse to revoke the tenant's last admin key."""
    keys = ApiKeyRepository(session, principal.tenant_id)
    row = await keys.get_active(key_id)
    if row is None:
        raise NotFound("No active key has this id.", code="key_not_found")
    if row.role == Role.ADMIN.value:
        admins = [k for k in await keys.list_active() if k.role == Role.ADMIN.value]
        if len(admins) <= 1:
            raise Conflict(
                "This is the tenant's last admin key; create another admin key "
                "before revoking it.",
                code="last_admin_key",
            )
    await keys.revoke(key_id, utcnow())
    runtime.keys.forget(key_id)
    log.info("key.revoked", tenant_id=principal.tenant_id, key_id=key_id)
