"""Paging (D22): hub ``page``/``pageSize``/``nextPage`` and the signed next-page token.

A token is ``base64url(JSON).mac``: the JSON says where the next page starts (the vendor's own
next-page URL, or an offset when Hubgate pages itself), the MAC is an HMAC under the keyring's
HMAC key over the instance id and the JSON, so a token only works for the instance it was made
for and any change to it is refused with a 400.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from dataclasses import dataclass

from hubgate.kit.crypto import Keyring
from hubgate.kit.errors import bad_request

_MAC_CHARS = 32
MAX_TOKEN_LENGTH = 8192


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page starts: a vendor URL, or an offset into a list Hubgate pages itself."""

    url: str | None = None
    offset: int = 0


@dataclass(frozen=True, slots=True)
class PageRequest:
    page: int
    size: int
    cursor: Cursor | None


def _mac(keyring: Keyring, instance_id: int, payload: str) -> str:
    return keyring.hmac_digest(f"hubgate.page-token:{instance_id}:{payload}")[:_MAC_CHARS]


def encode(keyring: Keyring, instance_id: int, cursor: Cursor) -> str:
    data = {"u": cursor.url} if cursor.url is not None else {"o": cursor.offset}
    raw = json.dumps(data, separators=(",", ":")).encode()
    payload = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return f"{payload}.{_mac(keyring, instance_id, payload)}"


def decode(keyring: Keyring, instance_id: int, token: str) -> Cursor:
    invalid = bad_request("Invalid nextPage token: use the Elements-Next-Page-Token as given")
    payload, dot, mac = token.partition(".")
    if not dot or len(token) > MAX_TOKEN_LENGTH:
        raise invalid
    expected = _mac(keyring, instance_id, payload)
    if not hmac.compare_digest(expected.encode(), mac.encode("utf-8", "replace")):
        raise invalid
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error):
        raise invalid from None
    if isinstance(data, dict) and isinstance(data.get("u"), str):
        return Cursor(url=data["u"])
    if isinstance(data, dict) and isinstance(data.get("o"), int) and data["o"] >= 0:
        return Cursor(offset=data["o"])
    raise invalid


def _positive(name: str, text: str | None, default: int) -> int:
    if text is None or text == "":
        return default
    # Length and ASCII first: int() refuses "³" (a digit to str.isdigit) and 5,000 digits.
    if not (text.isascii() and text.isdigit() and len(text) <= 9) or int(text) < 1:
        raise bad_request(f"{name} must be a whole number from 1, not {text!r}")
    return int(text)


def page_request(
    keyring: Keyring,
    instance_id: int,
    *,
    page: str | None,
    page_size: str | None,
    next_page: str | None,
    default_size: int,
    max_size: int,
) -> PageRequest:
    size = min(_positive("pageSize", page_size, default_size), max_size)
    cursor = decode(keyring, instance_id, next_page) if next_page else None
    return PageRequest(_positive("page", page, 1), size, cursor)
