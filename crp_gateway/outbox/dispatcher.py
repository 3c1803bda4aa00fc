"""Delivering the outbox: at least once, never twice at the same time.

One task per replica claims due messages (``store.outbox.OutboxQueue``: a lease,
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, fenced updates), sends them
concurrently, and records each outcome: ``delivered``; a retry after
``base * 4**(attempt - 1)`` seconds (capped, times a random 0.5-1.0 jitter);
or, after the last attempt or a refused target, ``dead`` with a warning.

It wakes when the audit writer commits outbox rows (:meth:`wake`) and polls every
``CRP_OUTBOX_POLL_SECONDS`` otherwise (rows written by another replica, retries
coming due). The lease outlives a delivery's total timeout, so a message is
only sent again if its dispatcher died mid-delivery; receivers deduplicate on
``X-CRP-Idempotency-Key``. Nothing here runs on a call's path: a delivery
failure never reaches a client.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crp_gateway.logging import get_logger
from crp_gateway.outbox.reports import REPORT_KIND
from crp_gateway.outbox.sender import Delivery, ReportSender
from crp_gateway.outbox.signing import (
    SIGNATURE_HEADER,
    SigningSecrets,
    signature_header,
)
from crp_gateway.settings import Settings
from crp_gateway.store.database import transaction
from crp_gateway.store.models.base import utcnow
from crp_gateway.store.outbox import ClaimedMessage, OutboxQueue
from crp_gateway.vault import Vault

log = get_logger("crp_gateway.outbox")

IDEMPOTENCY_HEADER = "X-CRP-Idempotency-Key"
_BACKOFF_FACTOR = 4.0
_MIN_LEASE_SECONDS = 60.0
_jitter = secrets.SystemRandom()


def retry_delay(attempt: int, *, base: float, cap: float) -> float:
    """Seconds before retry ``attempt + 1``: exponential, capped, jittered."""
    delay = min(cap, base * _BACKOFF_FACTOR ** max(attempt - 1, 0))
    return delay * _jitter.uniform(0.5, 1.0)


def target_host(url: str) -> str:
    """The host of ``url`` alone, for logs and listings (never path or query)."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


class OutboxDispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        sender: ReportSender,
        secrets: SigningSecrets,
        *,
        poll_seconds: float = 5.0,
        max_attempts: int = 10,
        retry_base: float = 1.0,
        retry_cap: float = 6 * 3600.0,
        batch_size: int = 20,
        lease_seconds: float = _MIN_LEASE_SECONDS,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._sender = sender
        self._secrets = secrets
        self._poll = poll_seconds
        self._max_attempts = max_attempts
        self._retry_base = retry_base
        self._retry_cap = retry_cap
        self._batch = batch_size
        self._lease = timedelta(seconds=lease_seconds)
        self._clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        vault: Vault,
    ) -> OutboxDispatcher:
        timeout = settings.crp_reports_timeout_seconds
        if settings.crp_reports_allow_private:
            log.warning(
                "reports.private_targets_allowed",
                detail="CRP_REPORTS_ALLOW_PRIVATE is on: reports may reach private "
                "and loopback addresses; keep it off unless the network is closed",
            )
        sender = ReportSender(
            require_https=settings.is_production,
            allow_private=settings.crp_reports_allow_private,
            timeout=timeout,
        )
        return cls(
            sessions,
            sender,
            SigningSecrets(sessions, vault),
            poll_seconds=settings.crp_outbox_poll_seconds,
            max_attempts=settings.crp_outbox_max_attempts,
            retry_base=settings.crp_outbox_retry_base_seconds,
            retry_cap=settings.crp_outbox_retry_max_seconds,
            lease_seconds=max(_MIN_LEASE_SECONDS, 4 * timeout),
        )

    @property
    def secrets(self) -> SigningSecrets:
        return self._secrets

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def wake(self) -> None:
        """Look for due messages now (called after outbox rows commit)."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                handled = await self.run_once()
            except Exception:
                # The store may be briefly unreachable; the next round retries.
                log.exception("outbox.dispatch_failed")
                handled = 0
            if handled >= self._batch:
                continue  # a full batch: more may be due right now
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll):
                    await self._wake.wait()

    async def run_once(self) -> int:
        """Claim one batch of due messages and deliver it; return its size."""
        now = self._clock()
        async with transaction(self._sessions) as session:
            claimed = await OutboxQueue(session).claim(
                now, now + self._lease, self._batch, kinds=(REPORT_KIND,)
            )
        if claimed:
            await asyncio.gather(*(self._deliver(message) for message in claimed))
        return len(claimed)

    async def _deliver(self, message: ClaimedMessage) -> None:
        try:
            result = await self._send(message)
        except Exception:
            # A bug or a store error must not lose the message: retry it later.
            log.exception("outbox.delivery_crashed", message_id=message.id)
            result = Delivery(ok=False, error="internal error")
        await self._record(message, result)

    async def _send(self, message: ClaimedMessage) -> Delivery:
        secret = await self._secrets.current(message.tenant_id)
        body = message.body.encode()
        headers = {
            SIGNATURE_HEADER: signature_header(secret.value, body, int(time.time())),
            IDEMPOTENCY_HEADER: message.idempotency_key,
        }
        return await self._sender.send(message.target_url, body, headers)

    async def _record(self, message: ClaimedMessage, result: Delivery) -> None:
        fields = {
            "tenant_id": message.tenant_id,
            "message_id": message.id,
            "kind": message.kind,
            "host": target_host(message.target_url),
            "attempt": message.attempt,
        }
        now = self._clock()
        error = result.error or "failed"
        async with transaction(self._sessions) as session:
            queue = OutboxQueue(session)
            if result.ok:
                kept = await queue.delivered(message, now)
                event = "outbox.delivered"
            elif result.permanent or message.attempt >= self._max_attempts:
                kept = await queue.dead(message, error)
                event = "outbox.dead"
            else:
                delay = retry_delay(
                    message.attempt, base=self._retry_base, cap=self._retry_cap
                )
                kept = await queue.retry(message, now + timedelta(seconds=delay), error)
                event = "outbox.retry_scheduled"
        if not kept:
            log.warning("outbox.lease_lost", **fields)
        elif event == "outbox.dead":
            log.warning(event, error=error, **fields)
        elif event == "outbox.retry_scheduled":
            log.info(event, error=error, **fields)
        else:
            log.info(event, **fields)

    async def aclose(self) -> None:
        """Stop; a message mid-delivery is retried once its lease ends."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
