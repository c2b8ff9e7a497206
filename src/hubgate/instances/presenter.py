"""The instance as Open Connectors returns it (D11), secrets masked (D14)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from hubgate.elements.registry import Element
from hubgate.elements.schemas import element_summary
from hubgate.instances import configuration as cfg
from hubgate.instances.models import Instance
from hubgate.instances.service import decrypt_token
from hubgate.kit.crypto import Keyring
from hubgate.tenants.models import User


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def events_callback_url(base_url: str, element_key: str, instance_id: int) -> str:
    encoded = base64.b64encode(str(instance_id).encode()).decode()
    return f"{base_url}/elements/api-v2/events/{element_key}/{encoded}"


def instance_json(
    instance: Instance,
    element: Element,
    keyring: Keyring,
    *,
    owner: User | None,
    base_url: str,
) -> dict[str, Any]:
    manifest = element.manifest
    configuration = cfg.masked(manifest, instance.configuration, set(instance.secrets))
    shown: dict[str, Any] = {
        "id": instance.id,
        "name": instance.name,
        "createdDate": iso(instance.created_at),
        "updatedDate": iso(instance.updated_at),
        "token": decrypt_token(keyring, instance),
        "element": element_summary(manifest),
        "elementId": manifest.id,
        "tags": list(instance.tags),
        "provisionInteractions": [],
        "valid": instance.valid,
        "disabled": instance.disabled,
        "maxCacheSize": instance.max_cache_size,
        "cacheTimeToLive": instance.cache_time_to_live,
        "configuration": configuration,
        "eventsEnabled": configuration.get("event.notification.enabled") == "true",
        "eventsNotificationCallbackUrl": configuration.get("event.notification.callback.url"),
        "eventsCallbackUrl": events_callback_url(base_url, manifest.key, instance.id),
        "traceLoggingEnabled": instance.trace_logging_enabled,
        "externalAuthentication": "none",
        "cachingEnabled": instance.caching_enabled,
        "user": user_json(instance.user_id, owner),
    }
    reason = instance.configuration.get(cfg.OAUTH_FAILURE)
    if not instance.valid and reason:
        shown["invalidReason"] = reason
    return shown


def user_json(user_id: int, user: User | None) -> dict[str, Any]:
    """The instance's ``user`` block (D46); a user deleted since reads as blank names."""
    return {
        "id": user_id,
        "emailAddress": user.email if user else "",
        "firstName": user.first_name if user else "",
        "lastName": user.last_name if user else "",
    }


def configuration_entries(instance: Instance, element: Element) -> list[dict[str, Any]]:
    """``GET /instances/{id}/configuration``: one entry per element configuration key."""
    values = cfg.masked(element.manifest, instance.configuration, set(instance.secrets))
    return [
        configuration_entry(element, entry.id, entry.key, values.get(entry.key))
        for entry in element.manifest.configuration
    ]


def configuration_entry(
    element: Element, entry_id: int, key: str, value: str | None
) -> dict[str, Any]:
    entry = element.manifest.entry(key)
    return {
        "id": entry_id,
        "key": key,
        "name": entry.name if entry else key,
        "propertyValue": value,
        "secret": key in cfg.secret_keys(element.manifest),
    }
