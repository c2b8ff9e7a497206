"""Notification headers (D29), checked the way receivers check them."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from hubgate.events.signing import (
    elements_signature,
    notification_headers,
    standard_webhooks_secret,
)

KEY = "s3cr3t, with spaces and é"
BODY = b'{"message":{"eventId":"e-1","events":[]}}'


def test_elements_signature_is_base64_hmac_sha256_of_the_raw_body() -> None:
    expected = base64.b64encode(hmac.new(KEY.encode(), BODY, hashlib.sha256).digest()).decode()
    assert elements_signature(KEY, BODY) == f"sha256={expected}"


def test_standard_webhooks_headers_verify_with_the_raw_key_and_the_whsec_form() -> None:
    now = datetime.now(UTC)
    headers = notification_headers("e-1", BODY, KEY, now=now)
    assert headers["Elements-Webhook-Id"] == headers["webhook-id"] == "e-1"
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    for secret in (KEY.encode(), standard_webhooks_secret(KEY)):
        assert Webhook(secret).verify(BODY, headers) == {
            "message": {"eventId": "e-1", "events": []}
        }
    assert standard_webhooks_secret(KEY).startswith("whsec_")


def test_a_tampered_body_or_another_key_fails_verification() -> None:
    headers = notification_headers("e-1", BODY, KEY, now=datetime.now(UTC))
    with pytest.raises(WebhookVerificationError):
        Webhook(KEY.encode()).verify(BODY.replace(b"e-1", b"e-2"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(b"another key").verify(BODY, headers)


def test_without_a_key_only_the_id_and_content_type_are_sent() -> None:
    headers = notification_headers("e-1", BODY, None, now=datetime.now(UTC))
    assert headers["Elements-Webhook-Id"] == "e-1"
    assert headers["Content-Type"] == "application/json"
    assert not {"Elements-Webhook-Signature", "webhook-signature", "webhook-id"} & set(headers)


def test_retries_change_only_the_timestamp_and_its_signature() -> None:
    first = notification_headers("e-1", BODY, KEY, now=datetime(2026, 3, 5, 7, 0, tzinfo=UTC))
    later = notification_headers("e-1", BODY, KEY, now=datetime(2026, 3, 5, 9, 0, tzinfo=UTC))
    changed = {k for k in first if first[k] != later[k]}
    assert changed == {"webhook-timestamp", "webhook-signature"}
