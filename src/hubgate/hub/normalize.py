"""Turning vendor answers into hub answers: nulls (D24), form bodies, redaction for logs."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

from hubgate.instances.configuration import MASK
from hubgate.kit.errors import bad_request

Json = Any


def drop_nulls(value: Json) -> Json:
    """``value`` without null-valued members, at every depth (D24); list items are kept.

    Works in place on what it is given (a freshly parsed vendor answer) and returns it: on the
    hub's hot path, copying every record cost more than the rest of Hubgate's own work.
    """
    kind = type(value)
    if kind is dict:
        nulls = None
        for key, member in value.items():
            if member is None:
                if nulls is None:
                    nulls = [key]
                else:
                    nulls.append(key)
            else:
                member_kind = type(member)
                if member_kind is dict or member_kind is list:
                    drop_nulls(member)
        if nulls is not None:
            for key in nulls:
                del value[key]
    elif kind is list:
        for member in value:
            member_kind = type(member)
            if member_kind is dict or member_kind is list:
                drop_nulls(member)
    return value


def _form_value(key: str, value: Json) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, dict):
        # Twilio's JSON-valued fields (ContentVariables) take the object as JSON text.
        return json.dumps(value, separators=(",", ":"))
    raise bad_request(f"Field {key} has a value that cannot be sent as a form field")


def form_fields(body: Json) -> list[tuple[str, str]]:
    """A JSON object as form fields: arrays become repeated keys (``MediaUrl``), nulls vanish."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object")
    pairs: list[tuple[str, str]] = []
    for key, value in body.items():
        if value is None:
            continue
        if isinstance(value, list):
            pairs.extend((key, _form_value(key, item)) for item in value if item is not None)
        else:
            pairs.append((key, _form_value(key, value)))
    return pairs


# A secret this short is masked only where a whole value equals it: masking every "ab" inside
# every text would wreck the log, and so short a value protects nothing anyway (D200).
MIN_MASKED_IN_TEXT = 4


@dataclass(frozen=True, slots=True)
class SecretMask:
    """Masks secret values in a log: as whole values, and inside any longer text or URL."""

    values: frozenset[str]
    pattern: re.Pattern[str] | None

    @classmethod
    def of(cls, secret_values: Collection[str]) -> SecretMask:
        values = frozenset(v for v in secret_values if v)
        # The value as written, and as it reads percent-encoded in a URL or a form body.
        forms = {
            form
            for v in values
            if len(v) >= MIN_MASKED_IN_TEXT
            for form in (v, quote(v, safe=""), quote_plus(v, safe=""))
        }
        # Longest first, so that a secret holding another one is masked whole.
        ordered = sorted(forms, key=len, reverse=True)
        pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        return cls(values, pattern)

    def text(self, value: str) -> str:
        if value in self.values:
            return MASK
        return self.pattern.sub(MASK, value) if self.pattern is not None else value


def redact(value: Json, mask: SecretMask, secret_fields: Collection[str]) -> Json:
    """A copy safe for a log: secret fields and any secret configuration value masked."""
    if isinstance(value, Mapping):
        return {
            mask.text(str(k)): MASK
            if k in secret_fields and v is not None
            else redact(v, mask, secret_fields)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, mask, secret_fields) for v in value]
    if isinstance(value, str):
        return mask.text(value)
    return value
