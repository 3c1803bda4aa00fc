"""A tenant's registered AI systems: register, list, show, change, delete.

Every write re-runs ``governance.eu_ai_act.classify`` and stores the class with
the registration; the data path reads the stored class (within the provider
directory's cache time on every replica, at once on this one).

Deleting a system that active keys are bound to is refused (409
``system_in_use``): unbinding them would silently turn their calls UNKNOWN and
drop the system's default policy, a loosening nobody asked for. Revoke or
replace those keys first; revoked keys lose their binding with the system.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crp_gateway.auth.authenticator import Principal
from crp_gateway.errors import Conflict, NotFound
from crp_gateway.governance.eu_ai_act import (
    Basis,
    Domain,
    HighRiskIndicators,
    SystemProfile,
    classify,
)
from crp_gateway.governance.headers import EuAiActClass
from crp_gateway.logging import get_logger
from crp_gateway.store.models import AiSystem
from crp_gateway.store.models.base import utcnow
from crp_gateway.store.systems import SystemRepository

if TYPE_CHECKING:  # the runtime holds the provider directory, which reads systems
    from crp_gateway.runtime import Runtime

log = get_logger("crp_gateway.systems")


def new_system_id() -> str:
    """``sys_`` and 128 random bits as 32 lowercase hex."""
    return f"sys_{secrets.token_hex(16)}"


@dataclass(frozen=True, slots=True)
class SystemView:
    id: str
    profile: SystemProfile
    eu_ai_act: EuAiActClass
    basis: Basis
    created_at: datetime
    updated_at: datetime


def _profile(row: AiSystem) -> SystemProfile:
    known = set(HighRiskIndicators.names())
    indicators = {k: bool(v) for k, v in row.high_risk_indicators.items() if k in known}
    return SystemProfile(
        system_id=row.id,
        name=row.name,
        domain=Domain(row.domain),
        intended_purpose=row.intended_purpose,
        deployment_context=row.deployment_context,
        high_risk_indicators=HighRiskIndicators(**indicators),
        users_classification=row.users_classification,
        personal_data_processing=row.personal_data_processing,
        automated_decision_making=row.automated_decision_making,
        default_safety_policy=row.default_safety_policy,
        data_residency=row.data_residency,
    )


def _view(row: AiSystem) -> SystemView:
    return SystemView(
        id=row.id,
        profile=_profile(row),
        eu_ai_act=EuAiActClass(row.eu_ai_act),
        basis=Basis(row.eu_ai_act_basis),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _write(row: AiSystem, profile: SystemProfile) -> None:
    """Copy ``profile`` and its fresh classification onto ``row``."""
    classification = classify(profile)
    row.name = profile.name
    row.domain = profile.domain.value
    row.intended_purpose = profile.intended_purpose
    row.deployment_context = profile.deployment_context
    row.high_risk_indicators = profile.high_risk_indicators.as_dict()
    row.users_classification = profile.users_classification
    row.personal_data_processing = profile.personal_data_processing
    row.automated_decision_making = profile.automated_decision_making
    row.default_safety_policy = profile.default_safety_policy
    row.data_residency = profile.data_residency
    row.eu_ai_act = classification.eu_ai_act.value
    row.eu_ai_act_basis = classification.basis.value
    row.updated_at = utcnow()


def _name_taken(name: str) -> Conflict:
    return Conflict(
        f"This tenant already has an AI system named {name!r}.",
        code="system_name_taken",
        param="name",
    )


async def _flush_unique(session: AsyncSession, name: str) -> None:
    """Flush now, so a concurrent registration of the same name is a 409."""
    try:
        await session.flush()
    except IntegrityError:
        raise _name_taken(name) from None


async def _existing(systems: SystemRepository, system_id: str) -> AiSystem:
    row = await systems.get(system_id)
    if row is None:
        raise NotFound("No AI system has this id.", code="system_not_found")
    return row


async def register_system(
    session: AsyncSession, principal: Principal, profile: SystemProfile
) -> SystemView:
    systems = SystemRepository(session, principal.tenant_id)
    if await systems.name_taken(profile.name):
        raise _name_taken(profile.name)
    row = AiSystem(
        id=new_system_id(), tenant_id=principal.tenant_id, created_at=utcnow()
    )
    _write(row, profile)
    systems.add(row)
    await _flush_unique(session, profile.name)
    log.info(
        "system.registered",
        tenant_id=principal.tenant_id,
        system_id=row.id,
        eu_ai_act=row.eu_ai_act,
    )
    return _view(row)


async def list_systems(
    session: AsyncSession, principal: Principal
) -> Sequence[SystemView]:
    rows = await SystemRepository(session, principal.tenant_id).list()
    return [_view(row) for row in rows]


async def get_system(
    session: AsyncSession, principal: Principal, system_id: str
) -> SystemView:
    systems = SystemRepository(session, principal.tenant_id)
    return _view(await _existing(systems, system_id))


async def update_system(
    runtime: Runtime,
    session: AsyncSession,
    principal: Principal,
    system_id: str,
    *,
    changes: Mapping[str, Any],
    indicators: Mapping[str, bool],
) -> SystemView:
    """Apply ``changes`` (profile fields) and ``indicators`` (merged into the
    current ones), then re-classify."""
    systems = SystemRepository(session, principal.tenant_id)
    row = await _existing(systems, system_id)
    current = _profile(row)
    merged = replace(current.high_risk_indicators, **indicators)
    updated = replace(current, **changes, high_risk_indicators=merged)
    if updated.name != current.name and await systems.name_taken(
        updated.name, other_than=row.id
    ):
        raise _name_taken(updated.name)
    before = row.eu_ai_act
    _write(row, updated)
    await _flush_unique(session, updated.name)
    runtime.providers.forget(principal.tenant_id)
    log.info(
        "system.updated",
        tenant_id=principal.tenant_id,
        system_id=row.id,
        eu_ai_act=row.eu_ai_act,
        previous_eu_ai_act=before,
    )
    return _view(row)


async def delete_system(
    runtime: Runtime, session: AsyncSession, principal: Principal, system_id: str
) -> None:
    """Delete a system no active key is bound to (see the module docstring)."""
    systems = SystemRepository(session, principal.tenant_id)
    row = await _existing(systems, system_id)
    bound = await systems.active_key_count(system_id)
    if bound:
        raise Conflict(
            f"{bound} active key(s) are bound to this AI system; revoke them "
            "before deleting it.",
            code="system_in_use",
        )
    await systems.unbind_revoked_keys(system_id)
    await systems.delete(row)
    try:
        await session.flush()
    except IntegrityError:  # a key was bound to it meanwhile
        raise Conflict(
            "A key was bound to this AI system meanwhile; revoke it first.",
            code="system_in_use",
        ) from None
    runtime.providers.forget(principal.tenant_id)
    log.info("system.deleted", tenant_id=principal.tenant_id, system_id=system_id)


async def require_system(
    session: AsyncSession, principal: Principal, system_id: str
) -> None:
    """404 ``system_not_found`` unless ``system_id`` is one of the caller's
    tenant's systems (another tenant's id gets the very same answer)."""
    if await SystemRepository(session, principal.tenant_id).get(system_id) is None:
        raise NotFound(
            "No AI system of this tenant has this id.",
            code="system_not_found",
            param="system_id",
        )
