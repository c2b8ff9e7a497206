"""The loopback element's Python: its webhook's signature check and its ``whoami`` hook."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from hubgate.elements.sdk import (
    CREATED,
    UPDATED,
    Change,
    HookContext,
    VendorRequest,
    WebhookAnswer,
    WebhookRefusedError,
    digest,
)
from hubgate.kit.errors import bad_request

WINDOW_SECONDS = 300


async def whoami(ctx: HookContext) -> Any:
    answer = await ctx.vendor()
    return {"user": answer["user"], "element": ctx.instance.element.key}


class LoopbackWebhook:
    """``X-Loopback-Signature``: hex HMAC-SHA256 of ``{timestamp}.{body}`` under the signing
    secret; a timestamp older than five minutes is a replay."""

    def receive(
        self, request: VendorRequest, configuration: Mapping[str, str | None]
    ) -> WebhookAnswer:
        secret = configuration.get("loopback.signing.secret") or ""
        stamp = request.headers.get("x-loopback-timestamp", "")
        given = request.headers.get("x-loopback-signature", "")
        if not secret or not stamp.isascii() or not stamp.isdigit():
            raise WebhookRefusedError("The webhook is not signed")
        expected = hmac.new(
            secret.encode(), stamp.encode() + b"." + request.body, hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
            raise WebhookRefusedError("The webhook signature does not match")
        if abs(time.time() - int(stamp)) > WINDOW_SECONDS:
            raise WebhookRefusedError("The webhook is older than five minutes")
        try:
            event = json.loads(request.body)
            note = event["note"]
            kind = CREATED if event["event"] == "note.created" else UPDATED
        except (ValueError, KeyError, TypeError):
            raise bad_request("Malformed webhook body") from None
        return WebhookAnswer([Change("notes", str(note["id"]), kind, note, digest(note))])
