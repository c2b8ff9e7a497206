"""The shipped formula templates (issue 12 item 8): JSON files under ``shipped/`` that
``POST /formulas`` takes as they are, listed in the console's formula catalog (D370)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

SHIPPED = resources.files("hubgate.formulas").joinpath("shipped")


@dataclass(frozen=True)
class ShippedTemplate:
    key: str  # the file's name without ``.json``: the catalog's address for it
    body: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.body["name"])

    @property
    def description(self) -> str:
        return str(self.body.get("description", ""))

    @property
    def trigger_type(self) -> str:
        triggers = self.body.get("triggers") or [{}]
        return str(triggers[0].get("type", ""))

    @property
    def configuration(self) -> list[dict[str, Any]]:
        return [dict(entry) for entry in self.body.get("configuration", [])]


@cache
def shipped_templates() -> tuple[ShippedTemplate, ...]:
    found = [
        ShippedTemplate(path.name.removesuffix(".json"), json.loads(path.read_text("utf-8")))
        for path in SHIPPED.iterdir()
        if path.name.endswith(".json")
    ]
    return tuple(sorted(found, key=lambda t: t.name.lower()))


def shipped_template(key: str) -> ShippedTemplate | None:
    return next((t for t in shipped_templates() if t.key == key), None)
