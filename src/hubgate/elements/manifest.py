"""What an element (connector) is: a manifest of data, plus optional Python hooks (D19)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


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


class BasicAuth(_Model):
    """HTTP basic auth: the configuration keys that hold the vendor's user name and password."""

    type: Literal["basic"]
    username: str
    password: str

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.username, self.password)

    def headers(self, config: Mapping[str, str | None]) -> dict[str, str]:
        pair = f"{config.get(self.username) or ''}:{config.get(self.password) or ''}"
        # UTF-8, as RFC 7617 lets a server ask for; ASCII credentials read the same either way.
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


class BearerAuth(_Model):
    """``Authorization: Bearer <token>``, the token read from the configuration key ``token``
    (SendGrid's API key)."""

    type: Literal["bearer"]
    token: str

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.token,)

    def headers(self, config: Mapping[str, str | None]) -> dict[str, str]:
        return {"Authorization": f"Bearer {config.get(self.token) or ''}"}


class HeaderAuth(_Model):
    """A vendor header of its own (``X-Api-Key: <value>``), ``prefix`` written before it."""

    type: Literal["header"]
    header: str = Field(min_length=1)
    value: str
    prefix: str = ""

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.value,)

    def headers(self, config: Mapping[str, str | None]) -> dict[str, str]:
        return {self.header: f"{self.prefix}{config.get(self.value) or ''}"}


class OAuth2Auth(_Model):
    """OAuth 2.0: the access token the provisioning obtained (and refreshes) is kept under the
    configuration key ``token`` and sent as a Bearer token; ``keys`` are what proves the
    instance (the client's key and secret are not sent on hub calls)."""

    type: Literal["oauth2"]
    token: str = "oauth.user.token"  # noqa: S105 - a configuration key, not a secret

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.token,)

    def headers(self, config: Mapping[str, str | None]) -> dict[str, str]:
        return {"Authorization": f"Bearer {config.get(self.token) or ''}"}


VendorAuth = Annotated[
    BasicAuth | BearerAuth | HeaderAuth | OAuth2Auth, Field(discriminator="type")
]


class ErrorWhen(_Model):
    """A success status whose body still says failure (Slack's ``{"ok": false}``, D57): the
    answer is an error when the value at ``path`` equals ``equals``."""

    path: str
    equals: str | int | bool | None


class ErrorFormat(_Model):
    """Where the vendor's error body keeps its code and message: dotted paths into the JSON
    (``errors.0.message``: the first item's ``message``); ``when`` makes a 2xx answer an error,
    which is then answered as HTTP ``status``, or as ``codeStatuses[code]`` for a known code."""

    code: str | None = None
    message: str
    when: ErrorWhen | None = None
    status: int = Field(default=400, ge=400, le=599)
    code_statuses: dict[str, int] = Field(default_factory=dict, alias="codeStatuses")


class IdFrom(_Model):
    """Where a write's answer keeps the new object's id when its body does not: a response
    ``header`` (SendGrid's ``X-Message-Id``) or a dotted ``path`` of the body (Slack's
    ``ts``); the id is answered as the field ``field``."""

    header: str | None = None
    path: str | None = None
    field: str = "id"

    @model_validator(mode="after")
    def _one_source(self) -> IdFrom:
        if (self.header is None) == (self.path is None):
            raise ValueError("idFrom takes exactly one of header or path")
        return self


class Hub(_Model):
    id: int
    key: str
    name: str
    description: str = ""
    active: bool = True


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
    # A query-language vendor: the predicate as a clause of one parameter, ``{value}`` filled
    # in with ``"`` and ``\`` escaped by ``\`` (SendGrid's ``to_email="{value}"``); the
    # clauses of one parameter are joined with `` AND `` (D283).
    clause: str | None = None


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


