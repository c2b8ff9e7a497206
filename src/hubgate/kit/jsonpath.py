"""Dotted paths into parsed JSON, as manifests write them: ``errors.0.message`` is the
``message`` of the first item of ``errors``; ``response_metadata.next_cursor`` a nested member."""

from __future__ import annotations

from typing import Any


def dig(value: Any, path: str) -> Any:
    """The value at ``path``, or None where any step is missing (or not a container)."""
    for step in path.split("."):
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and step.isascii() and step.isdigit():
            index = int(step)
            value = value[index] if index < len(value) else None
        else:
            return None
    return value
