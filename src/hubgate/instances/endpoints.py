"""The instance API (D11-D17): routes only; rules live in the service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.db.tenancy import Tenant
from hubgate.deps import CredentialsDep, RuntimeDep, SessionDep, TenantDep, read_json
from hubgate.instances import configuration as cfg
from hubgate.instances import service
from hubgate.instances.models import Instance
from hubgate.instances.presenter import configuration_entries, configuration_entry, instance_json
from hubgate.instances.repository import InstanceRepository
from hubgate.instances.schemas import (
    ConfigurationEntryRead,
    ConfigurationPatch,
    Deleted,
    InstanceCount,
    InstanceCreate,
    InstancePatch,
    InstanceRead,
)
from hubgate.kit.errors import HubgateError
from hubgate.openapi_doc import json_body, ok
from hubgate.runtime import Runtime
from hubgate.tenants.auth import Credentials
from hubgate.tenants.service import authenticate_user

router = APIRouter(tags=["instances"])

Json = dict[str, Any]
TagsQuery = Annotated[list[str], Query(alias="tags[]", max_length=50, default_factory=list)]


def _tag_filter(tags: list[str]) -> list[str]:
    # Cleaned as stored tags are (D17), which also keeps NUL and control characters, which
    # PostgreSQL cannot hold in JSON, away from the query.
    return cfg.clean_tags(tags)


async def _present(session: AsyncSession, runtime: Runtime, instance: Instance) -> Json:
    return instance_json(
        instance,
        runtime.registry.get(instance.element_key),
        runtime.keyring,
        owner=await InstanceRepository(session).owner(instance),
        base_url=runtime.settings.base_url,
    )


async def _by_token(
    session: AsyncSession,
    runtime: Runtime,
    credentials: Credentials,
    *,
    allow_disabled: bool = False,
) -> Instance:
    return await service.by_token(session, runtime, credentials, allow_disabled=allow_disabled)


async def _create(
    request: Request,
    session: AsyncSession,
    runtime: Runtime,
    tenant: Tenant,
    path_key: str | None,
) -> Json:
    body = await read_json(request, InstanceCreate)
    instance, _ = await service.provision(session, runtime, tenant, body, path_key=path_key)
    await session.commit()
    await session.refresh(instance)
    return await _present(session, runtime, instance)


@router.post(
    "/instances",
    response_model=None,
    responses=ok(InstanceRead, vendor=True),
    openapi_extra=json_body(InstanceCreate),
)
async def create_instance(
    request: Request, session: SessionDep, runtime: RuntimeDep, tenant: TenantDep
) -> Json:
    return await _create(request, session, runtime, tenant, None)


@router.post(
    "/elements/{key_or_id}/instances",
    response_model=None,
    responses=ok(InstanceRead, vendor=True),
    openapi_extra=json_body(InstanceCreate),
)
async def create_element_instance(
    key_or_id: str, request: Request, session: SessionDep, runtime: RuntimeDep, tenant: TenantDep
) -> Json:
    return await _create(request, session, runtime, tenant, key_or_id)


SearchQuery = Annotated[
    str | None,
    Query(alias="searchText", max_length=200, description="A part of the name, any case"),
]


async def _search(
    session: AsyncSession,
    runtime: Runtime,
    tenant: Tenant,
    tags: list[str],
    search: str | None,
    element_key: str | None = None,
) -> list[Json]:
    text = cfg.clean_text(search, "searchText") if search else None
    found = await InstanceRepository(session).list(
        tenant, tags=_tag_filter(tags), search=text, element_key=element_key
    )
    if not found and (tags or search is not None):
        # Open Connectors answers a search that finds nothing with 404, a plain list with [] (D47).
        raise HubgateError(404, "No instances found matching the search")
    return [await _present(session, runtime, i) for i in found]


@router.get(
    "/instances",
    response_model=None,
    responses=ok(list[InstanceRead] | InstanceRead, "A list; with an Element token alone, one"),
)
async def list_instances(
    session: SessionDep,
    runtime: RuntimeDep,
    credentials: CredentialsDep,
    tags: TagsQuery,
    search: SearchQuery = None,
) -> Any:
    """The caller's instances; with an ``Element`` token and no User/Organization, that one."""
    if credentials.user is None and credentials.organization is None:
        return await _present(session, runtime, await _by_token(session, runtime, credentials))
    # Beside User and Organization, an Element token does not narrow the list (D47).
    tenant = await authenticate_user(session, runtime.keyring, credentials)
    return await _search(session, runtime, tenant, tags, search)


@router.get(
    "/elements/{key_or_id}/instances", response_model=None, responses=ok(list[InstanceRead])
)
async def list_element_instances(
    key_or_id: str,
    session: SessionDep,
    runtime: RuntimeDep,
    tenant: TenantDep,
    tags: TagsQuery,
    search: SearchQuery = None,
) -> list[Json]:
    element = runtime.registry.get(key_or_id)
    return await _search(session, runtime, tenant, tags, search, element.key)


