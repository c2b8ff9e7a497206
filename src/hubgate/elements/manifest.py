"""What an element (connector) is: a manifest of data, plus optional Python hooks (D19)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ConfigEntry(_Model):
    """One configuration entry of an element, as ``/elements/{key}/configuration`` lists it."""

    id: int
    key: str
    name: str
    description: str = ""
    default_value: str | None = Field(default=None, alias="defaultValue")
    required: bool = False
    type: str = "TEXTFIELD_32"
    hide_from_console: bool = Field(default=False, alias="hideFromConsole")
    secret: bool = False
    # Folded away in the console's form: sensible defaults that most people never touch.
    advanced: bool = False
    display_order: int = Field(default=0, alias="displayOrder")


class CheckCall(_Model):
    """The vendor call that proves a configuration's credentials before it is saved (D13)."""

    method: Literal["GET", "POST"] = "GET"
    path: str
    reject_statuses: tuple[int, ...] = Field(default=(401, 403), alias="rejectStatuses")


class VendorAuth(_Model):
    type: Literal["basic"] = "basic"
    username: str = "username"
    password: str = "password"  # noqa: S105 - the configuration key, not a secret


class ErrorFormat(_Model):
    """Where the vendor's error body keeps its code and message."""

    code: str = "code"
    message: str = "message"


class Hub(_Model):
    id: int
    key: str
    name: str
    description: str = ""


class Manifest(_Model):
    id: int
    key: str
    name: str
    hub: str
    description: str = ""
    image: str = ""
    vendor_name: str = Field(alias="vendorName")
    authentication_type: str = Field(default="basic", alias="authenticationType")
    configuration: tuple[ConfigEntry, ...]
    base_url_key: str = Field(default="base.url", alias="baseUrlKey")
    check: CheckCall
    auth: VendorAuth = VendorAuth()
    errors: ErrorFormat = ErrorFormat()
    event_methods: tuple[str, ...] = Field(default=("polling",), alias="eventMethods")
    # The rest of the manifest (resources, paging, CEQL, polling) belongs to the hub and
    # events packages, which read it from here without this module knowing its shape.
    resources: tuple[dict[str, Any], ...] = ()
    pagination: dict[str, Any] = Field(default_factory=dict)

    @property
    def required_keys(self) -> tuple[str, ...]:
        return tuple(sorted(e.key for e in self.configuration if e.required))

    @property
    def secret_keys(self) -> frozenset[str]:
        return frozenset(e.key for e in self.configuration if e.secret)

    def entry(self, key: str) -> ConfigEntry | None:
        for candidate in self.configuration:
            if candidate.key == key:
                return candidate
        return None

    def defaults(self) -> dict[str, str | None]:
        return {e.key: e.default_value for e in self.configuration}


def load_manifest(path: Path) -> Manifest:
    return Manifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
