"""Request bodies of the instance API; unknown top-level fields are ignored (D11)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_TAGS = 50
MAX_CONFIGURATION_KEYS = 100


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class ElementRef(_Body):
    key: str | None = Field(default=None, max_length=100)
    id: int | None = None


class InstanceFlags(_Body):
    """Per-instance switches that Open Connectors shows as top-level instance fields."""

    caching_enabled: bool | None = Field(default=None, alias="cachingEnabled")
    cache_time_to_live: int | None = Field(default=None, alias="cacheTimeToLive", ge=0, le=86400)
    max_cache_size: int | None = Field(default=None, alias="maxCacheSize", ge=0, le=100_000)
    trace_logging_enabled: bool | None = Field(default=None, alias="traceLoggingEnabled")


class InstanceCreate(InstanceFlags):
    element: ElementRef | None = None
    name: str | None = Field(default=None, max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=MAX_TAGS)
    configuration: dict[str, Any] = Field(default_factory=dict, max_length=MAX_CONFIGURATION_KEYS)


class InstancePatch(InstanceFlags):
    name: str | None = Field(default=None, max_length=200)
    tags: list[str] | None = Field(default=None, max_length=MAX_TAGS)
    configuration: dict[str, Any] | None = Field(default=None, max_length=MAX_CONFIGURATION_KEYS)


class ConfigurationPatch(_Body):
    """One configuration entry as ``GET /instances/{id}/configuration/{configId}`` shows it."""

    property_value: Any = Field(alias="propertyValue")
