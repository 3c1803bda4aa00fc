"""Provider credentials: ``/v1/providers/{openai,anthropic,custom}`` and friends.

Admin keys only. Keys travel in as :class:`pydantic.SecretStr` so that no repr,
log line or validation error can show them, and travel out only as a hint.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Response, status
from pydantic import AfterValidator, BaseModel, ConfigDict, SecretStr, StringConstraints

from crp_gateway.api.deps import AdminDep, RuntimeDep, SessionDep
from crp_gateway.providers.kinds import DEFAULT_BASE_URLS, RESERVED_NAMES, ProviderKind
from crp_gateway.services import providers
from crp_gateway.services.providers import CredentialStatus, ProviderSpec, ProviderView

router = APIRouter(prefix="/v1/providers", tags=["providers"])

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$"
_CONTROL_OR_SPACE = re.compile(r"[\s\x00-\x1f\x7f]")


def _check_api_key(value: SecretStr) -> SecretStr:
    secret = value.get_secret_value()
    if not secret or len(secret) > 4096:
        raise ValueError("must be 1 to 4096 characters")
    if _CONTROL_OR_SPACE.search(secret):
        raise ValueError("must not contain spaces or control characters")
    return value


def _check_base_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials; send the key as api_key")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query string or fragment")
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        address = None
    if address is not None and address.is_link_local:
        raise ValueError("must not point at a link-local address")
    return value.strip().rstrip("/")


ApiKey = Annotated[SecretStr, AfterValidator(_check_api_key)]
BaseUrl = Annotated[
    str, StringConstraints(max_length=2048), AfterValidator(_check_base_url)
]
ModelName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=200, pattern=r"^\S+$"
    ),
]
Organization = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]


def _not_reserved(name: str) -> str:
    if name in RESERVED_NAMES:
        raise ValueError(f"{name!r} is reserved; use POST /v1/providers/{name}")
    return name


ProviderName = Annotated[
    str, StringConstraints(pattern=SLUG_PATTERN), AfterValidator(_not_reserved)
]


class _ProviderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: ApiKey
    default_model: ModelName


class OpenAIProviderRequest(_ProviderRequest):
    base_url: BaseUrl | None = None
    organization: Organization | None = None


class AnthropicProviderRequest(_ProviderRequest):
    base_url: BaseUrl | None = None


class CustomProviderRequest(_ProviderRequest):
    name: ProviderName
    base_url: BaseUrl


class ProviderOut(BaseModel):
    id: str
    object: Literal["provider"] = "provider"
    provider: ProviderKind
    name: str
    base_url: str
    default_model: str
    organization: str | None
    key_hint: str
    status: CredentialStatus
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, view: ProviderView) -> ProviderOut:
        return cls(
            id=view.id,
            provider=view.kind,
            name=view.name,
            base_url=view.base_url,
            default_model=view.default_model,
            organization=view.organization,
            key_hint=view.key_hint,
            status=view.status,
            created_at=view.created_at,
            updated_at=view.updated_at,
        )


class ProviderList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ProviderOut]


class DeletedProvider(BaseModel):
    name: str
    object: Literal["provider"] = "provider"
    deleted: bool = True


async def _register(
    spec: ProviderSpec,
    admin: AdminDep,
    runtime: RuntimeDep,
    session: SessionDep,
    response: Response,
) -> ProviderOut:
    view, created = await providers.register(runtime, session, admin.tenant_id, spec)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return ProviderOut.of(view)


@router.post("/openai", status_code=status.HTTP_201_CREATED)
async def register_openai(
    body: OpenAIProviderRequest,
    admin: AdminDep,
    runtime: RuntimeDep,
    session: SessionDep,
    response: Response,
) -> ProviderOut:
    """Store (or rotate) the tenant's OpenAI key."""
    spec = ProviderSpec(
        kind=ProviderKind.OPENAI,
        name=ProviderKind.OPENAI.value,
        api_key=body.api_key.get_secret_value(),
        default_model=body.default_model,
        base_url=body.base_url or DEFAULT_BASE_URLS[ProviderKind.OPENAI],
        organization=body.organization,
    )
    return await _register(spec, admin, runtime, session, response)


@router.post("/anthropic", status_code=status.HTTP_201_CREATED)
async def register_anthropic(
    body: AnthropicProviderRequest,
    admin: AdminDep,
    runtime: RuntimeDep,
    session: SessionDep,
    response: Response,
) -> ProviderOut:
    """Store (or rotate) the tenant's Anthropic key."""
    spec = ProviderSpec(
        kind=ProviderKind.ANTHROPIC,
        name=ProviderKind.ANTHROPIC.value,
        api_key=body.api_key.get_secret_value(),
        default_model=body.default_model,
        base_url=body.base_url or DEFAULT_BASE_URLS[ProviderKind.ANTHROPIC],
    )
    return await _register(spec, admin, runtime, session, response)


@router.post("/custom", status_code=status.HTTP_201_CREATED)
async def register_custom(
    body: CustomProviderRequest,
    admin: AdminDep,
    runtime: RuntimeDep,
    session: SessionDep,
    response: Response,
) -> ProviderOut:
    """Store (or rotate) an OpenAI-compatible endpoint such as Ollama or vLLM."""
    spec = ProviderSpec(
        kind=ProviderKind.CUSTOM,
        name=body.name,
        api_key=body.api_key.get_secret_value(),
        default_model=body.default_model,
        base_url=body.base_url,
    )
    return await _register(spec, admin, runtime, session, response)


@router.get("")
async def list_providers(
    admin: AdminDep, runtime: RuntimeDep, session: SessionDep
) -> ProviderList:
    """The tenant's providers, with key hints only."""
    views = await providers.list_providers(runtime, session, admin.tenant_id)
    return ProviderList(data=[ProviderOut.of(view) for view in views])


NamePath = Annotated[str, Path(max_length=32)]


@router.get("/{name}")
async def get_provider(
    name: NamePath, admin: AdminDep, runtime: RuntimeDep, session: SessionDep
) -> ProviderOut:
    """One provider, with its key hint and whether its key can be decrypted."""
    view = await providers.get_provider(runtime, session, admin.tenant_id, name)
    return ProviderOut.of(view)


@router.delete("/{name}")
async def delete_provider(
    name: NamePath, admin: AdminDep, runtime: RuntimeDep, session: SessionDep
) -> DeletedProvider:
    """Delete a provider and its sealed key."""
    await providers.delete_provider(runtime, session, admin.tenant_id, name)
    return DeletedProvider(name=name)
