"""Sign-up and the tenant profile."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from crp_gateway.auth.keys import IssuedKey, Role
from crp_gateway.errors import Conflict, NotFound, PermissionDenied, RateLimited
from crp_gateway.ids import new_id
from crp_gateway.logging import get_logger
from crp_gateway.runtime import Runtime
from crp_gateway.services.keys import new_key_row
from crp_gateway.settings import SignupMode
from crp_gateway.store.database import transaction
from crp_gateway.store.models import Tenant
from crp_gateway.store.models.base import utcnow
from crp_gateway.store.repositories import (
    ApiKeyRepository,
    TenantRepository,
    UsageRepository,
    UsageTotals,
)

log = get_logger("crp_gateway.tenants")

FREE_PLAN = "free"
SIGNUP_KEY_NAME = "default"


@dataclass(frozen=True, slots=True)
class SignUp:
    tenant: Tenant
    key: IssuedKey


async def _check_signup_allowed(runtime: Runtime, client_address: str) -> None:
    if runtime.settings.crp_signup is SignupMode.CLOSED:
        raise PermissionDenied(
            "Sign-up is closed on this gateway; ask its operator for an account.",
            code="signup_closed",
        )
    decision = await runtime.state.hit(
        f"ip:{client_address}",
        "signup",
        limit=runtime.settings.crp_signup_rate_per_hour,
        window_seconds=3600,
    )
    if not decision.allowed:
        raise RateLimited(
            "Too many sign-ups from this address; try again later.",
            retry_after=decision.retry_after,
        )


async def sign_up(
    runtime: Runtime, *, name: str, email: str, client_address: str
) -> SignUp:
    """Create a tenant and its first (admin) gateway key in one transaction."""
    await _check_signup_allowed(runtime, client_address)
    email = email.strip().lower()
    now = utcnow()
    tenant = Tenant(
        id=new_id("tnt"), name=name, email=email, plan=FREE_PLAN, created_at=now
    )
    row, issued = new_key_row(
        runtime, tenant.id, name=SIGNUP_KEY_NAME, role=Role.ADMIN, rpm_limit=None
    )
    conflict = Conflict(
        "A tenant with this email already exists.", code="tenant_exists"
    )
    try:
        async with transaction(runtime.sessions) as session:
            tenants = TenantRepository(session)
            if await tenants.email_taken(email):
                raise conflict
            tenants.add(tenant)
            await session.flush()
            ApiKeyRepository(session, tenant.id).add(row)
    except IntegrityError:
        raise conflict from None
    log.info("tenant.created", tenant_id=tenant.id, key_id=issued.public_id)
    return SignUp(tenant=tenant, key=issued)


@dataclass(frozen=True, slots=True)
class Profile:
    tenant: Tenant
    period_start: datetime
    usage: UsageTotals


def period_start(now: datetime) -> datetime:
    """The billing period is the calendar month, in UTC."""
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


async def get_profile(runtime: Runtime, tenant_id: str) -> Profile:
    """The tenant and its usage this period (as written so far; see usage.py)."""
    since = period_start(utcnow())
    async with runtime.sessions() as session:
        tenant = await TenantRepository(session).get(tenant_id)
        if tenant is None:
            raise NotFound("Tenant not found.", code="tenant_not_found")
        usage = await UsageRepository(session, tenant_id).totals_since(since)
    return Profile(tenant=tenant, period_start=since, usage=usage)


async def set_default_policy(
    runtime: Runtime, tenant_id: str, policy: str | None
) -> None:
    """The tenant's default safety policy; every replica applies it within the
    provider directory's cache time, this one at once."""
    async with transaction(runtime.sessions) as session:
        await TenantRepository(session).set_safety_policy(tenant_id, policy)
    runtime.providers.forget(tenant_id)
    log.info("tenant.policy_set", tenant_id=tenant_id, cleared=policy is None)
