"""The JSON shapes of elements and hubs, as Open Connectors clients read them (D18)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from hubgate.elements.manifest import ConfigEntry, Hub, Manifest, Resource, ResourceField


def element_summary(manifest: Manifest) -> dict[str, Any]:
    """The element block embedded in every instance."""
    return {
        "id": manifest.id,
        "name": manifest.name,
        "key": manifest.key,
        "description": manifest.description,
        "image": manifest.image,
        "active": True,
        "deleted": False,
        "typeOauth": manifest.authentication_type.startswith("oauth"),
        "trialAccount": False,
        "hub": manifest.hub,
        "resources": [],
    }


def element_full(manifest: Manifest) -> dict[str, Any]:
    return {
        **element_summary(manifest),
        "authentication": {"type": manifest.authentication_type},
        "protocolType": "http",
        "private": False,
        "beta": False,
        "cloneable": False,
        "extendable": False,
        "transformationsEnabled": True,
        "bulkDownloadEnabled": False,
        "bulkUploadEnabled": False,
        "configuration": [config_entry(e) for e in manifest.configuration],
    }


def config_entry(entry: ConfigEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "key": entry.key,
        "name": entry.name,
        "description": entry.description,
        "defaultValue": entry.default_value,
        "required": entry.required,
        "type": entry.type,
        "hideFromConsole": entry.hide_from_console,
        "secret": entry.secret,
        "displayOrder": entry.display_order,
        "active": True,
        "internal": False,
    }


POLLER_CONFIGURATION_KEY = "event.poller.configuration"


def poller_defaults(manifest: Manifest) -> dict[str, Any]:
    """What the element polls when an instance says nothing else: the default of its
    ``event.poller.configuration``, as an object (D51)."""
    entry = manifest.entry(POLLER_CONFIGURATION_KEY)
    if entry is None or not entry.default_value:
        return {}
    parsed = json.loads(entry.default_value)
    return parsed if isinstance(parsed, dict) else {}


def element_metadata(manifest: Manifest, *, expand: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": manifest.id,
        "key": manifest.key,
        "name": manifest.name,
        "description": manifest.description,
        "hub": manifest.hub,
        "authentication": {"type": manifest.authentication_type},
        "events": {
            "supported": bool(manifest.event_methods),
            "methods": list(manifest.event_methods),
            "polling": poller_defaults(manifest),
        },
    }
    if expand:
        body.update(_catalog_fields(manifest))
    return body


def _catalog_fields(manifest: Manifest) -> dict[str, Any]:
    """What ``?expand=true`` adds (D51); the values say what Hubgate does, not Open
    Connectors' defaults: no transformations or bulk yet, one paging scheme for every list."""
    polled = set(poller_defaults(manifest))
    return {
        "image": manifest.image,
        "displayOrder": 0,
        "active": True,
        "beta": False,
        "transformations": [],
        "elementType": "REST",
        "normalizedPaging": True,
        "authenticationType": manifest.authentication_type,
        "cloneable": False,
        "discovery": {"objects": [o.name for o in objects_of(manifest)]},
        "bulk": {"download": False, "upload": False},
        "api": {"type": "REST", "contentType": "application/json"},
        "resources": [
            {
                "path": f"/hubs/{manifest.hub}/{resource.path}",
                "description": resource.description,
                "operations": list(resource.operations),
                "canonicalName": resource.object_name,
                "events": {
                    # A list the poller can watch, and whether it does unless told otherwise.
                    "pollable": _is_list(resource) and "polling" in manifest.event_methods,
                    "polledByDefault": resource.path in polled,
                },
            }
            for resource in manifest.resources
        ],
    }


def _is_list(resource: Resource) -> bool:
    operation = resource.operations.get("GET")
    return operation is not None and operation.list_key is not None


# --- discovery (D50) ---------------------------------------------------------------------------

ObjectType = Literal["vendor", "ceCanonical", "vdr"]


@dataclass(frozen=True)
class ObjectEntry:
    """One object ``/objects`` lists. Only ``vendor`` objects exist yet: the element's own
    resources; common resources (``ceCanonical``) and VDRs will join the same list."""

    name: str
    vendor_name: str
    type: ObjectType
    fields: tuple[ResourceField, ...]


def _vendor_name(manifest: Manifest, resource: Resource) -> str:
    # The vendor's word for the collection: the last literal segment of the URL it is read
    # from (Twilio's "Messages", "Calls"; accounts are the base URL's own "Accounts").
    operation = resource.operations.get("GET")
    base = manifest.defaults().get(manifest.base_url_key) or ""
    url = base + (operation.vendor_path if operation else "")
    for segment in reversed(url.split("?", 1)[0].split("/")):
        stem = segment.split(".", 1)[0]
        if stem and not stem.startswith("{"):
            return stem
    return resource.object_name


