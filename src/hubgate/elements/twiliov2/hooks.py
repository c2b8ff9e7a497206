"""What the Twilio element needs beyond its manifest's data (D19)."""

from __future__ import annotations

from typing import Any

from hubgate.elements.sdk import HookContext, WriteContext


async def ping(ctx: HookContext) -> Any:
    """``GET /ping``: a live credential check; Twilio's account fetch succeeds or raises."""
    await ctx.vendor()
    return {"endpoint": ctx.instance.element.key, "valid": True}


def status_callback(body: Any, write: WriteContext) -> Any:
    """D61: in webhook mode a message or call created through the hub (the manifest names this
    hook on the two collection POSTs) reports its status changes to the instance's events URL,
    unless the caller named its own StatusCallback."""
    config = write.config
    if (
        not isinstance(body, dict)
        or config.get("event.notification.enabled") != "true"
        or config.get("event.vendor.type") != "webhook"
        or "StatusCallback" in body
    ):
        return body
    return {**body, "StatusCallback": write.events_url}