@router.get("/instances/count", response_model=None, responses=ok(InstanceCount))
async def count_instances(session: SessionDep, runtime: RuntimeDep, tenant: TenantDep) -> Json:
    """How many instances the caller has, in all and per element (D51)."""
    counts = await InstanceRepository(session).count_by_element(tenant)
    per_element = []
    for key, count in counts:
        element = runtime.registry.find(key)
        # An instance of an element no longer installed still counts, with no element id.
        element_id = element.id if element is not None else None
        per_element.append({"elementKey": key, "elementId": element_id, "count": count})
    return {"totalInstances": sum(c for _, c in counts), "elementInstances": per_element}


async def _update(
    request: Request, session: AsyncSession, runtime: Runtime, instance: Instance, *, replace: bool
) -> Json:
    body = await read_json(request, InstancePatch)
    await service.update(session, runtime, instance, body, replace=replace)
    await session.commit()
    return await _present(session, runtime, instance)


async def _delete(session: AsyncSession, instance: Instance) -> Json:
    await service.delete(session, instance)
    await session.commit()
    return {}


async def _set_enabled(
    session: AsyncSession, runtime: Runtime, instance: Instance, enabled: bool
) -> Json:
    await service.set_enabled(session, instance, enabled)
    await session.commit()
    return await _present(session, runtime, instance)


async def _configuration_entry(instance: Instance, runtime: Runtime, config_id: int) -> Json:
    element = runtime.registry.get(instance.element_key)
    for entry in configuration_entries(instance, element):
        if entry["id"] == config_id:
            return entry
    raise HubgateError(404, f"No configuration found with id {config_id}")


async def _patch_configuration(
    request: Request, session: AsyncSession, runtime: Runtime, instance: Instance, config_id: int
) -> Json:
    entry = await _configuration_entry(instance, runtime, config_id)
    body = await read_json(request, ConfigurationPatch)
    patch = InstancePatch(configuration={entry["key"]: body.property_value})
    element = await service.update(session, runtime, instance, patch, replace=False)
    await session.commit()
    value = (await _configuration_entry(instance, runtime, config_id))["propertyValue"]
    return configuration_entry(element, config_id, entry["key"], value)


# Token-scoped variants: the instance is the one the Element token names (D15).


@router.put(
    "/instances",
    response_model=None,
    responses=ok(InstanceRead, vendor=True),
    openapi_extra=json_body(InstancePatch),
)
async def replace_token_instance(
    request: Request, session: SessionDep, runtime: RuntimeDep, credentials: CredentialsDep
) -> Json:
    instance = await _by_token(session, runtime, credentials)
    return await _update(request, session, runtime, instance, replace=True)


@router.patch(
    "/instances",
    response_model=None,
    responses=ok(InstanceRead, vendor=True),
    openapi_extra=json_body(InstancePatch),
)
async def patch_token_instance(
    request: Request, session: SessionDep, runtime: RuntimeDep, credentials: CredentialsDep
) -> Json:
    instance = await _by_token(session, runtime, credentials)
    return await _update(request, session, runtime, instance, replace=False)


@router.delete("/instances", response_model=None, responses=ok(Deleted))
async def delete_token_instance(
    session: SessionDep, runtime: RuntimeDep, credentials: CredentialsDep
) -> Json:
    return await _delete(session, await _by_token(session, runtime, credentials))


@router.get(
    "/instances/configuration", response_model=None, responses=ok(list[ConfigurationEntryRead])
)
async def token_configuration(
    session: SessionDep, runtime: RuntimeDep, credentials: CredentialsDep
) -> list[Json]:
    instance = await _by_token(session, runtime, credentials)
    return configuration_entries(instance, runtime.registry.get(instance.element_key))


@router.get(
    "/instances/configuration/{config_id:int}",
    response_model=None,
    responses=ok(ConfigurationEntryRead),
)
async def token_configuration_entry(
    config_id: int, session: SessionDep, runtime: RuntimeDep, credentials: CredentialsDep
) -> Json:
    instance = await _by_token(session, runtime, credentials)
    return await _configuration_entry(instance, runtime, config_id)


@router.patch(
    "/instances/configuration/{config_id:int}",
    response_model=None,
    responses=ok(ConfigurationEntryRead, vendor=True),
    openapi_extra=json_body(ConfigurationPatch),
)
async def patch_token_configuration_entry(
    config_id: int,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    credentials: CredentialsDep,
) -> Json:
    instance = await _by_token(session, runtime, credentials)
    return await _patch_configuration(request, session, runtime, instance, config_id)


@router.put("/instances/enabled", response_model=None, responses=ok(InstanceRead))
async def enable_token_instance(
    session: SessionDep, runtime: RuntimeDep, credentials: CredentialsDep
) -> Json:
    instance = await _by_token(session, runtime, credentials, allow_disabled=True)
    return await _set_enabled(session, runtime, instance, True)


