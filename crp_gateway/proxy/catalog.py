"""``GET /v1/models``: the models reachable through a tenant's providers.

Each provider contributes its default model and, when its own model list
answers, that list (cached for a few minutes per provider and key version).
Every model appears twice: plain, and as ``provider/model`` (which always
routes to that provider). A provider whose list fails is still listed by its
default model.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from crp_gateway.errors import GatewayError
from crp_gateway.providers import wire
from crp_gateway.providers.upstream import Upstream, UpstreamClients

_TTL_SECONDS = 300.0
_MAX_ENTRIES = 10_000


class ModelCatalog:
    def __init__(self, clients: UpstreamClients, *, ttl: float = _TTL_SECONDS) -> None:
        self._clients = clients
        self._ttl = ttl
        self._cache: dict[tuple[str, str, int, str], tuple[float, list[str]]] = {}

    async def _upstream_models(self, tenant_id: str, upstream: Upstream) -> list[str]:
        key = (tenant_id, upstream.name, upstream.key_version, upstream.base_url)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            _raw, parsed, _response = await wire.request_json(
                self._clients, upstream, "GET", "models"
            )
            data = parsed.get("data") if isinstance(parsed, dict) else None
            models = [
                item["id"]
                for item in data or []
                if isinstance(item, dict) and isinstance(item.get("id"), str)
            ]
        except GatewayError:
            models = []  # the default model still lists the provider
        if len(self._cache) >= _MAX_ENTRIES:
            self._cache.clear()
        self._cache[key] = (time.monotonic() + self._ttl, models)
        return models

    async def list_models(
        self, tenant_id: str, upstreams: tuple[Upstream, ...]
    ) -> dict[str, Any]:
        lists = await asyncio.gather(
            *(self._upstream_models(tenant_id, upstream) for upstream in upstreams)
        )
        data: list[dict[str, Any]] = []
        seen: set[str] = set()
        for upstream, models in zip(upstreams, lists, strict=True):
            for model in dict.fromkeys([upstream.default_model, *models]):
                for model_id in (model, f"{upstream.name}/{model}"):
                    if model_id not in seen:
                        seen.add(model_id)
                        data.append(
                            {
                                "id": model_id,
                                "object": "model",
                                "created": 0,
                                "owned_by": upstream.name,
                            }
                        )
        return {"object": "list", "data": data}
