"""Migrations: replicas starting together against one database do not race."""

from __future__ import annotations

import asyncio

from crp_gateway.store import migrate
from crp_gateway.store.database import create_engine
from tests.support import Backend, run


async def _upgrade_concurrently(url: str, replicas: int) -> list[str | None]:
    engines = [create_engine(url) for _ in range(replicas)]
    try:
        await asyncio.gather(*(migrate.upgrade(engine) for engine in engines))
        return [await migrate.current_revision(engine) for engine in engines]
    finally:
        for engine in engines:
            await engine.dispose()


def test_concurrent_upgrades_apply_the_schema_once(fresh_backend: Backend) -> None:
    url = fresh_backend.settings().store_url
    revisions = run(_upgrade_concurrently(url, replicas=4))
    assert revisions == [migrate.head_revision()] * 4


def test_the_models_match_the_migrations(fresh_backend: Backend) -> None:
    """Autogenerate against a migrated database finds nothing to do."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from crp_gateway.store.models import Base

    async def diff() -> list[object]:
        engine = create_engine(fresh_backend.settings().store_url)
        try:
            await migrate.upgrade(engine)
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync), Base.metadata
                    )
                )
        finally:
            await engine.dispose()

    assert run(diff()) == []
