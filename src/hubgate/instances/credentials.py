"""The element's check call: credentials are proven with the vendor before they are kept (D13)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from hubgate.elements.manifest import Manifest
from hubgate.instances.configuration import Configuration
from hubgate.kit.egress import (
    EgressClient,
    EgressDenied,
    EgressError,
    EgressResponse,
    EgressTimeout,
)
from hubgate.kit.errors import HubgateError, bad_request, vendor_error

_PROVIDER_TEXT_LIMIT = 500


def provider_error(manifest: Manifest, response: EgressResponse) -> tuple[str, Any]:
    """The vendor's own message and code, read where the manifest says they are."""
    text = response.body[: _PROVIDER_TEXT_LIMIT * 4].decode("utf-8", "replace")
    code: Any = None
    message = text[:_PROVIDER_TEXT_LIMIT]
    try:
        body = json.loads(response.body)
    except ValueError:
        return message, code
    if isinstance(body, dict):
        code = body.get(manifest.errors.code)
        found = body.get(manifest.errors.message)
        if isinstance(found, str):
            message = found[:_PROVIDER_TEXT_LIMIT]
    return message, code


def check_url(manifest: Manifest, config: Configuration) -> str:
    base = (config.get(manifest.base_url_key) or "").rstrip("/")
    path = manifest.check.path
    for key, value in config.items():
        placeholder = "{" + key + "}"
        if placeholder in path:
            # Quoted whole so that a value can never climb out of its path segment.
            path = path.replace(placeholder, quote(value or "", safe=""))
    return base + path


async def check_credentials(
    egress: EgressClient, manifest: Manifest, config: Configuration
) -> None:
    url = check_url(manifest, config)
    auth = (config.get(manifest.auth.username) or "", config.get(manifest.auth.password) or "")
    try:
        response = await egress.request(manifest.check.method, url, auth=auth)
    except EgressDenied as exc:
        raise bad_request(
            f"Configuration {manifest.base_url_key} points at an address Hubgate may not reach"
            f" ({exc}); see HUBGATE_EGRESS_ALLOW"
        ) from None
    except EgressTimeout:
        raise HubgateError(504, f"{manifest.vendor_name} did not answer in time") from None
    except EgressError:
        raise HubgateError(502, f"{manifest.vendor_name} could not be reached") from None
    if 200 <= response.status < 300:
        return
    message, code = provider_error(manifest, response)
    if response.status == 429:
        retry_after = response.headers.get("Retry-After", "1")
        error = vendor_error(
            429,
            f"{manifest.vendor_name} is rate limiting the credential check; try again later",
            provider_message=message,
            provider_code=code,
            provider_status=429,
        )
        error.headers["Retry-After"] = (
            retry_after if retry_after.isascii() and retry_after.isdigit() else "1"
        )
        raise error
    if 400 <= response.status < 500:
        raise vendor_error(
            400,
            f"{manifest.vendor_name} rejected the credentials",
            provider_message=message,
            provider_code=code,
            provider_status=response.status,
        )
    raise vendor_error(
        502,
        f"{manifest.vendor_name} failed to check the credentials",
        provider_message=message,
        provider_code=code,
        provider_status=response.status,
    )
