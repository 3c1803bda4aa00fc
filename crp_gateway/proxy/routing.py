"""Which of a tenant's providers serves a model name.

In order: ``provider/model`` names a registered provider explicitly (the rest,
slashes and all, is the provider's model id); otherwise the provider whose
default model is exactly the name; then the model family (``gpt-*``, ``o1``..
``o4``, ``chatgpt-*``, ``text-embedding-*`` to the ``openai`` provider,
``claude-*`` to ``anthropic``); then the tenant's only provider. A
``prefix/model`` whose prefix is no registered provider is 404 ``model_not_found``
rather than a guess.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from crp_gateway.errors import InvalidRequest, NotFound
from crp_gateway.providers.kinds import ProviderKind
from crp_gateway.providers.upstream import Upstream

_OPENAI_FAMILY = re.compile(r"^(?:gpt-|chatgpt-|text-embedding-|o[1-9](?:$|-))")
_ANTHROPIC_FAMILY = re.compile(r"^claude-")

NO_PROVIDER_MESSAGE = (
    "No provider is configured for this tenant. Add your own key with "
    "POST /v1/providers/openai, POST /v1/providers/anthropic or "
    "POST /v1/providers/custom, then call again."
)


@dataclass(frozen=True, slots=True)
class Route:
    upstream: Upstream
    model: str


def _family(model: str) -> ProviderKind | None:
    if _OPENAI_FAMILY.match(model):
        return ProviderKind.OPENAI
    if _ANTHROPIC_FAMILY.match(model):
        return ProviderKind.ANTHROPIC
    return None


def route(upstreams: Sequence[Upstream], model: str) -> Route:
    if not upstreams:
        raise InvalidRequest(NO_PROVIDER_MESSAGE, code="no_provider_configured")
    by_name = {upstream.name: upstream for upstream in upstreams}
    prefix, slash, rest = model.partition("/")
    if slash and prefix in by_name and rest:
        return Route(by_name[prefix], rest)
    for upstream in upstreams:
        if upstream.default_model == model:
            return Route(upstream, model)
    if slash:
        raise NotFound(
            f"No provider named {prefix!r} is registered; use one of "
            f"{sorted(by_name)} as the prefix.",
            code="model_not_found",
            param="model",
        )
    family = _family(model)
    if family is not None and family.value in by_name:
        return Route(by_name[family.value], model)
    if len(upstreams) == 1:
        return Route(upstreams[0], model)
    raise NotFound(
        f"No provider is chosen for model {model!r}; name one as provider/model "
        f"with a provider from {sorted(by_name)}.",
        code="model_not_found",
        param="model",
    )
