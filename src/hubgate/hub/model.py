"""The values that travel through the hub pipeline: the resolved instance, a call, a result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hubgate.elements.manifest import Resource

# The pipeline's shared types live in the connector SDK, which element hooks see (D270).
from hubgate.elements.sdk import HookContext as HookContext
from hubgate.elements.sdk import HubCall as HubCall
from hubgate.elements.sdk import Matched as Matched
from hubgate.elements.sdk import ResolvedInstance as ResolvedInstance

Query = tuple[tuple[str, str], ...]


@dataclass(slots=True)
class HubResult:
    """A hub answer: ``body`` is JSON-ready; ``vendor_*`` feed the trace log (D27)."""

    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    vendor_url: str | None = None
    vendor_request: Any = None
    resource: Resource | None = None
