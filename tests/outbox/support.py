"""Helpers of the outbox tests: a migrated store, tenants, reports, signatures."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crp_gateway.audit.writer import AuditEntry, AuditWriter
from crp_gateway.outbox.reports import ViolationReport, ViolationType, report_row
from crp_gateway.runtime import build_vault
from crp_gateway.settings import Settings
from crp_gateway.store import migrate
from crp_gateway.store.database import create_engine, create_sessionmaker
from crp_gateway.store.models import OutboxMessage, Tenant
from crp_gateway.store.models.base import utcnow
from crp_gateway.store.outbox import OutboxRepository
from crp_gateway.vault import Vault


@dataclass
class Store:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    vault: Vault


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[Store]:
    engine = create_engine(settings.store_url)
    try:
        await migrate.upgrade(engine)
        yield Store(engine, create_sessionmaker(engine), build_vault(settings))
    finally:
        await engine.dispose()


async def new_tenant(store: Store) -> str:
    tenant_id = f"tnt_{uuid.uuid4().hex[:26]}"
    async with store.sessions() as session, session.begin():
        session.add(Tenant(id=tenant_id, name="t", email=f"{tenant_id}@example.com"))
    return tenant_id


def report(tenant_id: str, url: str) -> dict[str, Any]:
    """A fresh violation-report outbox row for ``tenant_id``."""
    window_id = f"crp_win_{uuid.uuid4().hex}"
    facts = ViolationReport(
        session_id=f"crp_sess_{uuid.uuid4().hex}",
        window_id=window_id,
        window_number=1,
        violation_type=ViolationType.WARN_ON_RISK,
        directive_violated="warn-on",
        risk_level="HIGH",
        hallucination_score=0.7,
        grounding_pct=None,
        fabrication_count=0,
        audit_trail_uri=None,
        timestamp="2026-12-03T10:00:00Z",
    )
    return report_row(tenant_id, url, facts)


async def enqueue(store: Store, rows: list[dict[str, Any]]) -> None:
    """Commit ``rows`` through the audit writer, one entry per row."""
    writer = AuditWriter(store.engine)
    writer.start()
    try:
        for row in rows:
            await writer.append(AuditEntry(tenant_id=row["tenant_id"], outbox=(row,)))
    finally:
        await writer.aclose()


async def messages(store: Store, tenant_id: str) -> dict[str, OutboxMessage]:
    async with store.sessions() as session:
        rows = await OutboxRepository(session, tenant_id).recent(limit=1000)
    return {row.id: row for row in rows}


def signature_valid(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Verify ``X-CRP-Signature`` as a receiver would."""
    fields = dict(part.split("=", 1) for part in headers["X-CRP-Signature"].split(","))
    expected = hmac.new(
        secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    fresh = abs(int(utcnow().timestamp()) - int(fields["t"])) <= 300
    return fresh and hmac.compare_digest(expected, fields["v1"])
