"""AI system registration (016§5): ``/v1/systems`` and ``/v1/systems/{system_id}``.

Admin keys only. A registration is classified under the EU AI Act when it is
created and on every change (``governance.eu_ai_act``, G30); keys bound to it
(``POST /v1/keys`` with ``system_id``) carry that class and its default safety
policy. ``DELETE`` is refused with 409 ``system_in_use`` while active keys are
bound to the system (see ``services.systems``).

``PATCH`` is a merge: fields left out keep their value, ``null`` clears an
optional field, and ``high_risk_indicators`` merges indicator by indicator.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, status
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StringConstraints,
    model_validator,
)

from crp_gateway.api.deps import AdminDep, RuntimeDep, SessionDep
from crp_gateway.api.tenants import SafetyPolicyText
from crp_gateway.governance.eu_ai_act import (
    Basis,
    Domain,
    HighRiskIndicators,
    SystemProfile,
)
from crp_gateway.governance.headers import EuAiActClass
from crp_gateway.services import systems
from crp_gateway.services.systems import SystemView

router = APIRouter(prefix="/v1/systems", tags=["systems"])

SystemName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
]
Purpose = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)
]
Description = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)
]
UsersClass = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]


def _two_letters(value: str) -> str:
    if not re.fullmatch(r"[A-Z]{2}", value):
        raise ValueError("must be a two-letter jurisdiction code such as EU or US")
    return value


#: 2ALPHA as in CRP-Compliance-Data-Residency (EU, AU, US, UK, ...).
Residency = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_upper=True),
    AfterValidator(_two_letters),
]


class Indicators(BaseModel):
    model_config = ConfigDict(extra="forbid")

    employment: bool = False
    credit: bool = False
    medical: bool = False
    law_enforcement: bool = False
    critical_infrastructure: bool = False
    biometric_id: bool = False
    education_access: bool = False


class IndicatorChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")

    employment: bool | None = None
    credit: bool | None = None
    medical: bool | None = None
    law_enforcement: bool | None = None
    critical_infrastructure: bool | None = None
    biometric_id: bool | None = None
    education_access: bool | None = None


class CreateSystemRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: SystemName
    domain: Domain
    intended_purpose: Purpose
    deployment_context: Description | None = None
    high_risk_indicators: Indicators = Indicators()
    users_classification: UsersClass | None = None
    personal_data_processing: bool = False
    automated_decision_making: bool = False
    default_safety_policy: SafetyPolicyText = None
    data_residency: Residency | None = None

    def profile(self) -> SystemProfile:
        return SystemProfile(
            name=self.name,
            domain=self.domain,
            intended_purpose=self.intended_purpose,
            deployment_context=self.deployment_context,
            high_risk_indicators=HighRiskIndicators(
                **self.high_risk_indicators.model_dump()
            ),
            users_classification=self.users_classification,
            personal_data_processing=self.personal_data_processing,
            automated_decision_making=self.automated_decision_making,
            default_safety_policy=self.default_safety_policy,
            data_residency=self.data_residency,
        )


_REQUIRED = (
    "name",
    "domain",
    "intended_purpose",
    "personal_data_processing",
    "automated_decision_making",
    "high_risk_indicators",
)


class UpdateSystemRequest(BaseModel):
    """Every field optional; a field that is sent replaces the stored value."""

    model_config = ConfigDict(extra="forbid")

    name: SystemName | None = None
    domain: Domain | None = None
    intended_purpose: Purpose | None = None
    deployment_context: Description | None = None
    high_risk_indicators: IndicatorChanges | None = None
    users_classification: UsersClass | None = None
    personal_data_processing: bool | None = None
    automated_decision_making: bool | None = None
    default_safety_policy: SafetyPolicyText = None
    data_residency: Residency | None = None

    @model_validator(mode="after")
    def _required_fields_are_not_cleared(self) -> UpdateSystemRequest:
        for name in _REQUIRED:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name!r} cannot be null")
        return self

    def changes(self) -> dict[str, object]:
        """The profile fields sent, except the indicators."""
        return {
            name: getattr(self, name)
            for name in self.model_fields_set
            if name != "high_risk_indicators"
        }

    def indicator_changes(self) -> dict[str, bool]:
        if self.high_risk_indicators is None:
            return {}
        return self.high_risk_indicators.model_dump(exclude_none=True)


class SystemOut(BaseModel):
    id: str
    object: Literal["ai_system"] = "ai_system"
    name: str
    domain: Domain
    intended_purpose: str
    deployment_context: str | None
    high_risk_indicators: Indicators
    users_classification: str | None
    personal_data_processing: bool
    automated_decision_making: bool
    default_safety_policy: str | None
    data_residency: str | None
    eu_ai_act: EuAiActClass
    eu_ai_act_basis: Basis
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, view: SystemView) -> SystemOut:
        profile = view.profile
        return cls(
            id=view.id,
            name=profile.name,
            domain=profile.domain,
            intended_purpose=profile.intended_purpose,
            deployment_context=profile.deployment_context,
            high_risk_indicators=Indicators(**profile.high_risk_indicators.as_dict()),
            users_classification=profile.users_classification,
            personal_data_processing=profile.personal_data_processing,
            automated_decision_making=profile.automated_decision_making,
            default_safety_policy=profile.default_safety_policy,
            data_residency=profile.data_residency,
            eu_ai_act=view.eu_ai_act,
            eu_ai_act_basis=view.basis,
            created_at=view.created_at,
            updated_at=view.updated_at,
        )


class SystemList(BaseModel):
    object: Literal["list"] = "list"
    data: list[SystemOut]


class DeletedSystem(BaseModel):
    id: str
    object: Literal["ai_system"] = "ai_system"
    deleted: bool = True


@router.post("", status_code=status.HTTP_201_CREATED)
async def register_system(
    body: CreateSystemRequest, admin: AdminDep, session: SessionDep
) -> SystemOut:
    """Register an AI system; the response carries its EU AI Act class."""
    view = await systems.register_system(session, admin, body.profile())
    return SystemOut.of(view)


@router.get("")
async def list_systems(admin: AdminDep, session: SessionDep) -> SystemList:
    """The tenant's registered AI systems."""
    views = await systems.list_systems(session, admin)
    return SystemList(data=[SystemOut.of(view) for view in views])


@router.get("/{system_id}")
async def get_system(system_id: str, admin: AdminDep, session: SessionDep) -> SystemOut:
    """One registered AI system."""
    return SystemOut.of(await systems.get_system(session, admin, system_id))


@router.patch("/{system_id}")
async def update_system(
    system_id: str,
    body: UpdateSystemRequest,
    admin: AdminDep,
    runtime: RuntimeDep,
    session: SessionDep,
) -> SystemOut:
    """Change a registration and classify it again; bound keys follow within a
    second on every replica."""
    view = await systems.update_system(
        runtime,
        session,
        admin,
        system_id,
        changes=body.changes(),
        indicators=body.indicator_changes(),
    )
    return SystemOut.of(view)


@router.delete("/{system_id}")
async def delete_system(
    system_id: str, admin: AdminDep, runtime: RuntimeDep, session: SessionDep
) -> DeletedSystem:
    """Delete a registration; 409 ``system_in_use`` while active keys use it."""
    await systems.delete_system(runtime, session, admin, system_id)
    return DeletedSystem(id=system_id)
