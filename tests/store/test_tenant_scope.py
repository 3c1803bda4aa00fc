"""Lint: tenant-owned repositories only query through the scoping helpers."""

from __future__ import annotations

import ast
import inspect

from crp_gateway.store import outbox, repositories, systems
from crp_gateway.store.models import Base, TenantOwned

UNSCOPED_CALLS = {"select", "update", "delete", "insert", "get", "execute", "scalar"}


def _scoped_classes() -> list[type]:
    return [
        cls
        for module in (repositories, systems, outbox)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, repositories.TenantScoped)
        and cls is not repositories.TenantScoped
    ]


def test_every_tenant_owned_table_has_a_scoped_repository() -> None:
    owned = {
        m.class_.__name__
        for m in Base.registry.mappers
        if issubclass(m.class_, TenantOwned)
    }
    assert owned == {
        "AiSystem",
        "ApiKey",
        "AuditEvent",
        "AuditTenantLink",
        "AuditTruncation",
        "AuditWindow",
        "OutboxMessage",
        "ProviderCredential",
        "TenantKey",
        "UsageRecord",
    }
    assert {cls.__name__ for cls in _scoped_classes()} >= {
        "ApiKeyRepository",
        "AuditRepository",
        "AuditRetentionRepository",
        "OutboxRepository",
        "SystemRepository",
        "ProviderRepository",
        "TenantKeyRepository",
        "UsageRepository",
    }


def test_scoped_repositories_never_build_an_unscoped_statement() -> None:
    for cls in _scoped_classes():
        tree = ast.parse(inspect.getsource(cls))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else None
            assert name not in UNSCOPED_CALLS, f"{cls.__name__} calls {name}()"
            if isinstance(func, ast.Attribute) and func.attr in {"get", "execute"}:
                target = func.value
                session = (
                    isinstance(target, ast.Attribute) and target.attr == "_session"
                )
                assert not (session and func.attr == "get"), (
                    f"{cls.__name__} uses session.get(), which ignores tenant_id"
                )
