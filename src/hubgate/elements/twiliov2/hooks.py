"""What the Twilio element needs beyond its manifest's data (D19)."""

from __future__ import annotations

from typing import Any

from hubgate.elements.sdk import HookContext, Matched, ResolvedInstance


async def ping(ctx: HookContext) -> Any:
    """``GET /ping``: a live credential check; Twilio's account fetch succeeds or raises."""
    await ctx.vendor()
    return {"endpoint": ctx.instance.element.key, "valid": True}


# What Twilio creates with a StatusCallback: messages and calls (created by a POST to the
# collection; a POST to one of them updates it).
_CALLED_BACK = frozenset({"messages", "calls"})


def status_callback(
    instance: ResolvedInstance, matched: Matched, fields: list[tuple[str, str]], events_url: str
) -> list[tuple[str, str]]:
    """D61: in webhook mode a message or call created through the hub reports its status
    changes to the instance's events URL, unless the caller named its own StatusCallback."""
    config = instance.config
    if (
        config.get("event.notification.enabled") != "true"
        or config.get("event.vendor.type") != "webhook"
        or matched.method != "POST"
        or matched.path_values
        or matched.resource.path not in _CALLED_BACK
        or any(name == "StatusCallback" for name, _ in fields)
    ):
        return fields
    return [*fields, ("StatusCallback", events_url)]
