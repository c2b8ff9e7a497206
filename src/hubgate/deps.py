"""FastAPI dependencies shared by every domain's endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.db.tenancy import Tenant
from hubgate.errors_http import describe_validation
from hubgate.kit.errors import HubgateError
from hubgate.kit.jsonbody import parse_json_body
from hubgate.runtime import Runtime
from hubgate.tenants.auth import Credentials, parse_authorization
from hubgate.tenants.service import authenticate_user

M = TypeVar("M", bound=BaseModel)


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    # Endpoints commit explicitly before they answer, so that a 200 always means "saved";
    # whatever is left uncommitted here is rolled back.
    async with get_runtime(request).sessions() as session:
        yield session


# Closed when the endpoint returns, before the answer is sent: the audit log (hub.logs) takes
# a connection of its own as the answer starts, and a request still holding its first one
# then needed two at once. Under load every connection of the pool was held by a request
# waiting for a second: creates took the pool timeout (30 s) and then failed (issue 6).
_session = Depends(get_session, scope="function")


def get_credentials(request: Request) -> Credentials:
    return credentials_from(request, request.headers.get("authorization"))


def credentials_from(request: Request, header: str | None) -> Credentials:
    """``get_credentials`` of an ``Authorization`` header already read (a hub call reads the
    headers it needs in one pass, D531)."""
    if header is not None:
        get_runtime(request).limits.check_client(request)
    return parse_authorization(header)


async def get_tenant(
    request: Request,
    session: Annotated[AsyncSession, _session],
    credentials: Annotated[Credentials, Depends(get_credentials)],
) -> Tenant:
    tenant = await authenticate_user(session, get_runtime(request).keyring, credentials)
    request.state.tenant = tenant
    return tenant


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SessionDep = Annotated[AsyncSession, _session]
CredentialsDep = Annotated[Credentials, Depends(get_credentials)]
TenantDep = Annotated[Tenant, Depends(get_tenant)]


async def read_json(request: Request, model: type[M]) -> M:
    """Parse a JSON body into ``model``: 415 for other content types, 400 for bad JSON.

    Done by hand rather than by FastAPI's body parameters so that the content type is
    enforced and every failure gets a D9 message that names the offending field.
    """
    content_type = request.headers.get("content-type", "application/json")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise HubgateError(415, f"Unsupported content type {media_type!r}; send application/json")
    raw = await request.body()
    data = parse_json_body(raw) if raw else {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise HubgateError(400, describe_validation(exc.errors())) from None
