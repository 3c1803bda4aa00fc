"""Liveness and readiness, as the deployment guide's health contract asks."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from crp_gateway import __version__
from crp_gateway.api.deps import RuntimeDep
from crp_gateway.runtime import Runtime
from crp_gateway.store import migrate

router = APIRouter(tags=["health"])

_CHECK_TIMEOUT_SECONDS = 2.0


@router.get("/")
async def root() -> dict[str, str]:
    """What this service is, and where to look next."""
    return {"service": "crp-gateway", "version": __version__, "health": "/health"}


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers. Checks nothing else."""
    return {"status": "ok"}


async def _check_store(runtime: Runtime) -> str:
    async with runtime.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    return "ok"


async def _check_migrations(runtime: Runtime) -> str:
    current = await migrate.current_revision(runtime.engine)
    head = migrate.head_revision()
    if current != head:
        return f"error: schema at {current or 'none'}, code expects {head}"
    return "ok"


async def _check_redis(runtime: Runtime) -> str:
    await runtime.state.ping()
    return "ok"


async def _run_check(check: Any, runtime: Runtime) -> str:
    try:
        result: str = await asyncio.wait_for(check(runtime), _CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return "error: timed out"
    except Exception as exc:  # noqa: BLE001 - any failure is the check's answer
        return f"error: {type(exc).__name__}"
    return result


@router.get("/ready", response_model=None)
async def ready(runtime: RuntimeDep) -> dict[str, Any] | JSONResponse:
    """Readiness: the store (and Redis, if configured) answer; schema is current."""
    checks = {"store": _check_store}
    if runtime.settings.redis_url is not None:
        checks["redis"] = _check_redis
    results = dict(
        zip(
            checks,
            await asyncio.gather(*(_run_check(c, runtime) for c in checks.values())),
            strict=True,
        )
    )
    if results["store"] == "ok":
        results["migrations"] = await _run_check(_check_migrations, runtime)
    else:
        results["migrations"] = "error: store unreachable"
    if all(value == "ok" for value in results.values()):
        return {"status": "ready", "checks": results}
    failing = sorted(name for name, value in results.items() if value != "ok")
    return JSONResponse(
        status_code=503,
        content={"status": "unavailable", "failing": failing, "checks": results},
    )
