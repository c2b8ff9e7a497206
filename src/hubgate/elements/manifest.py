"""What an element (connector) is: a manifest of data, plus optional Python hooks (D19)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

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
    """Basic auth: the configuration keys that hold the vendor's user name and password."""

    type: Literal["basic"] = "basic"
    username: str
    password: str


class ErrorFormat(_Model):
    """Where the vendor's error body keeps its code and message."""

    code: str
    message: str


class Hub(_Model):
    id: int
    key: str
    name: str
    description: str = ""


HubMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
ValueFormat = Literal["text", "gmt-day", "gmt-day-start", "gmt-next-day-start"]
LiteralKind = Literal["string", "date", "number", "boolean"]


class PushParam(_Model):
    """The vendor query parameter one CEQL operator of a field becomes, and how its value is
    written: ``text`` as given; for a timestamp, ``gmt-day`` as ``YYYY-MM-DD`` of its GMT day,
    ``gmt-day-start`` as that day's midnight ``YYYY-MM-DDT00:00:00Z``, ``gmt-next-day-start``
    as the next day's midnight (an upper bound that is safe whether the vendor compares whole
    days or exact times)."""

    param: str
    format: ValueFormat = "text"


class Pushable(_Model):
    """A CEQL field the vendor can pre-filter on (D23).

    ``exact`` says the vendor applies these operators with CEQL's own semantics; otherwise
    Hubgate re-checks every row the vendor returns, so the vendor's filter only has to keep a
    superset of the right rows (Twilio's day-granular ``DateSent``).
    """

    ops: dict[str, PushParam]
    kinds: tuple[LiteralKind, ...] = ("string",)
    exact: bool = False


class Parameter(_Model):
    """A hub query parameter of an operation that is not CEQL (Twilio ``numbers``:
    ``countryCode``, ``type``); ``target`` is where it goes: a ``{placeholder}`` of the vendor
    path (``path``) or a vendor query parameter (``query``, named ``vendorName``)."""

    name: str
    target: Literal["path", "query"] = "query"
    vendor_name: str | None = Field(default=None, alias="vendorName")
    default: str | None = None
    enum: tuple[str, ...] | None = None
    description: str = ""


class Operation(_Model):
    """One method of one hub resource and the vendor call that serves it."""

    summary: str = ""
    vendor_method: HubMethod | None = Field(default=None, alias="vendorMethod")
    # Appended to the instance's base URL; ``{configuration key}``, ``{id}``, ``{subId}`` and
    # path parameters are filled in, each value quoted as one path segment.
    vendor_path: str = Field(alias="vendorPath")
    # A list operation: the key of the vendor envelope's array (None: the answer is one object).
    list_key: str | None = Field(default=None, alias="listKey")
    # False for lists the vendor does not page; Hubgate then pages over the whole answer.
    paged: bool = True
    body: Literal["none", "form"] = "none"
    # The request fields documented for this operation (OpenAPI), in the vendor's spelling.
    fields: tuple[str, ...] = ()
    required_fields: tuple[str, ...] = Field(default=(), alias="requiredFields")
    pushable: dict[str, Pushable] = Field(default_factory=dict)
    parameters: tuple[Parameter, ...] = ()
    # The name of a function of the element's hooks that answers instead of the vendor call.
    hook: str | None = None


FieldType = Literal["string", "number", "boolean", "date", "object", "array"]


class ResourceField(_Model):
    """One field of a resource's objects as the vendor answers them (D50): what CEQL may name
    (an ``object`` field also its sub-fields) and what ``/objects/{name}/metadata`` lists.
    ``vendorNativeType`` is the vendor's own word for the type, when it says more (Twilio's
    ``date-time-rfc-2822``, ``phone-number``, an enum)."""

    name: str = Field(min_length=1)
    type: FieldType
    vendor_native_type: str | None = Field(default=None, alias="vendorNativeType")


class PollerDefaults(_Model):
    """How the poller (D28) treats a resource it polls, whatever the instance configures."""

    # The field stamped when the vendor made the object: a poller's first poll reports the
    # objects made since events were enabled by it (D131).
    created_field: str | None = Field(default=None, alias="createdField")
    # True: the poller takes the vendor's filters as final instead of re-checking each record
    # (Twilio's day-granular ``DateSent``: a poll's ``DateSent>='${date}'`` then reads the
    # whole day, as Open Connectors does, and the seen-set removes what it repeats) (D273).
    vendor_filters_final: bool = Field(default=False, alias="vendorFiltersFinal")


class Resource(_Model):
    """A hub resource: ``path`` is relative to ``/hubs/{hub}``, e.g. ``messages/{id}/media``."""

    path: str
    description: str = ""
    # The fields of the objects a list of this resource answers; empty: not declared, and then
    # CEQL takes any field name (D211).
    fields: tuple[ResourceField, ...] = ()
    operations: dict[HubMethod, Operation]
    # Response fields that are secrets (Twilio's account ``auth_token``): masked in trace logs.
    secret_fields: tuple[str, ...] = Field(default=(), alias="secretFields")
    poller: PollerDefaults = PollerDefaults()

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.path.split("/"))

    @property
    def object_name(self) -> str:
        """The name of the objects it holds: its last literal segment (``messages/{id}``:
        ``messages``, ``messages/{id}/media``: ``media``)."""
        return next((s for s in reversed(self.segments) if not s.startswith("{")), self.path)


class Pagination(_Model):
    """How the vendor pages (D22): ``page`` style with a start index and a size cap, the next
    page's URL in ``nextField`` of the envelope (relative URLs resolve against the base URL)."""

    type: Literal["page"] = "page"
    page_param: str = Field(alias="pageParam")
    size_param: str = Field(alias="sizeParam")
    next_field: str = Field(alias="nextField")
    default_size: int = Field(alias="defaultSize", gt=0)


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
    auth: VendorAuth
    errors: ErrorFormat
    event_methods: tuple[str, ...] = Field(default=("polling",), alias="eventMethods")
    resources: tuple[Resource, ...] = ()
    pagination: Pagination
    # Sent with the caller's Idempotency-Key so the vendor itself drops a repeated write.
    idempotency_header: str | None = Field(default=None, alias="idempotencyHeader")

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
