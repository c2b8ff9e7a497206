"""The headers of a notification (D29): its id and, with a signature key, two signatures.

``Elements-Webhook-Signature`` is Open Connectors' scheme: ``sha256=`` and the base64 of
HMAC-SHA256 over the raw body, keyed with the signature key's UTF-8 bytes. The Standard Webhooks
headers sign ``{id}.{timestamp}.{body}`` with the same key bytes. Standard Webhooks libraries
take their secret as ``whsec_`` + base64(key bytes); :func:`standard_webhooks_secret` gives
that form, so a receiver can verify with either library call:
``Webhook(key.encode())`` or ``Webhook(standard_webhooks_secret(key))``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

from standardwebhooks import Webhook

USER_AGENT = "Hubgate-Webhooks/1"


def elements_signature(key: str, body: bytes) -> str:
    digest = hmac.new(key.encode(), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def standard_webhooks_secret(key: str) -> str:
    return "whsec_" + base64.b64encode(key.encode()).decode()


def notification_headers(
    event_id: str, body: bytes, signature_key: str | None, *, now: datetime
) -> dict[str, str]:
    """Headers for one attempt; only ``webhook-timestamp`` (and what signs it) varies."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Elements-Webhook-Id": event_id,
    }
    if signature_key:
        headers["Elements-Webhook-Signature"] = elements_signature(signature_key, body)
        headers["webhook-id"] = event_id
        headers["webhook-timestamp"] = str(int(now.timestamp()))
        headers["webhook-signature"] = Webhook(signature_key.encode()).sign(
            event_id, now, body.decode()
        )
    return headers