@router.delete("/instances/enabled", response_model=None, responses=ok(InstanceRead))
async def disable_token_instance(
    session: SessionDep, runtime: RuntimeDep, credentials: CredentialsDep
) -> Json:
    instance = await _by_token(session, runtime, credentials, allow_disabled=True)
    return await _set_enabled(session, runtime, instance, False)


# By id, within the caller's tenant; another tenant's instance is a 404 (D4). The same four
# routes also answer under /elements/{keyOrId}/instances/{id} (D45): one router, included twice.


async def instance_ref(
    instance_id: int, request: Request, session: SessionDep, runtime: RuntimeDep, tenant: TenantDep
) -> Instance:
    """The caller's instance ``{id}``; under ``/elements/{keyOrId}`` it must be of that element."""
    instance = await service.get_owned(session, tenant, instance_id)
    key_or_id = request.path_params.get("key_or_id")
    if key_or_id is not None and runtime.registry.get(key_or_id).key != instance.element_key:
        raise HubgateError(404, f"No instance found with id {instance_id}")
    return instance


def _element_path(key_or_id: str) -> str:
    # Declares the path parameter once for the routes included under /elements/{keyOrId};
    # instance_ref reads and checks it after the caller is authenticated.
    return key_or_id


InstanceRefDep = Annotated[Instance, Depends(instance_ref)]
by_id = APIRouter()


@by_id.get("/{instance_id:int}", response_model=None, responses=ok(InstanceRead))
async def get_instance(instance: InstanceRefDep, session: SessionDep, runtime: RuntimeDep) -> Json:
    return await _present(session, runtime, instance)


@by_id.put(
    "/{instance_id:int}",
    response_model=None,
    responses=ok(InstanceRead, vendor=True),
    openapi_extra=json_body(InstancePatch),
)
async def replace_instance(
    instance: InstanceRefDep, request: Request, session: SessionDep, runtime: RuntimeDep
) -> Json:
    return await _update(request, session, runtime, instance, replace=True)


@by_id.patch(
    "/{instance_id:int}",
    response_model=None,
    responses=ok(InstanceRead, vendor=True),
    openapi_extra=json_body(InstancePatch),
)
async def patch_instance(
    instance: InstanceRefDep, request: Request, session: SessionDep, runtime: RuntimeDep
) -> Json:
    return await _update(request, session, runtime, instance, replace=False)


@by_id.delete("/{instance_id:int}", response_model=None, responses=ok(Deleted))
async def delete_instance(instance: InstanceRefDep, session: SessionDep) -> Json:
    return await _delete(session, instance)


router.include_router(by_id, prefix="/instances")
router.include_router(
    by_id, prefix="/elements/{key_or_id}/instances", dependencies=[Depends(_element_path)]
)


@router.get(
    "/instances/{instance_id:int}/configuration",
    response_model=None,
    responses=ok(list[ConfigurationEntryRead]),
)
async def instance_configuration(
    instance_id: int, session: SessionDep, runtime: RuntimeDep, tenant: TenantDep
) -> list[Json]:
    instance = await service.get_owned(session, tenant, instance_id)
    return configuration_entries(instance, runtime.registry.get(instance.element_key))


@router.get(
    "/instances/{instance_id:int}/configuration/{config_id:int}",
    response_model=None,
    responses=ok(ConfigurationEntryRead),
)
async def instance_configuration_entry(
    instance_id: int, config_id: int, session: SessionDep, runtime: RuntimeDep, tenant: TenantDep
) -> Json:
    instance = await service.get_owned(session, tenant, instance_id)
    return await _configuration_entry(instance, runtime, config_id)


@router.patch(
    "/instances/{instance_id:int}/configuration/{config_id:int}",
    response_model=None,
    responses=ok(ConfigurationEntryRead, vendor=True),
    openapi_extra=json_body(ConfigurationPatch),
)
async def patch_instance_configuration_entry(
    instance_id: int,
    config_id: int,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    tenant: TenantDep,
) -> Json:
    instance = await service.get_owned(session, tenant, instance_id)
    return await _patch_configuration(request, session, runtime, instance, config_id)


@router.put(
    "/instances/{instance_id:int}/enabled",
    response_model=None,
    responses=ok(InstanceRead),
)
async def enable_instance(
    instance_id: int, session: SessionDep, runtime: RuntimeDep, tenant: TenantDep
) -> Json:
    instance = await service.get_owned(session, tenant, instance_id)
    return await _set_enabled(session, runtime, instance, True)


@router.delete(
    "/instances/{instance_id:int}/enabled", response_model=None, responses=ok(InstanceRead)
)
async def disable_instance(
    instance_id: int, session: SessionDep, runtime: RuntimeDep, tenant: TenantDep
) -> Json:
    instance = await service.get_owned(session, tenant, instance_id)
    return await _set_enabled(session, runtime, instance, False)
