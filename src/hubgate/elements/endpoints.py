"""The element catalog and hub metadata; credentials accepted but not required (D18)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request

from hubgate.deps import CredentialsDep, RuntimeDep, SessionDep
from hubgate.elements.manifest import Manifest
from hubgate.elements.schemas import (
    ConfigEntryRead,
    ElementMetadataRead,
    ElementRead,
    HubRead,
    OAuthUrlRead,
    ObjectEntry,
    ObjectMetadataRead,
    ObjectRead,
    config_entry,
    element_full,
    element_metadata,
    hub_json,
    object_json,
    object_metadata,
    objects_of,
)
from hubgate.instances import oauth
from hubgate.instances.service import by_token
from hubgate.kit.errors import HubgateError
from hubgate.openapi_doc import ok
from hubgate.runtime import Runtime
from hubgate.tenants.auth import Credentials

router = APIRouter(tags=["elements"])


@router.get("/elements", response_model=None, responses=ok(list[ElementRead]))
async def list_elements(runtime: RuntimeDep) -> list[dict[str, Any]]:
    return [element_full(e.manifest) for e in runtime.registry]


ExpandQuery = Annotated[
    bool, Query(description="Add the catalog fields and every resource's operations")
]


@router.get("/elements/metadata", response_model=None, responses=ok(list[ElementMetadataRead]))
async def all_element_metadata(runtime: RuntimeDep, expand: ExpandQuery = False) -> list[Any]:
    return [element_metadata(e.manifest, expand=expand) for e in runtime.registry]


@router.get("/elements/keys")
async def element_keys(runtime: RuntimeDep) -> list[str]:
    return runtime.registry.keys()


@router.get("/elements/{key_or_id}", response_model=None, responses=ok(ElementRead))
async def get_element(key_or_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    return element_full(runtime.registry.get(key_or_id).manifest)


@router.get(
    "/elements/{key_or_id}/configuration",
    response_model=None,
    responses=ok(list[ConfigEntryRead]),
)
async def element_configuration(key_or_id: str, runtime: RuntimeDep) -> list[dict[str, Any]]:
    return [config_entry(e) for e in runtime.registry.get(key_or_id).manifest.configuration]


@router.get(
    "/elements/{key_or_id}/metadata", response_model=None, responses=ok(ElementMetadataRead)
)
async def element_metadata_route(
    key_or_id: str, runtime: RuntimeDep, expand: ExpandQuery = False
) -> dict[str, Any]:
    return element_metadata(runtime.registry.get(key_or_id).manifest, expand=expand)


@router.get("/elements/{key_or_id}/oauth/url", response_model=None, responses=ok(OAuthUrlRead))
async def oauth_url(
    key_or_id: str,
    request: Request,
    runtime: RuntimeDep,
    api_key: Annotated[str | None, Query(alias="apiKey")] = None,
    api_secret: Annotated[str | None, Query(alias="apiSecret")] = None,
    callback_url: Annotated[str | None, Query(alias="callbackUrl")] = None,
    scope: Annotated[str | None, Query()] = None,
    state: Annotated[str | None, Query()] = None,
) -> dict[str, str]:
    """Where a person consents to an OAuth element's access (D56); the URL overrides
    ``base.url``, ``oauth.authorization.url`` and ``oauth.token.url`` may be given too."""
    given = {
        "apiKey": api_key,
        "apiSecret": api_secret,
        "callbackUrl": callback_url,
        "scope": scope,
        "state": state,
    }
    for key in oauth.URL_OVERRIDES:
        given[key] = request.query_params.get(key)
    query = {k: v for k, v in given.items() if v}
    return oauth.authorize_url(runtime, runtime.registry.get(key_or_id), query)


def _hub_resources(runtime: Runtime, hub: str) -> list[str]:
    found: dict[str, None] = {}
    for element in runtime.registry.in_hub(hub):
        found.update(dict.fromkeys(r.path for r in element.manifest.resources))
    return list(found)


@router.get("/hubs", response_model=None, responses=ok(list[HubRead]))
async def list_hubs(
    runtime: RuntimeDep,
    hydrate: Annotated[bool, Query(description="Add each hub's resources (D52)")] = False,
) -> list[dict[str, Any]]:
    return [
        hub_json(h, resources=_hub_resources(runtime, h.key) if hydrate else None)
        for h in runtime.registry.hubs.values()
    ]


@router.get("/hubs/keys")
async def hub_keys(runtime: RuntimeDep) -> list[str]:
    return list(runtime.registry.hubs)


def _hub(runtime: Runtime, key: str) -> Any:
    hub = runtime.registry.hubs.get(key)
    if hub is None:
        raise HubgateError(404, f"No hub found with key {key}")
    return hub


@router.get("/hubs/{key}", response_model=None, responses=ok(HubRead))
async def get_hub(key: str, runtime: RuntimeDep) -> dict[str, Any]:
    return hub_json(_hub(runtime, key), full=True)


@router.get("/hubs/{key}/elements", response_model=None, responses=ok(list[ElementRead]))
async def hub_elements(key: str, runtime: RuntimeDep) -> list[dict[str, Any]]:
    return [element_full(e.manifest) for e in runtime.registry.in_hub(_hub(runtime, key).key)]


# Discovery (D50): the objects of the Element token's instance. The hub segment of the
# /hubs/{hub}/objects spelling is ignored, as it is on hub calls.

HeliumHeader = Annotated[
    str | None,
    Header(alias="Elements-Version", description="Helium: objects with name, vendorName, type"),
]


async def _token_manifest(
    session: SessionDep, runtime: Runtime, credentials: Credentials
) -> Manifest:
    instance = await by_token(session, runtime, credentials)
    return runtime.registry.get(instance.element_key).manifest


def _object(manifest: Manifest, name: str) -> ObjectEntry:
    for entry in objects_of(manifest):
        if entry.name == name:
            return entry
    raise HubgateError(404, f"No object {name} in element {manifest.key}")


async def _objects(
    session: SessionDep, runtime: Runtime, credentials: Credentials, version: str | None
) -> list[Any]:
    entries = objects_of(await _token_manifest(session, runtime, credentials))
    if version is not None and version.casefold() == "helium":
        return [object_json(e) for e in entries]
    return [e.name for e in entries]


async def _metadata(
    session: SessionDep, runtime: Runtime, credentials: Credentials, name: str
) -> dict[str, Any]:
    manifest = await _token_manifest(session, runtime, credentials)
    return object_metadata(_object(manifest, name))


@router.get(
    "/objects",
    tags=["objects"],
    response_model=None,
    responses=ok(list[str] | list[ObjectRead], "Names; with Elements-Version: Helium, objects"),
)
async def list_objects(
    session: SessionDep,
    runtime: RuntimeDep,
    credentials: CredentialsDep,
    version: HeliumHeader = None,
) -> list[Any]:
    return await _objects(session, runtime, credentials, version)


@router.get(
    "/hubs/{hub}/objects",
    tags=["objects"],
    response_model=None,
    responses=ok(list[str] | list[ObjectRead], "Names; with Elements-Version: Helium, objects"),
)
async def list_hub_objects(
    hub: str,
    session: SessionDep,
    runtime: RuntimeDep,
    credentials: CredentialsDep,
    version: HeliumHeader = None,
) -> list[Any]:
    return await _objects(session, runtime, credentials, version)


@router.get(
    "/objects/{name}/metadata",
    tags=["objects"],
    response_model=None,
    responses=ok(ObjectMetadataRead),
)
async def object_metadata_route(
    name: str, session: SessionDep, runtime: RuntimeDep, credentials: CredentialsDep
) -> dict[str, Any]:
    return await _metadata(session, runtime, credentials, name)


@router.get(
    "/hubs/{hub}/objects/{name}/metadata",
    tags=["objects"],
    response_model=None,
    responses=ok(ObjectMetadataRead),
)
async def hub_object_metadata(
    hub: str, name: str, session: SessionDep, runtime: RuntimeDep, credentials: CredentialsDep
) -> dict[str, Any]:
    return await _metadata(session, runtime, credentials, name)