class Pagination(_Model):
    """How the vendor pages (D22, D58).

    ``page``: a page number in ``pageParam`` (the first is ``pagination.page.startindex`` of
    the configuration); ``offset``: the first record's index in ``offsetParam``; ``cursor``:
    the vendor's next cursor, read at the dotted ``cursorField`` of the envelope and sent back
    in ``cursorParam``. Whatever the style, a next page's URI at ``nextField`` (relative URLs
    resolve against the base URL) wins; without one, the next page exists while the total at
    ``totalField`` is not reached, or, with no total, while a page comes back full.
    """

    type: Literal["page", "offset", "cursor"] = "page"
    page_param: str | None = Field(default=None, alias="pageParam")
    offset_param: str | None = Field(default=None, alias="offsetParam")
    cursor_param: str | None = Field(default=None, alias="cursorParam")
    cursor_field: str | None = Field(default=None, alias="cursorField")
    size_param: str = Field(alias="sizeParam")
    next_field: str | None = Field(default=None, alias="nextField")
    total_field: str | None = Field(default=None, alias="totalField")
    default_size: int = Field(alias="defaultSize", gt=0)
    # The first page's number, unless the configuration's ``pagination.page.startindex`` says.
    start_index: int = Field(default=0, alias="startIndex", ge=0)

    @model_validator(mode="after")
    def _style_complete(self) -> Pagination:
        needs = {
            "page": ("pageParam", self.page_param),
            "offset": ("offsetParam", self.offset_param),
            "cursor": ("cursorParam", self.cursor_param),
        }
        name, value = needs[self.type]
        if value is None:
            raise ValueError(f"{self.type} paging needs {name}")
        if self.type == "cursor" and self.cursor_field is None and self.next_field is None:
            raise ValueError("cursor paging needs cursorField or nextField")
        return self


class Operation(_Model):
    """One method of one hub resource and the vendor call that serves it."""

    summary: str = ""
    vendor_method: HubMethod | None = Field(default=None, alias="vendorMethod")
    # Appended to the instance's base URL; ``{configuration key}``, ``{id}``, ``{subId}`` and
    # path parameters are filled in, each value quoted as one path segment.
    vendor_path: str = Field(alias="vendorPath")
    # A list operation: the dotted path of the records in the vendor's envelope (None: the
    # answer is one object; a bare array answer is taken as the records whatever it says).
    list_key: str | None = Field(default=None, alias="listKey")
    # False for lists the vendor does not page; Hubgate then pages over the whole answer.
    paged: bool = True
    # How this list pages, when not as the element's ``pagination`` says (SendGrid pages each
    # API its own way).
    pagination: Pagination | None = None
    body: Literal["none", "form", "json"] = "none"
    # A single object's dotted path in the vendor's envelope (Slack's ``channel``); None: the
    # whole answer is the object.
    object_path: str | None = Field(default=None, alias="objectPath")
    # Where a write's answer keeps the id when its body does not (an empty 202).
    id_from: IdFrom | None = Field(default=None, alias="idFrom")
    # The request fields documented for this operation (OpenAPI), in the vendor's spelling.
    fields: tuple[str, ...] = ()
    required_fields: tuple[str, ...] = Field(default=(), alias="requiredFields")
    pushable: dict[str, Pushable] = Field(default_factory=dict)
    parameters: tuple[Parameter, ...] = ()
    # The name of a function of the element's hooks that answers instead of the vendor call.
    hook: str | None = None
    # The name of a request hook of the element that shapes the body before it is sent.
    request_hook: str | None = Field(default=None, alias="requestHook")


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
    # The hub, when it is not one Hubgate knows (``elements/hubs.json``): a third-party
    # element brings its own.
    hub_definition: Hub | None = Field(default=None, alias="hubDefinition")
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

    @property
    def credential_keys(self) -> tuple[str, ...]:
        """The configuration keys whose change must be proven with the vendor again."""
        return (*self.auth.keys, self.base_url_key)

    def pagination_of(self, operation: Operation) -> Pagination:
        return operation.pagination or self.pagination

    def entry(self, key: str) -> ConfigEntry | None:
        for candidate in self.configuration:
            if candidate.key == key:
                return candidate
        return None

    def defaults(self) -> dict[str, str | None]:
        return {e.key: e.default_value for e in self.configuration}


def load_manifest(path: Path) -> Manifest:
    return Manifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
