"""Statements on ``ai_systems`` and on the keys bound to a system.

Kept beside ``repositories.py`` under the same rule: :class:`SystemRepository`
is a :class:`~crp_gateway.store.repositories.TenantScoped` repository, so every
statement it issues pins ``tenant_id`` (``tests/store/test_tenant_scope.py``
checks this module too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func

from crp_gateway.store.models import AiSystem, ApiKey
from crp_gateway.store.repositories import TenantScoped


class SystemRepository(TenantScoped):
    def add(self, system: AiSystem) -> None:
        self._add(system)

    async def get(self, system_id: str) -> AiSystem | None:
        statement = self._select(AiSystem).where(AiSystem.id == system_id)
        return await self._session.scalar(statement)

    async def list(self) -> Sequence[AiSystem]:
        statement = self._select(AiSystem).order_by(AiSystem.created_at, AiSystem.id)
        return (await self._session.scalars(statement)).all()

    async def name_taken(self, name: str, *, other_than: str | None = None) -> bool:
        statement = self._select(AiSystem).where(AiSystem.name == name)
        if other_than is not None:
            statement = statement.where(AiSystem.id != other_than)
        counted = statement.with_only_columns(func.count())
        return bool(await self._session.scalar(counted))

    async def active_key_count(self, system_id: str) -> int:
        """How many unrevoked keys of the tenant are bound to ``system_id``."""
        statement = (
            self._select(ApiKey)
            .where(ApiKey.system_id == system_id, ApiKey.revoked_at.is_(None))
            .with_only_columns(func.count())
        )
        return int(await self._session.scalar(statement) or 0)

    async def unbind_revoked_keys(self, system_id: str) -> int:
        """Clear the binding of revoked keys, so the system row can go."""
        statement = (
            self._update(ApiKey)
            .where(ApiKey.system_id == system_id, ApiKey.revoked_at.is_not(None))
            .values(system_id=None)
        )
        result: Any = await self._session.execute(statement)
        return int(result.rowcount or 0)

    async def delete(self, system: AiSystem) -> None:
        if system.tenant_id != self._tenant_id:
            raise ValueError("row belongs to another tenant")
        await self._session.delete(system)
