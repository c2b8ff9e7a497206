"""The catalog of elements: every one a package registers, the built-in ones included.

Elements register under the ``hubgate.elements`` entry point group, each pointing at an
:class:`Element` object, so adding a connector never edits Hubgate; Hubgate's own register in
its pyproject.toml the same way (D272).
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import entry_points

from hubgate.elements.manifest import Hub
from hubgate.elements.sdk import Element as Element
from hubgate.kit.errors import HubgateError

HUBS: dict[str, Hub] = {
    "messaging": Hub(
        id=1,
        key="messaging",
        name="Messaging",
        description="Send and receive SMS, MMS and calls through one API, whatever the vendor.",
    ),
}


class ElementRegistry:
    def __init__(self, elements: list[Element]) -> None:
        self._by_key: dict[str, Element] = {}
        self._by_id: dict[int, Element] = {}
        for element in elements:
            self.add(element)

    def add(self, element: Element) -> None:
        if element.key in self._by_key or element.id in self._by_id:
            raise ValueError(f"element {element.key} ({element.id}) is registered twice")
        if element.manifest.hub not in HUBS:
            raise ValueError(f"element {element.key} names an unknown hub {element.manifest.hub}")
        self._by_key[element.key] = element
        self._by_id[element.id] = element

    def __iter__(self) -> Iterator[Element]:
        return iter(sorted(self._by_key.values(), key=lambda e: e.id))

    def keys(self) -> list[str]:
        return [e.key for e in self]

    def find(self, key_or_id: str | int) -> Element | None:
        if isinstance(key_or_id, int):
            return self._by_id.get(key_or_id)
        # ASCII only: str.isdigit() accepts "³", which int() refuses; and a number longer
        # than any id cannot name one (int() refuses more than 4,300 digits anyway).
        if key_or_id.isascii() and key_or_id.isdigit():
            return self._by_id.get(int(key_or_id)) if len(key_or_id) <= 18 else None
        return self._by_key.get(key_or_id)

    def get(self, key_or_id: str | int) -> Element:
        element = self.find(key_or_id)
        if element is None:
            raise HubgateError(404, f"No element found with key or id {key_or_id}")
        return element

    def in_hub(self, hub: str) -> list[Element]:
        return [e for e in self if e.manifest.hub == hub]


def discover() -> ElementRegistry:
    """Every element whose package declares a ``hubgate.elements`` entry point."""
    found: dict[str, Element] = {}
    for entry in entry_points(group="hubgate.elements"):
        element = entry.load()
        if not isinstance(element, Element):
            raise TypeError(f"entry point {entry.name} is not a hubgate Element")
        found[element.key] = element
    return ElementRegistry(list(found.values()))
