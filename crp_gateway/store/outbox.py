"""Every SQL statement on ``outbox_messages``.

Three views of the table:

* the audit writer (``audit.writer``) inserts rows inside its own transaction
  (synchronous, like ``AuditLog``); each row carries its own ``tenant_id``.
* :class:`OutboxQueue` is the dispatcher's: it claims due messages of every
  tenant and records what became of them. A claim takes a lease: it bumps
  ``attempts`` and moves ``next_attempt_at`` past the delivery's deadline, and
  every later update is fenced on that ``attempts`` value, so a dispatcher whose
  lease ran out cannot overwrite the outcome of the one that took over. On
  PostgreSQL the candidates are read ``FOR UPDATE SKIP LOCKED``: two replicas
  never claim one message.
* :class:`OutboxRepository` reads one tenant's messages (tenant-scoped).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crp_gateway.store.models import OutboxMessage, OutboxStatus
from crp_gateway.store.models.outbox import LAST_ERROR_LENGTH
from crp_gateway.store.repositories import TenantScoped


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """A message a dispatcher holds until its lease ends; ``attempt`` fences it."""

    id: str
    tenant_id: str
    kind: str
    target_url: str
    body: str
    idempotency_key: str
    attempt: int


def _short(error: str) -> str:
    return error[:LAST_ERROR_LENGTH]


class OutboxQueue:
    """The dispatcher's cross-tenant view; each row carries its own ``tenant_id``."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim(
        self,
        now: datetime,
        lease_until: datetime,
        limit: int,
        *,
        kinds: Sequence[str],
    ) -> list[ClaimedMessage]:
        """Take up to ``limit`` due messages of ``kinds`` until ``lease_until``."""
        due = (
            select(OutboxMessage)
            .where(
                OutboxMessage.status == OutboxStatus.PENDING,
                OutboxMessage.next_attempt_at <= now,
                OutboxMessage.kind.in_(kinds),
            )
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        candidates = (await self._session.scalars(due)).all()
        claimed: list[ClaimedMessage] = []
        for row in candidates:
            seen = row.attempts
            taken = await self._fenced(
                row.id, seen, attempts=seen + 1, next_attempt_at=lease_until
            )
            if taken:
                claimed.append(
                    ClaimedMessage(
                        id=row.id,
                        tenant_id=row.tenant_id,
                        kind=row.kind,
                        target_url=row.target_url,
                        body=row.body,
                        idempotency_key=row.idempotency_key,
                        attempt=seen + 1,
                    )
                )
        return claimed

    async def delivered(self, message: ClaimedMessage, at: datetime) -> bool:
        return await self._fenced(
            message.id,
            message.attempt,
            status=OutboxStatus.DELIVERED,
            delivered_at=at,
            last_error=None,
        )

    async def retry(self, message: ClaimedMessage, at: datetime, error: str) -> bool:
        return await self._fenced(
            message.id, message.attempt, next_attempt_at=at, last_error=_short(error)
        )

    async def dead(self, message: ClaimedMessage, error: str) -> bool:
        return await self._fenced(
            message.id,
            message.attempt,
            status=OutboxStatus.DEAD,
            last_error=_short(error),
        )

    async def _fenced(self, message_id: str, fence: int, **values: Any) -> bool:
        statement = (
            update(OutboxMessage)
            .where(
                OutboxMessage.id == message_id,
                OutboxMessage.attempts == fence,
                OutboxMessage.status == OutboxStatus.PENDING,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        result: Any = await self._session.execute(statement)
        return bool(result.rowcount == 1)


class OutboxRepository(TenantScoped):
    """One tenant's outbox, newest first."""

    async def recent(self, limit: int = 100) -> Sequence[OutboxMessage]:
        statement = (
            self._select(OutboxMessage)
            .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id)
            .limit(limit)
        )
        return (await self._session.scalars(statement)).all()
