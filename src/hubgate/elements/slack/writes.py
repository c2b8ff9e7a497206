"""Request hooks of the ``slack`` element: the bodies of its Web API writes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hubgate.elements.sdk import WriteContext
from hubgate.kit.errors import bad_request

# Slack's fields that take a JSON array; in a form body each is one JSON string (slack-api.md
# section 2), not the repeated keys a form makes of a list.
JSON_FIELDS = ("blocks", "attachments")


def form_body(body: Any, _write: WriteContext) -> Any:
    """A write sent form-encoded, as Slack's OpenAPI file describes it (D400): ``blocks`` and
    ``attachments`` given as JSON go as JSON text, every other field as it is."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object")
    return {
        key: json.dumps(value, separators=(",", ":"))
        if key in JSON_FIELDS and isinstance(value, list | dict)
        else value
        for key, value in body.items()
    }


def _with_path(body: Any, write: WriteContext, fields: Mapping[str, str]) -> Any:
    """``form_body`` plus Slack's fields named by the hub path (D443): the path wins over a
    field of the same name in the body, since the path is what the caller addressed."""
    sent = form_body(body, write)
    sent.update({field: write.path_values[name] for field, name in fields.items()})
    return sent


def channel_form_body(body: Any, write: WriteContext) -> Any:
    """``chat.postMessage`` to ``channels/{id}/messages``: the path's channel as a form field."""
    return _with_path(body, write, {"channel": "id"})


def message_form_body(body: Any, write: WriteContext) -> Any:
    """``chat.update`` of ``channels/{id}/messages/{subId}``: channel and ts as form fields."""
    return _with_path(body, write, {"channel": "id", "ts": "subId"})