def objects_of(manifest: Manifest) -> list[ObjectEntry]:
    """The element's objects: its resources that declare their fields, once per name."""
    found: dict[str, ObjectEntry] = {}
    for resource in manifest.resources:
        if resource.fields and resource.object_name not in found:
            found[resource.object_name] = ObjectEntry(
                resource.object_name,
                _vendor_name(manifest, resource),
                "vendor",
                resource.fields,
            )
    return list(found.values())


def object_json(entry: ObjectEntry) -> dict[str, Any]:
    return {"name": entry.name, "vendorName": entry.vendor_name, "type": entry.type}


def object_metadata(entry: ObjectEntry) -> dict[str, Any]:
    fields: list[dict[str, Any]] = []
    for field in entry.fields:
        described: dict[str, Any] = {"vendorPath": field.name, "type": field.type}
        if field.vendor_native_type is not None:
            described["vendorNativeType"] = field.vendor_native_type
        fields.append(described)
    return {"fields": fields}


def hub_json(hub: Hub, *, full: bool = False, resources: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": hub.id,
        "name": hub.name,
        "key": hub.key,
        "description": hub.description,
    }
    if full:
        body["active"] = hub.active
    if resources is not None:
        body["resources"] = resources
    return body


# Response shapes, for the OpenAPI document (routes return the plain JSON built above).


class ConfigEntryRead(BaseModel):
    id: int
    key: str
    name: str
    description: str
    default_value: str | None = Field(alias="defaultValue")
    required: bool
    type: str
    hide_from_console: bool = Field(alias="hideFromConsole")
    secret: bool
    display_order: int = Field(alias="displayOrder")
    active: bool
    internal: bool


class AuthenticationRead(BaseModel):
    type: str


class ElementSummaryRead(BaseModel):
    """The element block embedded in every instance."""

    id: int
    name: str
    key: str
    description: str
    image: str
    active: bool
    deleted: bool
    type_oauth: bool = Field(alias="typeOauth")
    trial_account: bool = Field(alias="trialAccount")
    hub: str
    resources: list[Any]


class ElementRead(ElementSummaryRead):
    authentication: AuthenticationRead
    protocol_type: str = Field(alias="protocolType")
    private: bool
    beta: bool
    cloneable: bool
    extendable: bool
    transformations_enabled: bool = Field(alias="transformationsEnabled")
    bulk_download_enabled: bool = Field(alias="bulkDownloadEnabled")
    bulk_upload_enabled: bool = Field(alias="bulkUploadEnabled")
    configuration: list[ConfigEntryRead]


class EventsSupportRead(BaseModel):
    supported: bool
    methods: list[str]
    polling: dict[str, Any]


class ResourceEventsRead(BaseModel):
    pollable: bool
    polled_by_default: bool = Field(alias="polledByDefault")


class ResourceRead(BaseModel):
    path: str
    description: str
    operations: list[str]
    canonical_name: str = Field(alias="canonicalName")
    events: ResourceEventsRead


class ElementMetadataRead(BaseModel):
    id: int
    key: str
    name: str
    description: str
    hub: str
    authentication: AuthenticationRead
    events: EventsSupportRead
    # With ?expand=true only.
    image: str | None = None
    display_order: int | None = Field(default=None, alias="displayOrder")
    active: bool | None = None
    beta: bool | None = None
    transformations: list[Any] | None = None
    element_type: str | None = Field(default=None, alias="elementType")
    normalized_paging: bool | None = Field(default=None, alias="normalizedPaging")
    authentication_type: str | None = Field(default=None, alias="authenticationType")
    cloneable: bool | None = None
    discovery: dict[str, Any] | None = None
    bulk: dict[str, bool] | None = None
    api: dict[str, str] | None = None
    resources: list[ResourceRead] | None = None


class HubRead(BaseModel):
    id: int
    name: str
    key: str
    description: str
    active: bool | None = None
    resources: list[str] | None = Field(default=None, description="With ?hydrate=true")


class ObjectRead(BaseModel):
    name: str
    vendor_name: str = Field(alias="vendorName")
    type: ObjectType


class ObjectFieldRead(BaseModel):
    vendor_path: str = Field(alias="vendorPath")
    type: str
    vendor_native_type: str | None = Field(default=None, alias="vendorNativeType")


class ObjectMetadataRead(BaseModel):
    fields: list[ObjectFieldRead]


class OAuthUrlRead(BaseModel):
    """``GET /elements/{keyOrId}/oauth/url`` (D56)."""

    oauth_url: str = Field(alias="oauthUrl")
    element: str
