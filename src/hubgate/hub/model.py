"""The values that travel through the hub pipeline: the resolved instance, a call, a result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from hubgate.elements.manifest import Operation, Resource
from hubgate.elements.registry import Element
from hubgate.instances.configuration import Configuration
from hubgate.kit.errors import bad_request

Query = tuple[tuple[str, str], ...]


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


@dataclass(frozen=True, slots=True)
class HubCall:
    """One hub request: ``segments`` are the path after ``/hubs/{hub}/``."""

    method: str
    segments: tuple[str, ...]
    query: Query = ()
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


@dataclass(slots=True)
class HubResult:
    """A hub answer: ``body`` is JSON-ready; ``vendor_*`` feed the trace log (D27)."""

    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    vendor_url: str | None = None
    vendor_request: Any = None
    resource: Resource | None = None


class HookContext(Protocol):
    """What an element hook gets: the instance, the call, and the operation's vendor call."""

    instance: ResolvedInstance
    call: HubCall
    matched: Matched

    async def vendor(self) -> Any:
        """Send the operation's vendor request; the parsed JSON answer, or a HubgateError."""
        ...
