"""The connector SDK: every type an element (connector) may use besides its manifest and ``kit/``.

A connector imports this module, :mod:`hubgate.elements.manifest` and ``hubgate.kit``, never
``hubgate.hub``, ``hubgate.events`` or ``hubgate.instances`` (D270); the hub, the events and the
instances packages import their shared types from here, so nothing here may import them.

What an element may add to its manifest's data (all optional, gathered in :class:`Hooks`):

- operation hooks: a coroutine that answers a hub operation instead of its vendor call, named by
  the operation's ``hook`` (Twilio's ``/ping``); it gets a :class:`HookContext`;
- request hooks: a function that shapes a write's body before it is sent, named by the
  operation's ``requestHook`` (SendGrid's default sender, Twilio's ``StatusCallback``);
- a vendor webhook (D31): it gets the raw request as the vendor sent it and answers with the
  verified changes and the acknowledgement the vendor expects (D271);
- a credential check run after the manifest's check call, with the instance's vendor session;
- the OAuth 2.0 code exchange and refresh (D56) that :mod:`hubgate.instances.oauth` drives.

An element may also ship default transformations (D322): a ``transformations.json`` beside its
manifest, read by :func:`load_transformations` into :attr:`Element.transformations`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from hubgate.elements.manifest import Manifest, Operation, Resource
from hubgate.kit.egress import EgressClient
from hubgate.kit.errors import bad_request

# An instance's configuration, decrypted: key to value (None: set to nothing).
Configuration = dict[str, str | None]

CREATED: Final = "CREATED"
UPDATED: Final = "UPDATED"
DELETED: Final = "DELETED"


# --- what a hub operation hook sees ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HubCall:
    """One hub request: ``segments`` are the path after ``/hubs/{hub}/``."""

    method: str
    segments: tuple[str, ...]
    query: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    content_type: str | None = None
    idempotency_key: str | None = None

    def param(self, name: str) -> str | None:
        if not self.query:  # most hub calls carry none, and a list call asks for six (D535)
            return None
        found = [value for key, value in self.query if key == name]
        if len(found) > 1:
            # Which one would count is a guess (the first? both, as an AND?): refuse it.
            raise bad_request(f"Query parameter {name} is given {len(found)} times; give it once")
        return found[0] if found else None


@dataclass(frozen=True, slots=True)
class Matched:
    resource: Resource
    operation: Operation
    method: str
    path_values: dict[str, str]


@dataclass(frozen=True, slots=True)
class ResolvedInstance:
    """What a hub call needs of an instance, with its configuration decrypted once.

    Kept in the token cache, so it holds no ORM object and nothing tied to a session.
    """

    id: int
    organization_id: int
    account_id: int
    token_hash: str
    version: int
    disabled: bool
    element: Element
    config: Configuration
    caching_enabled: bool
    cache_time_to_live: int
    max_cache_size: int
    trace_logging_enabled: bool
    # What the hub builds from this instance once and keeps while the instance is kept (its
    # vendor session, D480): it goes when the token cache lets the instance go, so nothing
    # built from decrypted credentials outlives them. Not an argument: a changed copy
    # (``dataclasses.replace``) starts empty.
    kept: dict[str, object] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def base_url(self) -> str:
        return (self.config.get(self.element.manifest.base_url_key) or "").rstrip("/")

    @property
    def remove_nulls(self) -> bool:
        return self.config.get("filter.response.nulls") != "false"

    def int_config(self, key: str, default: int) -> int:
        value = self.config.get(key)
        if value is None or not (value.isascii() and value.isdigit() and len(value) <= 9):
            return default
        return int(value)


class VendorCalls(Protocol):
    """The instance's vendor session as a hook sees it: the same URL filler, auth, retries and
    error map as every other vendor call of Hubgate (D282)."""

    @property
    def base_url(self) -> str: ...

    def url(self, path: str, values: Mapping[str, str | None] | None = None) -> str:
        """The vendor URL of a manifest-style path (``/v3/templates/{id}``)."""
        ...

    async def call(
        self,
        method: str,
        path: str,
        *,
        values: Mapping[str, str | None] | None = None,
        params: Sequence[tuple[str, str]] | None = None,
        json: Any = None,
    ) -> Any:
        """One vendor call; the parsed JSON answer (None for an empty one), or a HubgateError."""
        ...


class HookContext(Protocol):
    """What an operation hook gets: the instance, the call, and the operation's vendor call."""

    @property
    def instance(self) -> ResolvedInstance: ...

    @property
    def call(self) -> HubCall: ...

    @property
    def matched(self) -> Matched: ...

    @property
    def session(self) -> VendorCalls: ...

    async def vendor(self) -> Any:
        """Send the operation's vendor request; the parsed JSON answer, or a HubgateError."""
        ...


