"""Paging (D22): hub ``page``/``pageSize``/``nextPage`` and the signed next-page token.

A token is ``base64url(JSON).mac``: the JSON says which resource it pages (the path after the
hub, e.g. ``messages``) and where the next page starts (the vendor's own next-page URL, or an
offset when Hubgate pages itself); the MAC is an HMAC under the keyring's HMAC key over the
instance id and the JSON, so a token only works for the instance and the resource it was made
for, and any change to it is refused with a 400.
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
# The highest page number any list answers; a larger one is read as this one (D202).
MAX_PAGE = 1_000_000


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


def encode(keyring: Keyring, instance_id: int, resource: str, cursor: Cursor) -> str:
    data: dict[str, str | int] = {"r": resource}
    if cursor.url is not None:
        data["u"] = cursor.url
    else:
        data["o"] = cursor.offset
    raw = json.dumps(data, separators=(",", ":")).encode()
    payload = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return f"{payload}.{_mac(keyring, instance_id, payload)}"


def decode(keyring: Keyring, instance_id: int, resource: str, token: str) -> Cursor:
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
    if not isinstance(data, dict) or not isinstance(data.get("r"), str):
        raise invalid
    if data["r"] != resource:
        # Followed here, another resource's vendor URL would answer that resource's records
        # (or the vendor's error) as if they were this one's.
        raise bad_request(
            f"Invalid nextPage token: it pages {data['r']}, not {resource}; "
            "send it with the list that returned it"
        )
    if isinstance(data.get("u"), str):
        return Cursor(url=data["u"])
    if isinstance(data.get("o"), int) and data["o"] >= 0:
        return Cursor(offset=data["o"])
    raise invalid


def _positive(name: str, text: str | None, default: int, cap: int) -> int:
    """A whole number from 1; any larger than ``cap``, however many digits, is ``cap`` (D202),
    and so is a default larger than the cap (an element's page size above an instance's max)."""
    if text is None or text == "":
        return min(default, cap)
    # ASCII first: int() takes "³" (a digit to str.isdigit) and other scripts' digits. The
    # digits are counted, not converted: int() refuses 5,000 of them.
    digits = text.lstrip("0")
    if not (text.isascii() and text.isdigit()) or not digits:
        raise bad_request(f"{name} must be a whole number from 1, not {text[:64]!r}")
    if len(digits) > len(str(cap)):
        return cap
    return min(int(digits), cap)


def page_numbers(
    *, page: str | None, page_size: str | None, default_size: int, max_size: int
) -> tuple[int, int]:
    """``page`` (from 1, capped at MAX_PAGE) and ``pageSize`` (capped at ``max_size``)."""
    return _positive("page", page, 1, MAX_PAGE), _positive(
        "pageSize", page_size, default_size, max_size
    )


def page_request(
    keyring: Keyring,
    instance_id: int,
    resource: str,
    *,
    page: str | None,
    page_size: str | None,
    next_page: str | None,
    default_size: int,
    max_size: int,
) -> PageRequest:
    number, size = page_numbers(
        page=page, page_size=page_size, default_size=default_size, max_size=max_size
    )
    cursor = decode(keyring, instance_id, resource, next_page) if next_page else None
    return PageRequest(number, size, cursor)
