"""ORM models, one module per table. Importing this package registers them all."""

from crp_gateway.store.models.ai_system import AiSystem
from crp_gateway.store.models.api_key import ApiKey
from crp_gateway.store.models.audit import (
    AuditEvent,
    AuditTenantLink,
    AuditTruncation,
    AuditWindow,
    TenantKey,
)
from crp_gateway.store.models.base import Base, TenantOwned
from crp_gateway.store.models.outbox import OutboxMessage, OutboxStatus
from crp_gateway.store.models.provider_credential import ProviderCredential
from crp_gateway.store.models.system_key import SystemKey
from crp_gateway.store.models.tenant import Tenant
from crp_gateway.store.models.usage_record import UsageRecord

__all__ = [
    "AiSystem",
    "ApiKey",
    "AuditEvent",
    "AuditTenantLink",
    "AuditTruncation",
    "AuditWindow",
    "Base",
    "OutboxMessage",
    "OutboxStatus",
    "ProviderCredential",
    "SystemKey",
    "Tenant",
    "TenantKey",
    "TenantOwned",
    "UsageRecord",
]
