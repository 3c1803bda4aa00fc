"""FastAPI dependencies: the runtime, a database session, the authenticated caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from crp_gateway.auth.authenticator import Principal
from crp_gateway.auth.keys import Role
from crp_gateway.errors import AuthenticationFailed, PermissionDenied
from crp_gateway.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    # async on purpose: FastAPI runs a plain ``def`` dependency in a worker
    # thread, a hop that cost every request about a tenth of a millisecond.
    runtime: Runtime = request.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """A session in one transaction: committed if the route returns normally."""
    async with runtime.sessions() as session, session.begin():
        yield session


#: ``scope="function"`` commits before the response is sent, so a 2xx always
#: means the change is durable (the default scope would commit after sending).
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def bearer_token(request: Request) -> str | None:
    """The credential from ``Authorization: Bearer`` or Anthropic's ``x-api-key``."""
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None
    return request.headers.get("x-api-key")


async def get_principal(request: Request, runtime: RuntimeDep) -> Principal:
    token = bearer_token(request)
    if not token:
        raise AuthenticationFailed(
            "Missing API key: send `Authorization: Bearer crp_gw_...`.",
            code="missing_api_key",
        )
    principal = await runtime.keys.authenticate(token)
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_admin(principal: PrincipalDep) -> Principal:
    if principal.role is not Role.ADMIN:
        raise PermissionDenied(
            "This endpoint needs an admin key; this key has the inference role.",
            code="insufficient_role",
        )
    return principal


AdminDep = Annotated[Principal, Depends(get_admin)]


async def client_address(request: Request) -> str:
    """The caller's address as Uvicorn resolved it (trusted proxy headers only)."""
    return request.client.host if request.client else "unknown"


ClientAddressDep = Annotated[str, Depends(client_address)]
