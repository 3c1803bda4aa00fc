"""``GET /.well-known/crp-gateway.json``: CRP service discovery."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from crp_gateway.api.deps import RuntimeDep
from crp_gateway.audit import sessions
from crp_gateway.governance.discovery import discovery_document
from crp_gateway.providers.kinds import ProviderKind

router = APIRouter(tags=["crp"])


@router.get("/.well-known/crp-gateway.json")
async def crp_discovery(runtime: RuntimeDep) -> dict[str, Any]:
    """CRP discovery: version, headers, signal methods and weights, HMAC encoding."""
    return discovery_document(
        gateway_url=runtime.settings.crp_gateway_url,
        providers=[kind.value for kind in ProviderKind],
        max_fan_out=sessions.DEFAULT_LIMITS.max_fan_out,
        max_dag_nodes=sessions.DEFAULT_LIMITS.max_dag_nodes,
        sessions=sessions.describe(),
    )
