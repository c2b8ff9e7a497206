"""The element catalog and hub metadata; credentials accepted but not required (D18)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from hubgate.deps import RuntimeDep
from hubgate.elements.registry import HUBS
from hubgate.elements.schemas import (
    ConfigEntryRead,
    ElementMetadataRead,
    ElementRead,
    HubRead,
    config_entry,
    element_full,
    element_metadata,
    hub_json,
)
from hubgate.kit.errors import HubgateError
from hubgate.openapi_doc import ok

router = APIRouter(tags=["elements"])


@router.get("/elements", response_model=None, responses=ok(list[ElementRead]))
async def list_elements(runtime: RuntimeDep) -> list[dict[str, Any]]:
    return [element_full(e.manifest) for e in runtime.registry]


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
async def element_metadata_route(key_or_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    return element_metadata(runtime.registry.get(key_or_id).manifest)


@router.get("/hubs", response_model=None, responses=ok(list[HubRead]))
async def list_hubs() -> list[dict[str, Any]]:
    return [hub_json(h) for h in HUBS.values()]


@router.get("/hubs/keys")
async def hub_keys() -> list[str]:
    return list(HUBS)


def _hub(key: str) -> Any:
    hub = HUBS.get(key)
    if hub is None:
        raise HubgateError(404, f"No hub found with key {key}")
    return hub


@router.get("/hubs/{key}", response_model=None, responses=ok(HubRead))
async def get_hub(key: str) -> dict[str, Any]:
    return hub_json(_hub(key), full=True)


@router.get("/hubs/{key}/elements", response_model=None, responses=ok(list[ElementRead]))
async def hub_elements(key: str, runtime: RuntimeDep) -> list[dict[str, Any]]:
    return [element_full(e.manifest) for e in runtime.registry.in_hub(_hub(key).key)]
