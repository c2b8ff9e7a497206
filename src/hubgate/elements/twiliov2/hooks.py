"""What the Twilio element needs beyond its manifest's data (D19)."""

from __future__ import annotations

from typing import Any

from hubgate.elements.sdk import HookContext


async def ping(ctx: HookContext) -> Any:
    """``GET /ping``: a live credential check; Twilio's account fetch succeeds or raises."""
    await ctx.vendor()
    return {"endpoint": ctx.instance.element.key, "valid": True}
