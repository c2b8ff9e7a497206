"""The instance API (D11-D17): routes only; rules live in the service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
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
        owner_email=await InstanceRepository(session).owner_email(instance),
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


@router.get(
    "/instances",
    response_model=None,
    responses=ok(list[InstanceRead] | InstanceRead, "A list; with an Element token, one"),
)
async def list_instances(
    session: SessionDep,
    runtime: RuntimeDep,
    credentials: CredentialsDep,
    tags: TagsQuery,
) -> Any:
    """The caller's instances, or with an ``Element`` token, that one instance."""
    if credentials.element is not None:
        return await _present(session, runtime, await _by_token(session, runtime, credentials))
    tenant = await authenticate_user(session, runtime.keyring, credentials)
    found = await InstanceRepository(session).list(tenant, tags=_tag_filter(tags))
    return [await _present(session, runtime, i) for i in found]


@router.get(
    "/elements/{key_or_id}/instances", response_model=None, responses=ok(list[InstanceRead])
)
async def list_element_instances(
    key_or_id: str,
    session: SessionDep,
    runtime: RuntimeDep,
    tenant: TenantDep,
    tags: TagsQuery,
) -> list[Json]:
    element = runtime.registry.get(key_or_id)
    found = await InstanceRepository(session).list(
        tenant, tags=_tag_filter(tags), element_key=element.key
    )
    return [await _present(session, runtime, i) for i in found]


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


# By id, within the caller's tenant; another tenant's instance is a 404 (D4).


@router.get("/instances/{instance_id:int}", response_model=None, responses=ok(InstanceRead))
async def get_instance(
    instance_id: int, session: SessionDep, runtime: RuntimeDep, tenant: TenantDep
) -> Json:
    instance = await service.get_owned(session, tenant, instance_id)
    return await _present(session, runtime, instance)


@router.put(
    "/instances/{instance_id:int}",
    response_model=None,
    responses=ok(InstanceRead, vendor=True),
    openapi_extra=json_body(InstancePatch),
)
async def replace_instance(
    instance_id: int, request: Request, session: SessionDep, runtime: RuntimeDep, tenant: TenantDep
) -> Json:
    instance = await service.get_owned(session, tenant, instance_id)
    return await _update(request, session, runtime, instance, replace=True)


@router.patch(
    "/instances/{instance_id:int}",
    response_model=None,
    responses=ok(InstanceRead, vendor=True),
    openapi_extra=json_body(InstancePatch),
)
async def patch_instance(
    instance_id: int, request: Request, session: SessionDep, runtime: RuntimeDep, tenant: TenantDep
) -> Json:
    instance = await service.get_owned(session, tenant, instance_id)
    return await _update(request, session, runtime, instance, replace=False)


@router.delete("/instances/{instance_id:int}", response_model=None, responses=ok(Deleted))
async def delete_instance(instance_id: int, session: SessionDep, tenant: TenantDep) -> Json:
    return await _delete(session, await service.get_owned(session, tenant, instance_id))


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
