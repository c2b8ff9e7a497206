"""Slack's Events API into Hubgate (D59; slack-api.md section 4).

Every request is signed: ``X-Slack-Signature: v0=<hex>``, the HMAC-SHA256 under the app's
signing secret of ``v0:<X-Slack-Request-Timestamp>:<raw body>``; a timestamp more than five
minutes away from now is refused, so a captured request cannot be replayed later. The
``url_verification`` challenge is answered with the challenge itself; a message event becomes
a change of the message its ``ts`` names. Slack retries a delivery with the same ``event_id``;
the change carries that id, and the events domain takes each id once (D380).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from hubgate.elements.sdk import (
    CREATED,
    DELETED,
    UPDATED,
    Change,
    VendorRequest,
    WebhookAnswer,
    WebhookRefusedError,
    digest,
)
from hubgate.kit.errors import HubgateError

SIGNING_SECRET_KEY: Final = "slack.signing.secret"  # noqa: S105 - a configuration key
WINDOW_SECONDS: Final = 300


def signature(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode("ascii") + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(headers: Mapping[str, str], body: bytes, secret: str, now: float) -> None:
    """Raise :class:`WebhookRefusedError` unless the request is Slack's and recent."""
    stamp = headers.get("x-slack-request-timestamp", "")
    given = headers.get("x-slack-signature", "")
    if not secret or not given or not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        raise WebhookRefusedError("The Slack signature is missing")
    if abs(now - int(stamp)) > WINDOW_SECONDS:
        raise WebhookRefusedError("The Slack request is more than five minutes old")
    if not hmac.compare_digest(signature(secret, stamp, body).encode(), given.encode("utf-8")):
        raise WebhookRefusedError("The Slack signature does not match")


def message_change(event: Mapping[str, Any], event_id: str) -> Change | None:
    """The message an event is about, and what happened to it; None for other events."""
    if event.get("type") != "message":
        return None
    subtype = event.get("subtype")
    if subtype == "message_changed":
        inner = event.get("message")
        ts = inner.get("ts") if isinstance(inner, dict) else None
        kind = UPDATED
    elif subtype == "message_deleted":
        ts = event.get("deleted_ts")
        kind = DELETED
    else:
        ts = event.get("ts")
        kind = CREATED
    if not isinstance(ts, str) or not ts:
        return None
    raw = dict(event)
    return Change("messages", ts, kind, raw, digest({"event_id": event_id}), event_id)


class SlackWebhook:
    """The Events API Request URL of one ``slack`` instance."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    def receive(
        self, request: VendorRequest, configuration: Mapping[str, str | None]
    ) -> WebhookAnswer:
        secret = configuration.get(SIGNING_SECRET_KEY) or ""
        verify(request.headers, request.body, secret, self._clock())
        try:
            payload = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            raise HubgateError(400, "The Slack event is not JSON") from None
        if not isinstance(payload, dict):
            raise HubgateError(400, "The Slack event is not a JSON object")
        kind = payload.get("type")
        if kind == "url_verification":
            challenge = payload.get("challenge")
            if not isinstance(challenge, str):
                raise HubgateError(400, "The url_verification request has no challenge")
            return WebhookAnswer([], challenge.encode(), "text/plain")
        if kind != "event_callback":
            return WebhookAnswer([])
        event = payload.get("event")
        event_id = payload.get("event_id")
        if not isinstance(event, dict) or not isinstance(event_id, str):
            raise HubgateError(400, "The Slack event_callback has no event or event_id")
        change = message_change(event, event_id)
        return WebhookAnswer([change] if change is not None else [])
