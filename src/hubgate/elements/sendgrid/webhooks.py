"""SendGrid's signed Event Webhook (sendgrid-api.md section 7): ECDSA P-256 over
``timestamp + body`` with the instance's public key; events become changes of the message."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hubgate.elements.sdk import (
    CREATED,
    UPDATED,
    Change,
    VendorRequest,
    WebhookAnswer,
    WebhookRefusedError,
    digest,
)
from hubgate.kit.errors import bad_request

PUBLIC_KEY = "event.webhook.public.key"
SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
# SendGrid documents no window; Hubgate refuses a signature more than this far from now (D283).
WINDOW_SECONDS = 300
# The webhook events that change a message, and what they are to its subscriber.
_EVENTS = {"processed": CREATED, "delivered": UPDATED, "open": UPDATED, "bounce": UPDATED}


def _public_key(text: str) -> ec.EllipticCurvePublicKey:
    """SendGrid shows the key as bare base64 DER; a PEM one is taken as well."""
    try:
        if "BEGIN PUBLIC KEY" in text:
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error):
        raise WebhookRefusedError(f"The instance's {PUBLIC_KEY} is not a public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise WebhookRefusedError(f"The instance's {PUBLIC_KEY} is not a P-256 key")
    return key


def verify(public_key: str, timestamp: str, body: bytes, signature: str) -> bool:
    """The signature over the raw bytes as received, trailing CRLF included."""
    try:
        raw = base64.b64decode(signature, validate=True)
    except (ValueError, binascii.Error):
        return False
    try:
        _public_key(public_key).verify(raw, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def changes(events: list[Any]) -> list[Change]:
    """One change per message of the batch: CREATED when it holds the message's ``processed``,
    else UPDATED (``delivered``, ``open``, ``bounce``), its raw object the message's last event.
    One per message, because the seen-set keeps one fingerprint per object: a batch's events
    of one message each remembered would let a replayed batch through again (D283). Other
    events, and asynchronous bounces without a message id, are not a message's."""
    last: dict[str, dict[str, Any]] = {}
    created: set[str] = set()
    for event in events:
        if not isinstance(event, dict):
            raise bad_request("A SendGrid event is a JSON object")
        kind = _EVENTS.get(str(event.get("event")))
        message_id = event.get("sg_message_id")
        if kind is None or not isinstance(message_id, str) or not message_id:
            continue
        last[message_id] = event
        if kind == CREATED:
            created.add(message_id)
    return [
        Change("messages", mid, CREATED if mid in created else UPDATED, event, digest(event))
        for mid, event in last.items()
    ]


class SendGridWebhook:
    """The Event Webhook of a ``sendgrid`` instance; acknowledged with an empty 200."""

    def receive(
        self, request: VendorRequest, configuration: Mapping[str, str | None]
    ) -> WebhookAnswer:
        public_key = configuration.get(PUBLIC_KEY) or ""
        stamp = request.headers.get(TIMESTAMP_HEADER, "")
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not public_key:
            raise WebhookRefusedError(f"The instance has no {PUBLIC_KEY} to verify events with")
        if not stamp.isascii() or not stamp.isdigit() or not signature:
            raise WebhookRefusedError("The events are not signed")
        if not verify(public_key, stamp, request.body, signature):
            raise WebhookRefusedError("The webhook signature does not match")
        if abs(time.time() - int(stamp)) > WINDOW_SECONDS:
            raise WebhookRefusedError("The webhook's timestamp is more than five minutes off")
        try:
            events = json.loads(request.body)
        except ValueError:
            raise bad_request("The events are not JSON") from None
        if not isinstance(events, list):
            raise bad_request("SendGrid posts a JSON array of events")
        return WebhookAnswer(changes(events))
