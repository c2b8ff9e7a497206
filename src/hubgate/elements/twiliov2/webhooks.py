"""Twilio's webhooks into Hubgate (D31): the ``X-Twilio-Signature`` check and the events.

The signature (twilio-api.md section 7): the full URL Twilio called, then for each POST
parameter name in sorted order its values (sorted, each once) as ``name + value``; HMAC-SHA1
under the account's Auth Token, base64. Twilio is inconsistent about ports, so the URL is tried
without any port and with the scheme's default port added, as Twilio's own validator does. A
JSON body is covered by ``bodySHA256`` in the query string and the URL alone is signed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qs, parse_qsl, urlsplit, urlunsplit

from hubgate.elements.sdk import (
    CREATED,
    UPDATED,
    Change,
    VendorRequest,
    WebhookAnswer,
    WebhookRefusedError,
    digest,
)
from hubgate.kit.errors import HubgateError

SIGNATURE_HEADER = "x-twilio-signature"
# Twilio expects TwiML back from a message webhook; an empty Response sends no reply.
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

Params = Sequence[tuple[str, str]]


def signature(url: str, params: Params, auth_token: str) -> str:
    data = url
    for name in sorted({name for name, _ in params}):
        for value in sorted({value for key, value in params if key == name}):
            data += name + value
    mac = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def _url_variants(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    shown_host = f"[{host}]" if ":" in host else host
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    without = urlunsplit(parts._replace(netloc=prefix + shown_host))
    if parts.port is not None:
        return without, url
    default = 443 if parts.scheme == "https" else 80
    return without, urlunsplit(parts._replace(netloc=f"{prefix}{shown_host}:{default}"))


def verify(url: str, params: Params, body: bytes, header: str | None, auth_token: str) -> bool:
    if not header or not auth_token:
        return False
    query = parse_qs(urlsplit(url).query)
    signed_params: Params = params
    if "bodySHA256" in query:
        expected = hashlib.sha256(body).hexdigest()
        if not hmac.compare_digest(expected, query["bodySHA256"][0]):
            return False
        signed_params = ()
    given = header.encode()
    return any(
        hmac.compare_digest(signature(candidate, signed_params, auth_token).encode(), given)
        for candidate in _url_variants(url)
    )


def _raw(params: Params) -> dict[str, str | list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in params:
        grouped.setdefault(name, []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in grouped.items()}


def changes(params: Params) -> list[Change]:
    """Inbound messages are CREATED, message status callbacks UPDATED; calls likewise (an
    inbound call ringing is CREATED, later call statuses UPDATED)."""
    raw = _raw(params)
    fields = dict(params)
    message_sid = fields.get("MessageSid") or fields.get("SmsSid")
    if message_sid:
        status = fields.get("MessageStatus")
        event_type = UPDATED if status and status != "received" else CREATED
        return [Change("messages", message_sid, event_type, raw, digest(raw))]
    call_sid = fields.get("CallSid")
    if call_sid:
        fresh = fields.get("Direction") == "inbound" and fields.get("CallStatus") == "ringing"
        return [Change("calls", call_sid, CREATED if fresh else UPDATED, raw, digest(raw))]
    return []


def form_params(request: VendorRequest) -> list[tuple[str, str]]:
    """The POST parameters of a form body; none for any other body (a JSON one is signed by
    ``bodySHA256`` instead)."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        return []
    try:
        return parse_qsl(request.body.decode(), keep_blank_values=True, max_num_fields=1000)
    except (UnicodeDecodeError, ValueError):
        raise HubgateError(400, "Malformed form body") from None


class TwilioWebhook:
    """Twilio's message and call webhooks for a ``twiliov2`` instance, signed with its Auth
    Token; acknowledged with empty TwiML."""

    def receive(
        self, request: VendorRequest, configuration: Mapping[str, str | None]
    ) -> WebhookAnswer:
        params = form_params(request)
        # Signatures made with a SharedKey (HMAC-SHA256) need a secret Hubgate is not given.
        settings = request.headers.get("x-twilio-webhooks-signature-settings", "")
        token = configuration.get("password") or ""
        signed = request.headers.get(SIGNATURE_HEADER)
        if "HMAC_SHA256" in settings.upper() or not verify(
            request.url, params, request.body, signed, token
        ):
            raise WebhookRefusedError("The webhook signature does not match")
        return WebhookAnswer(changes(params), EMPTY_TWIML, "application/xml")
