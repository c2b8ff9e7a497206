"""The connector SDK: every type an element (connector) may use besides its manifest and ``kit/``.

A connector imports this module, :mod:`hubgate.elements.manifest` and ``hubgate.kit``, never
``hubgate.hub``, ``hubgate.events`` or ``hubgate.instances`` (D270); the hub, the events and the
instances packages import their shared types from here, so nothing here may import them.

What an element may add to its manifest's data (all optional, gathered in :class:`Hooks`):

- operation hooks: a coroutine that answers a hub operation instead of its vendor call, named by
  the operation's ``hook`` (Twilio's ``/ping``); it gets a :class:`HookContext`;
- a vendor webhook (D31): it gets the raw request as the vendor sent it and answers with the
  verified changes and the acknowledgement the vendor expects (D271);
- a credential check and the OAuth 2.0 code exchange and refresh, declared here so that the
  SendGrid and Slack elements of issue 10 have their shape; nothing calls them yet.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from hubgate.elements.manifest import Manifest, Operation, Resource
from hubgate.kit.errors import bad_request

# An instance's configuration, decrypted: key to value (None: set to nothing).
Configuration = dict[str, str | None]

CREATED: Final = "CREATED"
UPDATED: Final = "UPDATED"


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

    @property
    def base_url(self) -> str:
        return (self.config.get(self.element.manifest.base_url_key) or "").rstrip("/")

    @property
    def auth(self) -> tuple[str, str]:
        auth = self.element.manifest.auth
        return self.config.get(auth.username) or "", self.config.get(auth.password) or ""

    @property
    def remove_nulls(self) -> bool:
        return self.config.get("filter.response.nulls") != "false"

    def int_config(self, key: str, default: int) -> int:
        value = self.config.get(key)
        if value is None or not (value.isascii() and value.isdigit() and len(value) <= 9):
            return default
        return int(value)


class HookContext(Protocol):
    """What an operation hook gets: the instance, the call, and the operation's vendor call."""

    @property
    def instance(self) -> ResolvedInstance: ...

    @property
    def call(self) -> HubCall: ...

    @property
    def matched(self) -> Matched: ...

    async def vendor(self) -> Any:
        """Send the operation's vendor request; the parsed JSON answer, or a HubgateError."""
        ...


OperationHook = Callable[[HookContext], Awaitable[Any]]
# The form fields of a vendor request about to be sent, given back as they should go: the
# instance, the matched operation and the instance's ``eventsCallbackUrl`` (D61).
FormHook = Callable[[ResolvedInstance, Matched, list[tuple[str, str]], str], list[tuple[str, str]]]


# --- vendor webhooks (D31, D271) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """One object the vendor reports made or changed (an event to be)."""

    object_type: str
    object_id: str
    event_type: str
    raw: dict[str, Any]
    digest: str


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


# --- declared for issue 10's SendGrid and Slack elements; nothing calls them yet ---------------


class CredentialCheck(Protocol):
    async def __call__(self, configuration: Mapping[str, str | None]) -> None:
        """Prove the credentials before an instance is saved; raise a HubgateError if not."""
        ...


@dataclass(frozen=True, slots=True)
class OAuthTokens:
    access_token: str
    refresh_token: str | None
    # Seconds from now; None: the token does not expire.
    expires_in: int | None


class OAuthFlow(Protocol):
    def authorize_url(self, client_id: str, callback_url: str, scope: str, state: str) -> str: ...

    async def exchange(
        self, configuration: Mapping[str, str | None], code: str, callback_url: str
    ) -> OAuthTokens: ...

    async def refresh(
        self, configuration: Mapping[str, str | None], refresh_token: str
    ) -> OAuthTokens: ...


# --- the element -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hooks:
    """The Python an element adds where its manifest's data cannot say enough (D19)."""

    operations: Mapping[str, OperationHook] = field(default_factory=dict)
    form: FormHook | None = None
    webhook: VendorWebhook | None = None
    credential_check: CredentialCheck | None = None
    oauth: OAuthFlow | None = None


@dataclass(frozen=True)
class Element:
    manifest: Manifest
    hooks: Hooks = field(default_factory=Hooks)

    @property
    def key(self) -> str:
        return self.manifest.key

    @property
    def id(self) -> int:
        return self.manifest.id
