"""The process-wide objects a running gateway holds, built once in the lifespan.

Routes reach them only through the dependencies in ``api/deps.py``; there are no
mutable module globals.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crp_gateway.audit.master_keys import TenantKeys
from crp_gateway.audit.recorder import AuditRecorder
from crp_gateway.audit.sessions import Sessions
from crp_gateway.audit.writer import AuditWriter
from crp_gateway.auth.authenticator import KeyAuthenticator
from crp_gateway.logging import get_logger
from crp_gateway.outbox.dispatcher import OutboxDispatcher
from crp_gateway.providers.directory import ProviderDirectory
from crp_gateway.providers.upstream import Timeouts, UpstreamClients
from crp_gateway.proxy.catalog import ModelCatalog
from crp_gateway.services import system_keys
from crp_gateway.settings import ConfigError, Settings
from crp_gateway.state import MemoryState, RedisState, SharedState
from crp_gateway.store import migrate
from crp_gateway.store.database import create_engine, create_sessionmaker
from crp_gateway.vault import Vault, VaultError

log = get_logger("crp_gateway.runtime")


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    state: SharedState
    vault: Vault
    keys: KeyAuthenticator
    providers: ProviderDirectory
    clients: UpstreamClients
    models: ModelCatalog
    audit: AuditRecorder
    crp_sessions: Sessions
    outbox: OutboxDispatcher


def build_vault(settings: Settings) -> Vault:
    previous = settings.secret_key_previous
    return Vault(
        settings.secret_key_value(),
        previous.get_secret_value() if previous else None,
    )


def build_state(settings: Settings, *, redis_prefix: str | None = None) -> SharedState:
    if settings.redis_url is None:
        return MemoryState()
    return RedisState.from_url(
        settings.redis_url.get_secret_value(),
        prefix=redis_prefix or settings.crp_redis_prefix,
    )


async def _flush_periodically(keys: KeyAuthenticator, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await keys.flush_last_used()
        except Exception:
            log.exception("keys.last_used.flush_failed")


def _warn_about_profile(settings: Settings) -> None:
    if settings.generated_secret_path is not None:
        log.warning(
            "secret.development",
            detail="SECRET_KEY is unset: using a development key generated into the "
            "data folder. Never use it in production; set SECRET_KEY instead.",
            path=str(settings.generated_secret_path),
        )
    if settings.database_url is None:
        log.warning(
            "store.embedded",
            detail="SQLite under CRP_DATA_DIR; set DATABASE_URL for production",
            data_dir=str(settings.crp_data_dir),
        )
    if settings.is_production and settings.redis_url is None:
        log.warning(
            "state.per_replica",
            detail="REDIS_URL is unset: rate limits, sessions and dedupe are per "
            "replica; add Redis before running more than one replica",
        )


@asynccontextmanager
async def open_runtime(
    settings: Settings, *, redis_prefix: str | None = None
) -> AsyncIterator[Runtime]:
    """Connect the store and shared state, migrate if asked, and clean up after."""
    _warn_about_profile(settings)
    engine = create_engine(settings.store_url)
    state = build_state(settings, redis_prefix=redis_prefix)
    flusher: asyncio.Task[None] | None = None
    try:
        if settings.crp_migrate_on_start:
            await migrate.upgrade(engine)
        sessions = create_sessionmaker(engine)
        vault = build_vault(settings)
        try:
            hash_key = await system_keys.load_or_create(
                sessions, vault, system_keys.GATEWAY_KEY_HASH
            )
        except VaultError:
            raise ConfigError(
                "SECRET_KEY does not open this database's keys; if it changed, set "
                "SECRET_KEY_PREVIOUS to the old value and run crp-gateway rotate-secret"
            ) from None
        keys = KeyAuthenticator(
            sessions, hash_key, cache_seconds=settings.crp_key_cache_seconds
        )
        flusher = asyncio.create_task(
            _flush_periodically(keys, settings.crp_last_used_flush_seconds)
        )
        clients = UpstreamClients(
            Timeouts(
                connect=settings.crp_upstream_connect_timeout,
                read=settings.crp_upstream_read_timeout,
                stream_idle=settings.crp_upstream_stream_idle_timeout,
            )
        )
        outbox = OutboxDispatcher.from_settings(settings, sessions, vault)
        outbox.start()
        writer = AuditWriter(engine, on_outbox=outbox.wake)
        writer.start()
        tenant_keys = TenantKeys(sessions, vault)
        audit = AuditRecorder(writer, tenant_keys, gateway_url=settings.crp_gateway_url)
        try:
            yield Runtime(
                settings=settings,
                engine=engine,
                sessions=sessions,
                state=state,
                vault=vault,
                keys=keys,
                providers=ProviderDirectory(
                    sessions, vault, ttl=settings.crp_provider_cache_seconds
                ),
                clients=clients,
                models=ModelCatalog(clients),
                audit=audit,
                crp_sessions=Sessions(state, tenant_keys),
                outbox=outbox,
            )
        finally:
            await audit.aclose()
            await writer.aclose()
            await outbox.aclose()
            await clients.aclose()
            await keys.flush_last_used()
    finally:
        if flusher is not None:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
        await state.aclose()
        await engine.dispose()
