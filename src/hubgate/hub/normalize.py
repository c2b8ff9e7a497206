"""Turning vendor answers into hub answers: nulls (D24), form bodies, redaction for logs."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

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


def redact(value: Json, secret_values: Collection[str], secret_fields: Collection[str]) -> Json:
    """A copy safe for a log: secret fields and any secret configuration value masked."""
    if isinstance(value, Mapping):
        return {
            k: MASK
            if k in secret_fields and v is not None
            else redact(v, secret_values, secret_fields)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, secret_values, secret_fields) for v in value]
    if isinstance(value, str) and value in secret_values:
        return MASK
    return value
