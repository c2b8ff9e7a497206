"""Instance configuration: defaults merged, values as strings, secrets apart (D14)."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from hubgate.elements.manifest import Manifest
from hubgate.elements.sdk import Configuration as Configuration
from hubgate.events.changes import entry_problem
from hubgate.kit.errors import HubgateError, bad_request

MASK = "********"
MAX_VALUE_LENGTH = 10_000
MAX_POLL_MINUTES = 10_080  # a week
# What an OAuth element obtains (D55, D56): kept by Hubgate beside the configuration, under no
# manifest entry, so that no answer lists them and no caller can set them; the tokens are
# encrypted, the expiry (UNIX seconds) and the reason a refresh failed are not secret.
OAUTH_TOKEN = "oauth.user.token"  # noqa: S105 - a configuration key
OAUTH_REFRESH_TOKEN = "oauth.user.refresh_token"  # noqa: S105 - a configuration key
OAUTH_EXPIRES = "oauth.user.token.expires"
OAUTH_FAILURE = "oauth.user.refresh.failure"
OAUTH_KEYS = (OAUTH_TOKEN, OAUTH_REFRESH_TOKEN, OAUTH_EXPIRES, OAUTH_FAILURE)
# Hubgate's own secrets, the same keys for every element whatever its manifest says (D14, D29);
# the vendor's secrets are the ones each manifest flags ``secret`` (D274).
ALWAYS_SECRET = frozenset({"event.notification.signature.key", OAUTH_TOKEN, OAUTH_REFRESH_TOKEN})
_BOOLEAN_KEYS = frozenset({"event.notification.enabled", "filter.response.nulls"})
# An HTML tag, comment or declaration starts with "<" and a letter, "/", "!" or "?": "a < b > c"
# is text, not a tag, and stays as written (D17, D204).
_TAG = re.compile(r"<[A-Za-z/!?][^<>]*>")
# Bidirectional embeddings, overrides and isolates: they make a name read differently from
# what it holds (the marks LRM and RLM only steer neutral characters and are kept).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def secret_keys(manifest: Manifest) -> frozenset[str]:
    return manifest.secret_keys | ALWAYS_SECRET


def as_string(key: str, value: Any) -> str | None:
    """Every configuration value is kept and returned as a string, objects JSON-encoded."""
    if value is None:
        return None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, int | float):
        text = json.dumps(value)
    elif isinstance(value, dict | list):
        text = json.dumps(value, separators=(",", ":"))
    else:
        raise bad_request(f"Configuration {key} has a value of an unsupported type")
    if len(text) > MAX_VALUE_LENGTH:
        raise bad_request(f"Configuration {key} is longer than {MAX_VALUE_LENGTH} characters")
    if "\x00" in text:
        raise bad_request(f"Configuration {key} contains a NUL character")
    return text


def normalize(manifest: Manifest, given: Mapping[str, Any]) -> Configuration:
    known = {entry.key for entry in manifest.configuration}
    unknown = sorted(k for k in given if k not in known)
    if unknown:
        raise bad_request(
            f"Unknown configuration for {manifest.key}: {', '.join(unknown)}", unknown=unknown
        )
    return {key: as_string(key, value) for key, value in given.items()}


def merged(
    manifest: Manifest, base: Mapping[str, str | None], given: Configuration
) -> Configuration:
    """``base`` overlaid by ``given``; a masked secret sent back unchanged keeps its value."""
    result = dict(base)
    secrets = secret_keys(manifest)
    for key, value in given.items():
        if key in secrets and value == MASK:
            continue
        result[key] = value
    return result


def validate(manifest: Manifest, config: Configuration, *, poll_floor: int = 1) -> None:
    """Refuse what cannot work; ``poll_floor`` is HUBGATE_POLL_INTERVAL_FLOOR (minutes)."""
    missing = sorted(k for k in manifest.required_keys if not config.get(k))
    if missing:
        raise HubgateError(
            400,
            f"Missing required configuration: {', '.join(missing)}",
            extra={"missing": missing},
        )
    for key in _BOOLEAN_KEYS:
        value = config.get(key)
        if value is not None and value not in ("true", "false"):
            raise bad_request(f"Configuration {key} must be true or false")
    _check_url(config, manifest.base_url_key, required=True)
    _check_url(config, "event.notification.callback.url", required=False)
    interval = config.get("event.poller.refresh_interval")
    minutes = None if interval is None else _whole(interval)
    if interval is not None and (minutes is None or not poll_floor <= minutes <= MAX_POLL_MINUTES):
        raise bad_request(
            "Configuration event.poller.refresh_interval must be whole minutes from "
            f"{poll_floor} to {MAX_POLL_MINUTES}"
        )
    page_max = config.get("pagination.max")
    size = None if page_max is None else _whole(page_max)
    if page_max is not None and (size is None or not 1 <= size <= 1000):
        raise bad_request("Configuration pagination.max must be a whole number from 1 to 1000")
    vendor_type = config.get("event.vendor.type")
    if vendor_type is not None and vendor_type not in manifest.event_methods:
        allowed = ", ".join(manifest.event_methods)
        raise bad_request(f"Configuration event.vendor.type must be one of: {allowed}")
    poller = config.get("event.poller.configuration")
    if poller is not None:
        try:
            parsed = json.loads(poller)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise bad_request("Configuration event.poller.configuration must be a JSON object")
        # A poller that cannot run would never poll and never say why: refused here instead.
        for resource, entry in parsed.items():
            problem = entry_problem(resource, entry)
            if problem is not None:
                raise bad_request(f"Configuration event.poller.configuration: {problem}")


def _whole(text: str) -> int | None:
    # ASCII digits only ("³".isdigit() is true, int("³") raises) and short enough for int().
    if text.isascii() and text.isdigit() and len(text) <= 9:
        return int(text)
    return None


def _check_url(config: Configuration, key: str, *, required: bool) -> None:
    value = config.get(key)
    if not value:
        if required:
            raise bad_request(f"Configuration {key} is required")
        return
    validate_url(value, f"Configuration {key}")


def validate_url(value: str, what: str) -> None:
    try:
        parts = urlsplit(value)
    except ValueError:  # "http://[" and other hosts urlsplit cannot read
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad_request(f"{what} must be an http or https URL")


def split_secrets(
    manifest: Manifest, config: Configuration
) -> tuple[Configuration, dict[str, str]]:
    """Plain values for the JSON column, secret values (set ones only) for encryption."""
    secrets = secret_keys(manifest)
    plain = {k: v for k, v in config.items() if k not in secrets}
    hidden = {k: v for k, v in config.items() if k in secrets and v is not None}
    return plain, hidden


def masked(
    manifest: Manifest, plain: Mapping[str, str | None], secret_names: set[str]
) -> Configuration:
    """What callers see: every entry, secrets that are set shown as the mask (D14)."""
    view: Configuration = {}
    for entry in manifest.configuration:
        if entry.key in secret_names:
            view[entry.key] = MASK
        else:
            view[entry.key] = plain.get(entry.key)
    return view


def clean_text(value: str, what: str) -> str:
    """Names and tags lose any HTML (D17); what is left must still say something."""
    cleaned = _TAG.sub("", value).strip()
    if not cleaned:
        raise bad_request(f"{what} is empty once HTML is removed")
    for c in cleaned:
        # Any other character is taken: no-break and ideographic spaces, emoji joined by ZWJ
        # or with variation selectors, scripts of every language.
        if unicodedata.category(c) == "Cc":
            raise bad_request(f"{what} contains the control character U+{ord(c):04X}")
        if c in _BIDI_CONTROLS:
            raise bad_request(f"{what} contains the bidirectional control U+{ord(c):04X}")
    return cleaned


def clean_tags(tags: list[str]) -> list[str]:
    cleaned: list[str] = []
    for position, tag in enumerate(tags):
        value = clean_text(tag, f"tags[{position}]")
        if len(value) > 100:
            raise bad_request(f"tags[{position}] is longer than 100 characters")
        if value not in cleaned:
            cleaned.append(value)
    return cleaned
