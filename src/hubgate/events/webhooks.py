"""Vendor webhooks (D31): which element knows how to check and read its vendor's calls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from hubgate.elements.registry import Element
from hubgate.elements.twiliov2.webhooks import TwilioWebhook
from hubgate.events.changes import Change


class VendorWebhook(Protocol):
    media_type: str
    acknowledgement: bytes

    def verify(
        self,
        *,
        url: str,
        params: Sequence[tuple[str, str]],
        body: bytes,
        headers: Mapping[str, str],
        configuration: Mapping[str, str | None],
    ) -> bool: ...

    def changes(self, params: Sequence[tuple[str, str]]) -> list[Change]: ...


_BUILT_IN: dict[str, VendorWebhook] = {"twiliov2": TwilioWebhook()}


def webhook_for(element: Element) -> VendorWebhook | None:
    """An element's own hook (``hooks.events_webhook``) first, then the built-in ones."""
    hook: VendorWebhook | None = getattr(element.hooks, "events_webhook", None)
    return hook if hook is not None else _BUILT_IN.get(element.key)