OperationHook = Callable[[HookContext], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class WriteContext:
    """What a request hook knows besides the body: the instance's configuration, its
    ``eventsCallbackUrl`` (where a vendor that calls back per object reports, D61) and the
    values of the hub path's placeholders (``{"id": ..., "subId": ...}``, D443)."""

    config: Mapping[str, str | None]
    events_url: str
    path_values: Mapping[str, str] = field(default_factory=dict)


# The caller's JSON body and the write's context → the body the vendor is sent (the pipeline
# then encodes it as the operation's ``body`` says); raise a HubgateError (400) for a body the
# vendor could never take.
RequestHook = Callable[[Any, WriteContext], Any]


# --- vendor webhooks (D31, D271) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """One object the vendor reports made or changed (an event to be)."""

    object_type: str
    object_id: str
    event_type: str
    raw: dict[str, Any]
    digest: str
    # The vendor's id of the event that reported the change, where it gives one (Slack's
    # ``event_id``): a retry of an event id already taken gives nothing (D380).
    vendor_event_id: str | None = None


def digest(obj: Mapping[str, Any]) -> str:
    """A stable fingerprint of an object's content: key order and spacing do not matter."""
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class VendorRequest:
    """A vendor's call into ``POST /events/{elementKey}/{id}`` exactly as it arrived: the URL as
    the vendor called it (Hubgate's public URL, the path and query as sent), the headers with
    lower-case names, and the body's bytes, unparsed, since signatures cover those bytes."""

    url: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class WebhookAnswer:
    """What a verified webhook gives: the changes it reports and the vendor's acknowledgement."""

    changes: list[Change]
    body: bytes = b""
    media_type: str = "text/plain"
    status: int = 200


class WebhookRefusedError(Exception):
    """The request is not the vendor's: a signature that does not match, a replay. The route
    answers 403 with this message, and nothing is recorded."""


class VendorWebhook(Protocol):
    def receive(
        self, request: VendorRequest, configuration: Mapping[str, str | None]
    ) -> WebhookAnswer:
        """Verify the request against the instance's configuration and read its changes;
        raise :class:`WebhookRefusedError` for a request that does not prove it is the vendor's,
        or a :class:`hubgate.kit.errors.HubgateError` (400) for a malformed one."""
        ...


# --- credential checks and OAuth 2.0 (D56) ---------------------------------------------------


class CredentialCheck(Protocol):
    async def __call__(self, session: VendorCalls) -> None:
        """What the manifest's check call cannot prove (SendGrid: the key may send mail), run
        after it succeeded; raise a HubgateError (400) to refuse the credentials."""
        ...


@dataclass(frozen=True, slots=True)
class OAuthTokens:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    # Seconds from now; None: the token does not expire.
    expires_in: int | None


class OAuthFlow(Protocol):
    """An element's OAuth 2.0 authorization code flow. Hubgate keeps the tokens; the element
    knows how its vendor spells the requests and the answers. ``configuration`` holds the
    instance's ``oauth.*`` entries (client id and secret, callback URL, scope and the token
    URL, overrides included)."""

    # Vendor error codes that mean the access token has expired: a call refused with one is
    # sent once more after a refresh.
    expired_codes: frozenset[str]

    def authorize_url(
        self, authorization_url: str, client_id: str, callback_url: str, scope: str, state: str
    ) -> str:
        """Where the person's browser goes to consent."""
        ...

    async def exchange(
        self, http: EgressClient, configuration: Mapping[str, str | None], code: str
    ) -> OAuthTokens:
        """Trade the code the callback got for tokens; a HubgateError (400, the provider's
        fields) when the vendor refuses."""
        ...

    async def refresh(
        self, http: EgressClient, configuration: Mapping[str, str | None], refresh_token: str
    ) -> OAuthTokens:
        """New tokens for the refresh token; a HubgateError with the vendor's reason if not."""
        ...


# --- the element -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hooks:
    """The Python an element adds where its manifest's data cannot say enough (D19)."""

    operations: Mapping[str, OperationHook] = field(default_factory=dict)
    requests: Mapping[str, RequestHook] = field(default_factory=dict)
    webhook: VendorWebhook | None = None
    credential_check: CredentialCheck | None = None
    oauth: OAuthFlow | None = None


# Object name -> transformation body, as ``/organizations/elements/{key}/transformations/{name}``
# takes it (A.3 of the background file).
DefaultTransformations = Mapping[str, Mapping[str, Any]]


def load_transformations(path: Path) -> DefaultTransformations:
    """An element's default transformations file (D322); none when there is no such file.

    The bodies are checked against the element's manifest by the connector suite, and read by
    the mapping engine when a hub call uses them.
    """
    if not path.exists():
        return {}
    found = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(found, dict) or not all(isinstance(b, dict) for b in found.values()):
        raise ValueError(f"{path}: a transformations file maps object names to bodies")
    return found


@dataclass(frozen=True)
class Element:
    manifest: Manifest
    hooks: Hooks = field(default_factory=Hooks)
    transformations: DefaultTransformations = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.manifest.key

    @property
    def id(self) -> int:
        return self.manifest.id
