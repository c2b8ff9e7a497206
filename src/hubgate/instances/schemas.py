"""Request bodies of the instance API.

A create ignores unknown top-level fields (D11); an update refuses them, and the read-only ones
an instance shows, with a 400 that names them (D203): silently ignoring ``disabled`` there made
a client believe it had disabled an instance.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hubgate.elements.schemas import ElementSummaryRead
from hubgate.kit.errors import bad_request

MAX_TAGS = 50
MAX_CONFIGURATION_KEYS = 100


class _Body(BaseModel):
    # Strict: JSON's true is not the number 1 and 0.0 is not false. Lax coercion accepted
    # bodies that the document calls invalid (found by fuzzing, issue 6).
    model_config = ConfigDict(extra="ignore", populate_by_name=True, strict=True)


class ElementRef(_Body):
    key: str | None = Field(default=None, max_length=100)
    id: int | None = None


class InstanceFlags(_Body):
    """Per-instance switches that Open Connectors shows as top-level instance fields."""

    caching_enabled: bool | None = Field(default=None, alias="cachingEnabled")
    cache_time_to_live: int | None = Field(default=None, alias="cacheTimeToLive", ge=0, le=86400)
    max_cache_size: int | None = Field(default=None, alias="maxCacheSize", ge=0, le=100_000)
    trace_logging_enabled: bool | None = Field(default=None, alias="traceLoggingEnabled")


class ProviderData(_Body):
    """What the vendor's OAuth callback gave (D56): the authorization code to exchange."""

    code: str | None = Field(default=None, min_length=1, max_length=2000)


class InstanceCreate(InstanceFlags):
    element: ElementRef | None = None
    provider_data: ProviderData | None = Field(default=None, alias="providerData")
    name: str | None = Field(default=None, max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=MAX_TAGS)
    configuration: dict[str, Any] = Field(default_factory=dict, max_length=MAX_CONFIGURATION_KEYS)


class InstancePatch(InstanceFlags):
    # Forbidden in the document too, so that clients and fuzzers read the same rule.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)

    name: str | None = Field(default=None, max_length=200)
    tags: list[str] | None = Field(default=None, max_length=MAX_TAGS)
    configuration: dict[str, Any] | None = Field(default=None, max_length=MAX_CONFIGURATION_KEYS)

    @model_validator(mode="before")
    @classmethod
    def _only_writable_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            refuse_unwritable(data, cls.writable_names())
        return data

    @classmethod
    def writable_names(cls) -> frozenset[str]:
        fields = cls.model_fields
        return frozenset(fields) | {f.alias for f in fields.values() if f.alias}


_NAMED_AT_MOST = 10


def refuse_unwritable(data: dict[str, Any], writable: frozenset[str]) -> None:
    """A 400 naming the read-only and unknown top-level fields of an update, if any.

    Raised as the HTTP error itself rather than as a validation error, so the message reaches
    the caller as written; the console's forms never send these fields.
    """
    refused = [str(k) for k in data if k not in writable]
    if not refused:
        return

    def listed(names: list[str]) -> str:
        shown = [repr(n[:64]) for n in names[:_NAMED_AT_MOST]]
        more = len(names) - len(shown)
        return ", ".join(shown) + (f" and {more} more" if more else "")

    # Read-only: what an instance shows (InstanceRead) that an update does not write.
    shown = {f.alias or name for name, f in InstanceRead.model_fields.items()}
    read_only = [k for k in refused if k in shown]
    unknown = [k for k in refused if k not in shown]
    parts = []
    if read_only:
        parts.append(f"read-only fields cannot be changed: {listed(read_only)}")
    if unknown:
        parts.append(f"unknown fields: {listed(unknown)}")
    message = "; ".join(parts)
    if "disabled" in read_only:
        message += "; enable or disable an instance with PUT or DELETE /instances/{id}/enabled"
    raise bad_request(message[0].upper() + message[1:])


class ConfigurationPatch(_Body):
    """One configuration entry as ``GET /instances/{id}/configuration/{configId}`` shows it."""

    property_value: Any = Field(alias="propertyValue")


# Response shapes, for the OpenAPI document (routes return plain JSON built by the presenter).


class OwnerRead(BaseModel):
    id: int
    email_address: str = Field(alias="emailAddress")
    first_name: str = Field(alias="firstName")
    last_name: str = Field(alias="lastName")


class InstanceRead(BaseModel):
    """An instance as Open Connectors returns it (D11); secrets masked (D14)."""

    id: int
    name: str
    created_date: str = Field(alias="createdDate")
    updated_date: str = Field(alias="updatedDate")
    token: str
    element: ElementSummaryRead
    element_id: int | None = Field(alias="elementId")
    tags: list[str]
    provision_interactions: list[Any] = Field(alias="provisionInteractions")
    valid: bool
    disabled: bool
    max_cache_size: int = Field(alias="maxCacheSize")
    cache_time_to_live: int = Field(alias="cacheTimeToLive")
    configuration: dict[str, str | None]
    events_enabled: bool = Field(alias="eventsEnabled")
    events_notification_callback_url: str | None = Field(alias="eventsNotificationCallbackUrl")
    events_callback_url: str = Field(alias="eventsCallbackUrl")
    trace_logging_enabled: bool = Field(alias="traceLoggingEnabled")
    external_authentication: str = Field(alias="externalAuthentication")
    caching_enabled: bool = Field(alias="cachingEnabled")
    user: OwnerRead
    # Only on an instance that is not valid, when Hubgate knows why (a refused token refresh).
    invalid_reason: str | None = Field(default=None, alias="invalidReason")


class ConfigurationEntryRead(BaseModel):
    id: int
    key: str
    name: str
    property_value: str | None = Field(alias="propertyValue")
    secret: bool


class Deleted(BaseModel):
    """``DELETE`` answers an empty object (D103)."""

    model_config = ConfigDict(extra="forbid")


class ElementInstanceCount(BaseModel):
    element_key: str = Field(alias="elementKey")
    element_id: int | None = Field(alias="elementId")
    count: int


class InstanceCount(BaseModel):
    """``GET /instances/count`` (D51)."""

    total_instances: int = Field(alias="totalInstances")
    element_instances: list[ElementInstanceCount] = Field(alias="elementInstances")
