"""The JSON shapes of elements and hubs, as Open Connectors clients read them (D18)."""

from __future__ import annotations

from typing import Any

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
