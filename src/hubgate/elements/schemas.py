"""The JSON shapes of elements and hubs, as Open Connectors clients read them (D18)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from hubgate.elements.manifest import ConfigEntry, Hub, Manifest


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


def element_metadata(manifest: Manifest) -> dict[str, Any]:
    return {
        "id": manifest.id,
        "key": manifest.key,
        "name": manifest.name,
        "description": manifest.description,
        "hub": manifest.hub,
        "authentication": {"type": manifest.authentication_type},
        "events": {
            "supported": bool(manifest.event_methods),
            "methods": list(manifest.event_methods),
        },
    }


def hub_json(hub: Hub, *, full: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": hub.id,
        "name": hub.name,
        "key": hub.key,
        "description": hub.description,
    }
    if full:
        body["active"] = True
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


class ElementMetadataRead(BaseModel):
    id: int
    key: str
    name: str
    description: str
    hub: str
    authentication: AuthenticationRead
    events: EventsSupportRead


class HubRead(BaseModel):
    id: int
    name: str
    key: str
    description: str
    active: bool | None = None
