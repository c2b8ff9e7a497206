"""Request hooks of the ``slack`` element: the bodies of its Web API writes."""

from __future__ import annotations

import json
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
